"""Darknet activations (spec §4) and the `[activation]` section."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer

Activation = Callable[[torch.Tensor], torch.Tensor]


def _loggy(x):
    return 2.0 * torch.sigmoid(x) - 1.0


def _relie(x):
    return torch.where(x > 0, x, 0.01 * x)


def _ramp(x):
    return x * (x > 0) + 0.1 * x


def _plse(x):
    return torch.where(x < -4, 0.01 * (x + 4), torch.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5))


def _lhtan(x):
    return torch.where(x < 0, 0.001 * x, torch.where(x > 1, 0.001 * (x - 1) + 1, x))


def _stair(x):
    n = torch.floor(x)
    half = torch.floor(x / 2)
    return torch.where(torch.remainder(n, 2) == 0, half, (x - n) + half)


def _hard_mish(x):
    return torch.where(x > 0, x, torch.where(x > -2, x * x / 2 + x, torch.zeros_like(x)))


def _gelu(x):
    return 0.5 * x * (1 + torch.tanh(0.797885 * x + 0.035677 * x * x * x))


ACTIVATIONS: dict[str, Activation] = {
    "linear": lambda x: x,
    "logistic": torch.sigmoid,
    "loggy": _loggy,
    "relu": F.relu,
    "relu6": lambda x: torch.clamp(x, 0, 6),
    "leaky": lambda x: F.leaky_relu(x, 0.1),
    "revleaky": lambda x: F.leaky_relu(x, 0.1),
    "relie": _relie,
    "ramp": _ramp,
    "elu": F.elu,
    "selu": lambda x: torch.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * torch.expm1(x)),
    "gelu": _gelu,
    "tanh": torch.tanh,
    "plse": _plse,
    "hardtan": lambda x: torch.clamp(x, -1, 1),
    "lhtan": _lhtan,
    "stair": _stair,
    "swish": lambda x: x * torch.sigmoid(x),
    "mish": F.mish,
    "hard_mish": _hard_mish,
}


# In-place forms, for outputs nobody else holds (inference without autograd): no new buffer per layer.
IN_PLACE: dict[str, Activation] = {
    "linear": lambda x: x,
    "logistic": torch.sigmoid_,
    "relu": F.relu_,
    "leaky": lambda x: F.leaky_relu_(x, 0.1),
}


def get_activation(section: Section, default: str) -> str:
    """Read `activation=`: unlike Darknet (which falls back to relu), an unknown name is an error."""
    return section.get_choice("activation", default, tuple(ACTIVATIONS))


def activate(x: torch.Tensor, name: str, in_place: bool = False) -> torch.Tensor:
    """``name`` applied to ``x``; with ``in_place`` (only for a tensor the caller owns) overwriting ``x``
    where a kernel for that exists."""
    if in_place and name in IN_PLACE:
        return IN_PLACE[name](x)
    return ACTIVATIONS[name](x)


@dataclass(frozen=True)
class ActivationOptions:
    activation: str


def parse(section: Section, flavor: Flavor) -> ActivationOptions:
    return ActivationOptions(get_activation(section, "linear"))


class ActivationLayer(DarknetLayer):
    kind = "activation"

    def __init__(self, opts: ActivationOptions, ctx: BuildContext):
        super().__init__(ctx, ctx.input_shape)
        self.activation = opts.activation

    def forward(self, x, outputs):
        return activate(x, self.activation)
