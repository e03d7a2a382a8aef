"""`[dropout]` (spec §3.10): identity at inference; probability default .5 (PJ) / .2 (AB)."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from ..config.known_keys import DROPOUT_INERT, report_unimplemented
from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer


@dataclass(frozen=True)
class DropoutOptions:
    probability: float


def parse(section: Section, flavor: Flavor) -> DropoutOptions:
    p = section.get_float("probability", flavor.dropout_probability_default)
    if not 0.0 <= p < 1.0:
        raise section.error("'probability' must be in [0, 1)", section.option("probability"))
    if section.get_int("dropblock", 0):
        raise section.error("'dropblock' is not supported by darknet_py", section.option("dropblock"))
    report_unimplemented(section, {}, DROPOUT_INERT)
    return DropoutOptions(p)


class DropoutLayer(DarknetLayer):
    kind = "dropout"

    def __init__(self, opts: DropoutOptions, ctx: BuildContext):
        super().__init__(ctx, ctx.input_shape)
        self.probability = opts.probability

    def forward(self, x, outputs):
        return F.dropout(x, self.probability, self.training)

    def describe(self):
        return f"dropout       p = {self.probability:.2f}"
