"""`[avgpool]` / `[avg]` (spec §3.3): global average over h×w."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer, Shape


@dataclass(frozen=True)
class AvgpoolOptions:
    pass


def parse(section: Section, flavor: Flavor) -> AvgpoolOptions:
    return AvgpoolOptions()


class AvgpoolLayer(DarknetLayer):
    kind = "avgpool"

    def __init__(self, opts: AvgpoolOptions, ctx: BuildContext):
        ctx.require_image_input()
        super().__init__(ctx, Shape(ctx.input_shape.c, 1, 1))

    def forward(self, x, outputs):
        return x.mean(dim=(2, 3), keepdim=True)

    def describe(self):
        return "avg"
