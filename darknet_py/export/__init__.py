"""ONNX export (`darknet_py export`): the graph (:mod:`.graph`), writing and checking the file (:mod:`.onnx`)
and Darknet's threshold + NMS applied to the exported `boxes`/`scores` (:mod:`.detections`).

The names are imported on first use (PEP 562), so that importing :mod:`.opsets` (the command's `--help`)
does not import torch."""
import importlib

__all__ = ["ExportGraph", "export_onnx", "onnx_detections"]

_HOMES = {"ExportGraph": ".graph", "export_onnx": ".onnx", "onnx_detections": ".detections"}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'darknet_py.export' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)


def __dir__():
    return sorted(list(globals()) + __all__)
