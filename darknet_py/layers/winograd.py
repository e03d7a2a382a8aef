"""Winograd's F(2x2, 3x3) for the inference network's 3x3 convolutions on small, deep feature maps (one of the
kernels of :mod:`.fused_conv`).

Each 2x2 block of output pixels is computed from the 4x4 input block around it: the block is transformed
(B^T d B, only additions), multiplied channel by channel with the weights transformed once (G g G^T), and
transformed back (A^T m A, additions again). The 16 products of a block become 16 matrix products over all
blocks: 4 multiplications per output pixel and input channel instead of 9. oneDNN runs the 16 products as one
grouped 1x1 convolution (its matrix kernel runs near one core's peak; MKL's `bmm` reaches less than half of
it on AMD CPUs), and the additions are a few whole-tensor passes.

The same sums in another order: against a float64 convolution its float32 error is below oneDNN's direct
kernel's (tests/network/test_winograd.py). It pays where the products dominate the transforms' extra memory
passes: deep layers (at least 256 channels in and out, or 128 on a map of at most 32x32) with enough work, on
one thread (:func:`suits`; yolov4-tiny at 416: its 3x3 layers at 26x26 and 13x13; each measured in
bench/RESULTS.md). The rule depends on the shapes and the thread count only, so a given network,
input size and thread count always takes the same kernels."""
from __future__ import annotations

import torch
from torch import nn

MIN_MULTIPLY_ADDS = 50_000_000    # of the direct convolution of one image; below it the ~20 passes dominate
MIN_CHANNELS = 128                 # input channels and filters; below it the transforms cost more than they save
MAX_SHALLOW_PIXELS = 32 * 32       # output pixels of one image up to which 128-255 channels still gain

# the weight transform G (4x3); the data transforms B^T and A^T are written out as additions below
WEIGHT_TRANSFORM = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
# the product at block position (1, 1) reaches each of the 4 output pixels once: the bias goes there
BIAS_GROUP = 5


def suits(conv: nn.Conv2d, stride: tuple[int, int], x: torch.Tensor) -> bool:
    """A 3x3, stride-1, undilated, ungrouped convolution of ``x`` with enough work and channels to gain, on one
    thread (on two, each of the ~20 passes wakes the other thread: slower than oneDNN's direct kernel). Per
    image, not per batch: an image gets the same kernel, hence the same numbers, in any batch."""
    if (tuple(conv.kernel_size) != (3, 3) or tuple(stride) != (1, 1) or tuple(conv.dilation) != (1, 1)
            or conv.groups != 1 or torch.get_num_threads() != 1):
        return False
    out_h, out_w = output_size(x, conv.padding)
    if out_h <= 0 or out_w <= 0:
        return False
    pixels = out_h * out_w
    channels = min(conv.in_channels, conv.out_channels)
    deep_enough = channels >= 2 * MIN_CHANNELS or (channels >= MIN_CHANNELS and pixels <= MAX_SHALLOW_PIXELS)
    return deep_enough and pixels * conv.in_channels * conv.out_channels * 9 >= MIN_MULTIPLY_ADDS


def pack(conv: nn.Conv2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights in oneDNN's layout, bias) of the grouped convolution, for inputs shaped like ``x``."""
    weight, bias = transformed_weights(conv)
    packed = torch.ops.mkldnn._reorder_convolution_weight(weight, [0, 0], [1, 1], [1, 1], 16, blocks_shape(conv, x))
    return packed, bias


def transformed_weights(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights, bias) of the grouped 1x1 convolution: group 4a+b holds G g G^T at block position (a, b) for
    every (filter, channel) pair g, as one matrix product (G ⊗ G, whose entries are exact in float32, times
    the 9 taps of every pair); the bias sits in group :data:`BIAS_GROUP`."""
    weight = conv.weight.detach()
    filters, channels = weight.shape[:2]
    g = torch.tensor(WEIGHT_TRANSFORM, dtype=weight.dtype)
    taps = weight.permute(2, 3, 0, 1).reshape(9, filters * channels)        # a view: tap 3i+j, then the pair
    u = torch.kron(g, g) @ taps
    bias = torch.zeros(16, filters, dtype=weight.dtype)
    if conv.bias is not None:
        bias[BIAS_GROUP] = conv.bias.detach()
    return u.view(16 * filters, channels, 1, 1), bias.reshape(-1)


def blocks_shape(conv: nn.Conv2d, x: torch.Tensor) -> list[int]:
    """The shape of the grouped convolution's input for ``x``: (1, 16 x channels, 1, blocks)."""
    n, c = x.shape[:2]
    blocks_y, blocks_x = _blocks(*output_size(x, conv.padding))
    return [1, 16 * c, 1, n * blocks_y * blocks_x]


def output_size(x: torch.Tensor, padding: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a 3x3, stride-1 convolution's output for ``x`` and ``padding``."""
    h, w = x.shape[-2:]
    return h + 2 * padding[0] - 2, w + 2 * padding[1] - 2


def _blocks(out_h: int, out_w: int) -> tuple[int, int]:
    """2x2 output blocks down and across (an odd size: the last block half outside)."""
    return (out_h + 1) // 2, (out_w + 1) // 2


def convolve(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor, padding: tuple[int, int],
             filters: int) -> torch.Tensor:
    """The convolution of ``x`` (N, C, H, W), bias included and no activation, channels_last, from the
    weights and bias of :func:`pack`."""
    n, c = x.shape[:2]
    out_h, out_w = output_size(x, padding)
    blocks = _input_blocks(x, padding, *_blocks(out_h, out_w))
    by, bx = blocks.shape[1:3]
    products = torch.ops.mkldnn._convolution_pointwise(
        blocks.view(1, 1, n * by * bx, 16 * c).permute(0, 3, 1, 2), packed, bias, [0, 0], [1, 1], [1, 1], 16,
        "none", [], "")
    y = _output_pixels(products.permute(0, 2, 3, 1).view(n, by, bx, 4, 4, filters))
    if y.shape[1] != out_h or y.shape[2] != out_w:      # an odd size: the last block's second row/column
        y = y[:, :out_h, :out_w].contiguous()
    return y.permute(0, 3, 1, 2)


def _input_blocks(x: torch.Tensor, padding: tuple[int, int], by: int, bx: int) -> torch.Tensor:
    """B^T d B of every 4x4 input block d (stride 2), as (N, by, bx, 4, 4, C): rows first, then columns."""
    n, c, h, w = x.shape
    canvas = x.new_zeros(n, 2 * by + 2, 2 * bx + 2, c)
    canvas[:, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x.permute(0, 2, 3, 1)
    rows = x.new_empty(n, by, 4, 2 * bx + 2, c)
    _transform_input(rows.unbind(2), [canvas[:, k:k + 2 * by:2] for k in range(4)])
    blocks = x.new_empty(n, by, bx, 4, 4, c)
    columns = [rows[:, :, :, k:k + 2 * bx:2] for k in range(4)]           # (N, by, 4, bx, C)
    _transform_input([blocks[:, :, :, :, b].transpose(2, 3) for b in range(4)], columns)
    return blocks


def _transform_input(out: list[torch.Tensor], d: list[torch.Tensor]) -> None:
    """B^T along one axis: (d0 - d2, d1 + d2, d2 - d1, d1 - d3)."""
    torch.sub(d[0], d[2], out=out[0])
    torch.add(d[1], d[2], out=out[1])
    torch.sub(d[2], d[1], out=out[2])
    torch.sub(d[1], d[3], out=out[3])


def _output_pixels(m: torch.Tensor) -> torch.Tensor:
    """A^T m A of every block's 4x4 products m (N, by, bx, 4, 4, F): the 2x2 output pixels, as
    (N, 2 by, 2 bx, F)."""
    n, by, bx = m.shape[:3]
    filters = m.shape[-1]
    rows = m.new_empty(n, by, bx, 2, 4, filters)
    _transform_output(rows.unbind(3), m.unbind(3))
    y = m.new_empty(n, by, 2, bx, 2, filters)
    _transform_output([y[:, :, :, :, b] for b in range(2)], [rows[..., k, :].transpose(2, 3) for k in range(4)])
    return y.view(n, 2 * by, 2 * bx, filters)


def _transform_output(out: list[torch.Tensor], m: list[torch.Tensor]) -> None:
    """A^T along one axis: (m0 + m1 + m2, m1 - m2 - m3)."""
    torch.add(m[0], m[1], out=out[0]).add_(m[2])
    torch.sub(m[1], m[2], out=out[1]).sub_(m[3])
