"""AB `[empty]` / `[silence]` (spec §3.14): identity."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer


@dataclass(frozen=True)
class EmptyOptions:
    pass


def parse(section: Section, flavor: Flavor) -> EmptyOptions:
    return EmptyOptions()


class EmptyLayer(DarknetLayer):
    kind = "empty"

    def __init__(self, opts: EmptyOptions, ctx: BuildContext):
        super().__init__(ctx, ctx.input_shape)

    def forward(self, x, outputs):
        return x
