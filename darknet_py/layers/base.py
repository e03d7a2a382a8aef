"""What every layer module shares: shapes, the build context, the base class."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..config.net import NetOptions
from ..errors import CfgError

INT_MAX = 2 ** 31 - 1


@dataclass(frozen=True)
class Shape:
    """Per-image output shape of a layer, Darknet order (c, h, w)."""
    c: int
    h: int
    w: int

    @property
    def size(self) -> int:
        return self.c * self.h * self.w

    def __str__(self) -> str:
        return f"{self.w} x {self.h} x {self.c}"


@dataclass(frozen=True)
class BuildContext:
    """What a layer needs to know about its place in the network while it is built."""
    index: int
    input_shape: Shape
    shapes: tuple[Shape, ...]      # output shapes of layers 0 .. index-1
    net: NetOptions
    file: str
    line: int
    kind: str
    draw_weights: bool = True      # False: the caller loads every parameter next (Darknet's random init skipped)

    @property
    def flavor(self) -> str:
        return self.net.flavor

    def error(self, message: str, value: Optional[str] = None, hint: Optional[str] = None) -> CfgError:
        return CfgError(f"layer {self.index} [{self.kind}]: {message}", file=self.file, line=self.line,
                        value=value, hint=hint)

    def resolve(self, ref: int) -> int:
        """A layer reference as Darknet reads it: negative = relative to this layer, else absolute."""
        target = self.index + ref if ref < 0 else ref
        if target < 0 or target >= self.index:
            raise self.error(f"refers to layer {target}, which is not an earlier layer",
                             value=str(ref), hint="route/shortcut may only use layers before this one")
        return target

    def require_countable(self, weights: int) -> None:
        """Darknet counts a layer's weights in a C int: more than 2^31 - 1 overflows there (and a typo such
        as filters=491024 would otherwise allocate gigabytes here before anything else fails)."""
        if weights > INT_MAX:
            raise self.error(f"{weights} weights is more than Darknet can count (2^31 - 1)",
                             hint="check filters/size/output for a typo")

    def require_image_input(self) -> None:
        s = self.input_shape
        if s.h <= 0 or s.w <= 0 or s.c <= 0:
            raise self.error(f"the previous layer must output an image, it outputs {s}")


class DarknetLayer(nn.Module):
    """Base of all layer modules. ``forward(x, outputs)`` gets the previous layer's output and the list of
    kept outputs of earlier layers (only those listed in ``sources`` are guaranteed to be there)."""

    kind: str = ""

    def __init__(self, ctx: BuildContext, out_shape: Shape, sources: tuple[int, ...] = ()):
        super().__init__()
        self.index = ctx.index
        self.in_shape = ctx.input_shape
        self.out_shape = out_shape
        self.sources = sources

    def darknet_arrays(self) -> list[torch.Tensor]:
        """Parameter/buffer tensors in `.weights` file order (spec §6.2); empty for layers without any."""
        return []

    def describe(self) -> str:
        return f"{self.kind}"

    def fuse_(self) -> None:
        """Prepare this layer for inference only (:meth:`darknet_py.network.Network.fuse_`), in place. Layers
        with something to fold override it; the others run as they are."""
