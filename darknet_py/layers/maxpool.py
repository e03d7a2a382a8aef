"""`[maxpool]` / `[max]` (spec §3.2): −inf padding, `size−1` total padding split floor/ceil, AB
`maxpool_depth`. `[local_avgpool]` shares the geometry, see :mod:`.local_avgpool`."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer, Shape


@dataclass(frozen=True)
class PoolOptions:
    size: int
    stride_x: int
    stride_y: int
    padding: int
    maxpool_depth: bool
    out_channels: int


def parse(section: Section, flavor: Flavor) -> PoolOptions:
    stride = section.get_int("stride", 1)
    stride_x = section.get_int("stride_x", stride) if flavor.alexeyab else stride
    stride_y = section.get_int("stride_y", stride) if flavor.alexeyab else stride
    size = section.get_int("size", stride)
    padding = section.get_int("padding", size - 1)
    for key, value in (("size", size), ("stride", min(stride_x, stride_y))):
        if value < 1:
            raise section.error(f"'{key}' must be at least 1", section.option(key))
    if padding < 0:
        raise section.error("'padding' must not be negative", section.option("padding"))
    for key in ("antialiasing", "maxpool_zero_nonmax"):
        if flavor.alexeyab and section.get_int(key, 0):
            raise section.error(f"'{key}' is not supported by darknet_py", section.option(key))
    return PoolOptions(size, stride_x, stride_y, padding,
                       maxpool_depth=flavor.alexeyab and section.get_bool("maxpool_depth", False),
                       out_channels=section.get_int("out_channels", 1) if flavor.alexeyab else 1)


def pooled_shape(opts: PoolOptions, ctx: BuildContext) -> Shape:
    ctx.require_image_input()
    s = ctx.input_shape
    if opts.maxpool_depth:
        if opts.out_channels < 1:
            raise ctx.error("'out_channels' must be at least 1")
        return Shape(opts.out_channels, s.h, s.w)
    out_h = (s.h + opts.padding - opts.size) // opts.stride_y + 1
    out_w = (s.w + opts.padding - opts.size) // opts.stride_x + 1
    if out_h < 1 or out_w < 1:
        raise ctx.error(f"a {opts.size}x{opts.size} window does not fit the {s.w}x{s.h} input")
    return Shape(s.c, out_h, out_w)


def _window_max(x: torch.Tensor, size: int, stride: int, out: int, dim: int) -> torch.Tensor:
    """Max over windows along one axis, as elementwise maxima of strided slices: max pooling is separable,
    and this is several times faster than PyTorch's CPU max_pool2d (which also computes indices)."""
    def shifted(k: int) -> torch.Tensor:
        index = [slice(None)] * x.dim()
        index[dim] = slice(k, k + (out - 1) * stride + 1, stride)
        return x[tuple(index)]
    result = shifted(0)
    for k in range(1, size):
        result = torch.maximum(result, shifted(k))
    return result


def pad_window(x: torch.Tensor, opts: PoolOptions, value: float) -> torch.Tensor:
    """Darknet's window for output (i, j) starts at i*stride − padding/2: pad floor/ceil of the total."""
    p = opts.padding
    return F.pad(x, (p // 2, p - p // 2, p // 2, p - p // 2), value=value)


class MaxpoolLayer(DarknetLayer):
    kind = "maxpool"

    def __init__(self, opts: PoolOptions, ctx: BuildContext):
        super().__init__(ctx, pooled_shape(opts, ctx))
        self.options = opts

    def forward(self, x, outputs):
        o = self.options
        if o.maxpool_depth:
            n, c, h, w = x.shape
            groups = -(-c // o.out_channels)
            padded = F.pad(x, (0, 0, 0, 0, 0, groups * o.out_channels - c), value=float("-inf"))
            return padded.view(n, groups, o.out_channels, h, w).amax(dim=1)
        h, w = x.shape[-2:]      # not the build-time shape: multiscale training resizes the network
        out_h = (h + o.padding - o.size) // o.stride_y + 1
        out_w = (w + o.padding - o.size) // o.stride_x + 1
        reach_h, reach_w = (out_h - 1) * o.stride_y + o.size, (out_w - 1) * o.stride_x + o.size
        if o.padding // 2 == 0 and reach_h <= h and reach_w <= w:
            # Darknet pads top/left by padding/2 and reads −inf past the input; here no window reaches the
            # padding (size 2 stride 2 on an even size), so skip the padded copy
            x = x[..., :reach_h, :reach_w]
        else:
            x = pad_window(x, o, float("-inf"))
        if torch.is_grad_enabled() and x.requires_grad:
            # PyTorch's kernel routes the gradient to the first maximum in scan order, as Darknet does
            return F.max_pool2d(x, (o.size, o.size), (o.stride_y, o.stride_x))
        return _window_max(_window_max(x, o.size, o.stride_y, out_h, dim=2), o.size, o.stride_x, out_w, dim=3)

    def describe(self):
        o = self.options
        return f"max          {o.size} x {o.size} / {o.stride_x}"
