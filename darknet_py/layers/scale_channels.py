"""AB `[scale_channels]` (spec §3.14): scale `from` by the previous 1×1×C output (or 1×H×W with
`scale_wh=1`), then activation."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.reader import Section
from ..flavor import Flavor
from .activation import activate, get_activation
from .base import BuildContext, DarknetLayer


@dataclass(frozen=True)
class ScaleChannelsOptions:
    source: int
    scale_wh: bool
    activation: str


def parse(section: Section, flavor: Flavor) -> ScaleChannelsOptions:
    if not section.has("from"):
        raise section.error("'from' is required")
    return ScaleChannelsOptions(section.get_int("from", 0), section.get_bool("scale_wh", False),
                                get_activation(section, "linear"))


class ScaleChannelsLayer(DarknetLayer):
    kind = "scale_channels"

    def __init__(self, opts: ScaleChannelsOptions, ctx: BuildContext):
        src = ctx.resolve(opts.source)
        target, prev = ctx.shapes[src], ctx.input_shape
        ok = (prev.c == 1 and (prev.h, prev.w) == (target.h, target.w)) if opts.scale_wh else \
            (prev.h == 1 and prev.w == 1 and prev.c == target.c)
        if not ok:
            raise ctx.error(f"cannot scale layer {src} ({target}) by the previous layer ({prev})")
        super().__init__(ctx, target, (src,))
        self.activation = opts.activation

    def forward(self, x, outputs):
        return activate(outputs[self.sources[0]] * x, self.activation)

    def describe(self):
        return f"scale Layer: {self.sources[0]}"
