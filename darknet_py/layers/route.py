"""`[route]` (spec §3.4): channel concatenation of listed layers, AB `groups`/`group_id` slicing."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer, Shape


@dataclass(frozen=True)
class RouteOptions:
    layers: tuple[int, ...]     # as written (negative = relative)
    groups: int
    group_id: int


def parse(section: Section, flavor: Flavor) -> RouteOptions:
    if not section.has("layers"):
        raise section.error("'layers' is required")
    layers = section.get_ints("layers", ())
    groups = section.get_int("groups", 1) if flavor.alexeyab else 1
    group_id = section.get_int("group_id", 0) if flavor.alexeyab else 0
    if groups < 1 or not 0 <= group_id < groups:
        raise section.error("need groups >= 1 and 0 <= group_id < groups", section.option("group_id"))
    return RouteOptions(layers, groups, group_id)


class RouteLayer(DarknetLayer):
    kind = "route"

    def __init__(self, opts: RouteOptions, ctx: BuildContext):
        sources = tuple(ctx.resolve(ref) for ref in opts.layers)
        shapes = [ctx.shapes[i] for i in sources]
        first = shapes[0]
        for i, s in zip(sources, shapes):
            if (s.h, s.w) != (first.h, first.w):
                raise ctx.error(f"layers {sources[0]} ({first}) and {i} ({s}) differ in width/height",
                                value=",".join(map(str, opts.layers)))
            if s.c % opts.groups:
                raise ctx.error(f"layer {i} has {s.c} channels, not divisible by groups={opts.groups}")
        out_c = sum(s.c // opts.groups for s in shapes)
        super().__init__(ctx, Shape(out_c, first.h, first.w), sources)
        self.groups, self.group_id = opts.groups, opts.group_id

    def _slice(self, t: torch.Tensor) -> torch.Tensor:
        if self.groups == 1:
            return t
        part = t.shape[1] // self.groups
        return t[:, self.group_id * part:(self.group_id + 1) * part]

    def forward(self, x, outputs):
        parts = [self._slice(outputs[i]) for i in self.sources]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def describe(self):
        return "route  " + " ".join(str(i) for i in self.sources)
