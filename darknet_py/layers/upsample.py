"""`[upsample]` (spec §3.6): nearest neighbour ×stride times `scale`; negative stride = sum-downsample."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer, Shape


@dataclass(frozen=True)
class UpsampleOptions:
    stride: int
    scale: float


def parse(section: Section, flavor: Flavor) -> UpsampleOptions:
    stride = section.get_int("stride", 2)
    if stride == 0:
        raise section.error("'stride' must not be 0", section.option("stride"))
    return UpsampleOptions(stride, section.get_float("scale", 1.0))


class UpsampleLayer(DarknetLayer):
    kind = "upsample"

    def __init__(self, opts: UpsampleOptions, ctx: BuildContext):
        ctx.require_image_input()
        s, st = ctx.input_shape, opts.stride
        out = Shape(s.c, s.h * st, s.w * st) if st > 0 else Shape(s.c, s.h // -st, s.w // -st)
        if out.h < 1 or out.w < 1:
            raise ctx.error(f"downsampling {s} by {-st} leaves nothing")
        super().__init__(ctx, out)
        self.options = opts

    def forward(self, x, outputs):
        st, scale = self.options.stride, self.options.scale
        if st > 0:
            y = _repeat_pixels(x, st)
        else:
            k = -st
            y = F.avg_pool2d(x, k, divisor_override=1)      # sum of each k x k block; a remainder is dropped
        return y * scale if scale != 1.0 else y

    def describe(self):
        return f"upsample           {self.options.stride}x"


def _repeat_pixels(x: torch.Tensor, st: int) -> torch.Tensor:
    """Each pixel repeated st x st times, in ``x``'s memory format: a channels_last input (the inference
    network's) stays channels_last, so the `[route]` that joins it to another channels_last output is a plain
    copy and the next convolution reads it without a reorder."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        nhwc = x.permute(0, 2, 3, 1)
        return nhwc.repeat_interleave(st, dim=1).repeat_interleave(st, dim=2).permute(0, 3, 1, 2)
    return x.repeat_interleave(st, dim=2).repeat_interleave(st, dim=3)
