"""`[reorg]` (PJ, = AB reorg_old) with its flat-memory semantics, and AB `[reorg3d]` (spec §3.9)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer, Shape


@dataclass(frozen=True)
class ReorgOptions:
    stride: int


def parse(section: Section, flavor: Flavor) -> ReorgOptions:
    stride = section.get_int("stride", 1)
    if stride < 1:
        raise section.error("'stride' must be at least 1", section.option("stride"))
    for key in ("flatten", "extra", "reverse"):
        if section.get_int(key, 0):
            raise section.error(f"'{key}' reorg mode is not supported by darknet_py", section.option(key))
    return ReorgOptions(stride)


def _out_shape(opts: ReorgOptions, ctx: BuildContext) -> Shape:
    ctx.require_image_input()
    s, st = ctx.input_shape, opts.stride
    if s.h % st or s.w % st:
        raise ctx.error(f"width/height {s.w}x{s.h} must be divisible by stride {st}")
    return Shape(s.c * st * st, s.h // st, s.w // st)


def _darknet_reorg(x, s: int):
    """Darknet's `reorg_cpu(forward=0)` on the (C, H, W) buffer: see spec §3.9 for the index map."""
    n, c, h, w = x.shape
    cp = c // (s * s)
    xp = x.reshape(n, cp, h * s, w * s)
    yp = xp.reshape(n, cp, h, s, w, s).permute(0, 3, 5, 1, 2, 4).reshape(n, s * s * cp, h, w)
    return yp.reshape(n, c * s * s, h // s, w // s)


class ReorgLayer(DarknetLayer):
    kind = "reorg"

    def __init__(self, opts: ReorgOptions, ctx: BuildContext):
        super().__init__(ctx, _out_shape(opts, ctx))
        self.options = opts

    def forward(self, x, outputs):
        return _darknet_reorg(x, self.options.stride)

    def describe(self):
        return f"reorg              / {self.options.stride}"


class Reorg3dLayer(ReorgLayer):
    """AB `[reorg3d]`: true space-to-depth, out[(dy·s+dx)·C + c, y, x] = in[c, y·s+dy, x·s+dx]."""
    kind = "reorg3d"

    def forward(self, x, outputs):
        n, c, h, w = x.shape
        s = self.options.stride
        return x.reshape(n, c, h // s, s, w // s, s).permute(0, 3, 5, 1, 2, 4).reshape(
            n, c * s * s, h // s, w // s)
