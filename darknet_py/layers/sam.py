"""AB `[sam]` (spec §3.14): `out = prev ⊙ from`, then activation."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.reader import Section
from ..flavor import Flavor
from .activation import activate, get_activation
from .base import BuildContext, DarknetLayer


@dataclass(frozen=True)
class SamOptions:
    source: int
    activation: str


def parse(section: Section, flavor: Flavor) -> SamOptions:
    if not section.has("from"):
        raise section.error("'from' is required")
    return SamOptions(section.get_int("from", 0), get_activation(section, "linear"))


class SamLayer(DarknetLayer):
    kind = "sam"

    def __init__(self, opts: SamOptions, ctx: BuildContext):
        src = ctx.resolve(opts.source)
        if ctx.shapes[src] != ctx.input_shape:
            raise ctx.error(f"layer {src} ({ctx.shapes[src]}) and the previous layer ({ctx.input_shape}) "
                            "must have the same shape")
        super().__init__(ctx, ctx.input_shape, (src,))
        self.activation = opts.activation

    def forward(self, x, outputs):
        return activate(x * outputs[self.sources[0]], self.activation)

    def describe(self):
        return f"sam  {self.sources[0]}"
