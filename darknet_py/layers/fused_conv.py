"""The kernel of an inference `[convolutional]` layer (after :meth:`ConvolutionalLayer.fuse_`): oneDNN's
convolution with the weights prepacked once into its blocked layout and the activation applied in the same
pass, as ONNX Runtime and OpenCV run convolution + batch norm + activation. PyTorch's own path reorders the
weights at every call, runs the activation as a second pass, and sends a 1x1 kernel on one thread to its
im2col + GEMM code (each measured in bench/bench_infer.py, results in bench/RESULTS.md).

It is used only where it computes what the plain path computes: float32 on the CPU without autograd, and
not while tracing (the ONNX export records the portable `F.conv2d`)."""
from __future__ import annotations

import torch
from torch import nn

# Darknet activation -> oneDNN post-op (name, scalars); any other activation runs as its own in-place pass
POST_OPS: dict[str, tuple[str, list[float]]] = {
    "linear": ("none", []),
    "leaky": ("leaky_relu", [0.1]),
    "relu": ("relu", []),
    "logistic": ("sigmoid", []),
    "swish": ("swish", []),
}


def available() -> bool:
    """This torch build has oneDNN and its fused convolution operator (a CPU build of torch >= 2.0)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def runs_on(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad
            and not torch.jit.is_tracing())


class PrepackedWeights:
    """One convolution's weights in oneDNN's layout, packed at the first call (oneDNN chooses the layout for
    the input it sees) and again whenever the weights change. Not copied with the network (an opaque oneDNN
    tensor cannot be): a copy packs its own at its first call."""

    def __init__(self):
        self.packed = None
        self.source = None          # (storage address, version) of the weights that were packed

    def __deepcopy__(self, memo) -> "PrepackedWeights":
        return PrepackedWeights()

    def get(self, conv: nn.Conv2d, stride: tuple[int, int], x: torch.Tensor) -> torch.Tensor:
        weight = conv.weight
        # a tensor made under torch.inference_mode has no version counter (and is changed only inside it)
        source = (weight.data_ptr(), None if weight.is_inference() else weight._version)
        if self.packed is None or self.source != source:
            self.packed = torch.ops.mkldnn._reorder_convolution_weight(
                weight.detach(), list(conv.padding), list(stride), list(conv.dilation), conv.groups, list(x.shape))
            self.source = source
        return self.packed


def convolve(conv: nn.Conv2d, weights: PrepackedWeights, x: torch.Tensor, activation: str,
             stride: tuple[int, int]) -> tuple[torch.Tensor, bool]:
    """``conv`` of ``x`` with ``stride`` (the caller may have subsampled ``x`` already) and, when oneDNN can
    fuse it, the activation. Returns (output, whether the activation was applied)."""
    post_op, scalars = POST_OPS.get(activation, ("none", []))
    y = torch.ops.mkldnn._convolution_pointwise(x, weights.get(conv, stride, x), conv.bias, list(conv.padding),
                                                list(stride), list(conv.dilation), conv.groups, post_op, scalars,
                                                "")
    return y, activation in POST_OPS
