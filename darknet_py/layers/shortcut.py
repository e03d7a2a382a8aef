"""`[shortcut]` (spec §3.5): residual add with Darknet's channel-overlap rule.

AB: `from` may list several layers, optional learned weights (`weights_type`, `weights_normalization`).
PJ: one `from`, `alpha`/`beta`, and a strided add when the spatial sizes differ by an integer factor."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config.reader import Section
from ..flavor import Flavor
from .activation import activate, get_activation
from .base import BuildContext, DarknetLayer

WEIGHTS_TYPES = ("none", "per_feature", "per_layer", "per_channel")
NORMALIZATIONS = ("none", "relu", "avg_relu", "softmax")


@dataclass(frozen=True)
class ShortcutOptions:
    sources: tuple[int, ...]   # as written (negative = relative)
    activation: str
    weights_type: str          # none | per_feature | per_channel
    weights_normalization: str  # none | relu | softmax
    alpha: float
    beta: float


def parse(section: Section, flavor: Flavor) -> ShortcutOptions:
    if not section.has("from"):
        raise section.error("'from' is required")
    sources = section.get_ints("from", ())
    if not flavor.shortcut_weighted_inputs and len(sources) != 1:
        raise section.error("pjreddie's [shortcut] takes exactly one 'from'", section.option("from"))
    weights_type, normalization = "none", "none"
    if flavor.shortcut_weighted_inputs:
        weights_type = section.get_choice("weights_type", "none", WEIGHTS_TYPES)
        weights_type = "per_feature" if weights_type == "per_layer" else weights_type
        normalization = section.get_choice("weights_normalization", "none", NORMALIZATIONS)
        normalization = "relu" if normalization == "avg_relu" else normalization
    return ShortcutOptions(
        sources, get_activation(section, "linear"), weights_type, normalization,
        alpha=1.0 if flavor.shortcut_weighted_inputs else section.get_float("alpha", 1.0),
        beta=1.0 if flavor.shortcut_weighted_inputs else section.get_float("beta", 1.0))


class ShortcutLayer(DarknetLayer):
    kind = "shortcut"

    def __init__(self, opts: ShortcutOptions, ctx: BuildContext):
        ctx.require_image_input()
        sources = tuple(ctx.resolve(ref) for ref in opts.sources)
        out = ctx.input_shape
        for i in sources:
            s = ctx.shapes[i]
            if (s.h, s.w) != (out.h, out.w) and not _integer_ratio(ctx, s, out):
                raise ctx.error(f"layer {i} is {s}, the previous layer {out}: spatial sizes must match")
        super().__init__(ctx, out, sources)
        self.options = opts
        self.weights = None
        if opts.weights_type != "none":
            shape = (len(sources) + 1,) + ((out.c,) if opts.weights_type == "per_channel" else ())
            self.weights = nn.Parameter(torch.ones(shape))

    def _normalized_weights(self) -> torch.Tensor:
        w = self.weights
        if self.options.weights_normalization == "relu":
            r = torch.relu(w)
            return r / (1e-4 + r.sum(dim=0, keepdim=True))
        if self.options.weights_normalization == "softmax":
            e = torch.exp(w - w.max(dim=0, keepdim=True).values)
            return e / (1e-4 + e.sum(dim=0, keepdim=True))
        return w

    def forward(self, x, outputs):
        o = self.options
        if self.weights is None:
            out = x
            for i in self.sources:
                out = _add_overlap(out, outputs[i], o.alpha, o.beta)
            return activate(out, o.activation)
        w = self._normalized_weights()
        per_channel = w.dim() == 2
        out = x * (w[0].view(1, -1, 1, 1) if per_channel else w[0])
        for k, i in enumerate(self.sources, start=1):
            add = outputs[i][:, :out.shape[1]]
            add = add * (w[k][:add.shape[1]].view(1, -1, 1, 1) if per_channel else w[k])
            out = _add_overlap(out, add, 1.0, 1.0)
        return activate(out, o.activation)

    def darknet_arrays(self):
        return [] if self.weights is None else [self.weights]

    def describe(self):
        return "res  " + " ".join(str(i) for i in self.sources)


def _integer_ratio(ctx: BuildContext, src, out) -> bool:
    """PJ allows a `from` whose size is an integer multiple/fraction of the previous layer's."""
    if ctx.flavor.alexeyab:
        return False
    big, small = (src, out) if src.w >= out.w else (out, src)
    return small.w > 0 and small.h > 0 and big.w % small.w == 0 and big.w // small.w == big.h // small.h \
        and big.h % small.h == 0


def _add_overlap(out: torch.Tensor, add: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """alpha·out + beta·add on the overlapping region; extra channels of `out` pass through, of `add` are
    ignored. Different spatial sizes (PJ only): subsample the larger / add at block corners."""
    c = min(out.shape[1], add.shape[1])
    h2, w2 = out.shape[2:]
    h1, w1 = add.shape[2:]
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    src = add[:, :c, ::stride, ::stride][:, :, :min(h1, h2), :min(w1, w2)]
    if c == out.shape[1] and sample == 1 and src.shape[2:] == out.shape[2:]:
        return alpha * out + beta * src if alpha != 1.0 else out + beta * src
    result = out.clone()
    region = result[:, :c, ::sample, ::sample][:, :, :src.shape[2], :src.shape[3]]
    result[:, :c, ::sample, ::sample][:, :, :src.shape[2], :src.shape[3]] = alpha * region + beta * src
    return result
