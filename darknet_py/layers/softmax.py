"""`[softmax]` / `[soft]` (spec §3.12): softmax over `groups` groups of the flat input, with temperature."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer


@dataclass(frozen=True)
class SoftmaxOptions:
    groups: int
    temperature: float


def parse(section: Section, flavor: Flavor) -> SoftmaxOptions:
    if section.has("tree"):
        raise section.error("softmax 'tree' (hierarchical softmax) is not supported by darknet_py",
                            section.option("tree"))
    groups = section.get_int("groups", 1)
    if groups < 1:
        raise section.error("'groups' must be at least 1", section.option("groups"))
    section.get_int("spatial", 0), section.get_int("noloss", 0)
    return SoftmaxOptions(groups, section.get_float("temperature", 1.0))


class SoftmaxLayer(DarknetLayer):
    kind = "softmax"

    def __init__(self, opts: SoftmaxOptions, ctx: BuildContext):
        if ctx.input_shape.size % opts.groups:
            raise ctx.error(f"{ctx.input_shape.size} inputs are not divisible into {opts.groups} groups")
        super().__init__(ctx, ctx.input_shape)
        self.options = opts

    def forward(self, x, outputs):
        n = x.shape[0]
        flat = x.reshape(n, self.options.groups, -1) / self.options.temperature
        return torch.softmax(flat, dim=2).reshape(x.shape)

    def describe(self):
        return "softmax"
