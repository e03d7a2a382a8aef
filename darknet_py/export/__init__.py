"""ONNX export (`darknet_py export`): the graph (:mod:`.graph`), writing and checking the file (:mod:`.onnx`)
and Darknet's threshold + NMS applied to the exported `boxes`/`scores` (:mod:`.detections`)."""
from .detections import onnx_detections
from .graph import ExportGraph
from .onnx import export_onnx

__all__ = ["ExportGraph", "export_onnx", "onnx_detections"]
