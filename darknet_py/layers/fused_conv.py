"""The kernel of an inference `[convolutional]` layer (after :meth:`ConvolutionalLayer.fuse_`): oneDNN's
convolution with the weights prepacked once into its blocked layout and the activation applied in the same
pass, as ONNX Runtime and OpenCV run convolution + batch norm + activation; deep 3x3 layers on one thread
take Winograd's algorithm instead (:mod:`.winograd`). PyTorch's own path reorders the
weights at every call, runs the activation as a second pass, and sends a 1x1 kernel on one thread to its
im2col + GEMM code (each measured in bench/bench_infer.py, results in bench/RESULTS.md).

It is used only where it computes what the plain path computes: float32 on the CPU without autograd, and
not while tracing (the ONNX export records the portable `F.conv2d`)."""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import nn

from . import winograd

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
    """One convolution's weights in the layout of each kernel that ran it (oneDNN's direct kernel, Winograd),
    packed at the kernel's first call (oneDNN chooses the layout for the input it sees) and again whenever the
    weights or the bias change. Not copied with the network (an opaque oneDNN tensor cannot be): a copy packs
    its own at its first call."""

    def __init__(self):
        self.packed: dict[str, tuple[tuple, Any]] = {}      # kernel -> (source of the packing, packed weights)

    def __deepcopy__(self, memo) -> "PrepackedWeights":
        return PrepackedWeights()

    def get(self, kernel: str, conv: nn.Conv2d, pack: Callable[[], Any]) -> Any:
        source = tuple(_source(p) for p in (conv.weight, conv.bias))
        cached = self.packed.get(kernel)
        if cached is None or cached[0] != source:
            cached = self.packed[kernel] = (source, pack())
        return cached[1]


def _source(parameter: Optional[torch.Tensor]) -> Optional[tuple]:
    """(storage address, version) of a parameter; a tensor made under torch.inference_mode has no version
    counter (and is changed only inside it)."""
    if parameter is None:
        return None
    return parameter.data_ptr(), None if parameter.is_inference() else parameter._version


def convolve(conv: nn.Conv2d, weights: PrepackedWeights, x: torch.Tensor, activation: str,
             stride: tuple[int, int]) -> tuple[torch.Tensor, bool]:
    """``conv`` of ``x`` with ``stride`` (the caller may have subsampled ``x`` already) and, when oneDNN can
    fuse it, the activation. Returns (output, whether the activation was applied)."""
    if winograd.suits(conv, stride, x):
        packed, bias = weights.get("winograd", conv, lambda: winograd.pack(conv, x))
        return winograd.convolve(x, packed, bias, conv.padding, conv.out_channels), False
    post_op, scalars = POST_OPS.get(activation, ("none", []))
    packed = weights.get("direct", conv, lambda: torch.ops.mkldnn._reorder_convolution_weight(
        conv.weight.detach(), list(conv.padding), list(stride), list(conv.dilation), conv.groups, list(x.shape)))
    y = torch.ops.mkldnn._convolution_pointwise(x, packed, conv.bias, list(conv.padding), list(stride),
                                                list(conv.dilation), conv.groups, post_op, scalars, "")
    return y, activation in POST_OPS
