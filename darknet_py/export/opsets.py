"""The ONNX opsets `darknet_py export` writes (apart from :mod:`.onnx` so that the command's `--help` can show
them without importing torch)."""

DEFAULT_OPSET = 17   # ONNX Runtime, OpenCV DNN and TensorRT 8.6+ all read it
OPSETS = range(13, 21)  # 20: the TorchScript exporter's maximum; below 13 maxpool or upsample fail
