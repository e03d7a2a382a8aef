"""darknet_py: Darknet's cfg/weights/training/evaluation semantics in PyTorch.

The Python API (see README):

    from darknet_py import load_network, save_weights
    net = load_network("yolov3-tiny.cfg", "yolov3-tiny.weights", flavor="pj")
    outputs = net.forward_all(x)          # every layer's output
    save_weights(net, "out.weights")

    from darknet_py import Detector
    boxes = Detector("yolov3-tiny.cfg", "yolov3-tiny.weights", names="coco.names").predict("dog.jpg")

The API names are imported on first use (PEP 562): `python -m darknet_py` imports this package before its
own code runs, and importing torch here would put a second or two of start-up beyond the reach of the
command line's Ctrl-C/SIGTERM handling.
"""
import importlib

__all__ = ["Detection", "Detector", "Network", "load_network", "load_weights", "save_weights", "save_pt", "load_pt"]
__version__ = "0.1.0"

_HOMES = {"Detection": ".detector", "Detector": ".detector", "Network": ".network", "load_network": ".network", "load_weights": ".weights",
          "save_weights": ".weights", "save_pt": ".weights", "load_pt": ".weights"}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'darknet_py' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)


def __dir__():
    return sorted(list(globals()) + __all__)
