"""darknet_py: Darknet's cfg/weights/training/evaluation semantics in PyTorch.

The Python API (see README):

    from darknet_py import load_network, save_weights
    net = load_network("yolov3-tiny.cfg", "yolov3-tiny.weights", flavor="pj")
    outputs = net.forward_all(x)          # every layer's output
    save_weights(net, "out.weights")

    from darknet_py import Detector
    boxes = Detector("yolov3-tiny.cfg", "yolov3-tiny.weights", names="coco.names").predict("dog.jpg")
"""
from .detector import Detection, Detector
from .network import Network, load_network
from .weights import load_weights, save_weights, save_pt, load_pt

__all__ = ["Detection", "Detector", "Network", "load_network", "load_weights", "save_weights", "save_pt", "load_pt"]
__version__ = "0.1.0"
