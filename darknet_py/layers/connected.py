"""`[connected]` / `[conn]` (spec §3.11): `y = act(W·x + b)` on the flattened (C, H, W) input."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config.reader import Section
from ..flavor import Flavor
from .activation import activate, get_activation
from .base import BuildContext, DarknetLayer, Shape
from .batchnorm import BatchNorm


class UninitializedLinear(nn.Linear):
    """``nn.Linear`` that skips PyTorch's initialisation; the layer draws Darknet's right after."""

    def reset_parameters(self) -> None:
        pass


@dataclass(frozen=True)
class ConnectedOptions:
    output: int
    activation: str
    batch_normalize: bool


def parse(section: Section, flavor: Flavor) -> ConnectedOptions:
    output = section.get_int("output", 1)
    if output < 1:
        raise section.error("'output' must be at least 1", section.option("output"))
    return ConnectedOptions(output, get_activation(section, "logistic"),
                            section.get_bool("batch_normalize", False))


class ConnectedLayer(DarknetLayer):
    kind = "connected"

    def __init__(self, opts: ConnectedOptions, ctx: BuildContext):
        inputs = ctx.input_shape.size
        if inputs <= 0:
            raise ctx.error("the previous layer has no outputs")
        ctx.require_countable(inputs * opts.output)
        super().__init__(ctx, Shape(opts.output, 1, 1))
        self.options = opts
        self.linear = UninitializedLinear(inputs, opts.output, bias=not opts.batch_normalize)
        self.bn = BatchNorm(opts.output, ctx.flavor) if opts.batch_normalize else None
        scale = (2.0 / inputs) ** 0.5
        with torch.no_grad():
            if not self.linear.weight.is_meta:      # see ConvolutionalLayer._init_like_darknet
                self.linear.weight.uniform_(-scale, scale)
            if self.linear.bias is not None:
                self.linear.bias.zero_()

    @property
    def biases(self) -> torch.Tensor:
        return self.bn.bias if self.bn is not None else self.linear.bias

    def forward(self, x, outputs):
        z = self.linear(x.flatten(1))
        if self.bn is not None:
            z = self.bn(z)
        return activate(z, self.options.activation).view(-1, self.options.output, 1, 1)

    def darknet_arrays(self):
        arrays = [self.biases, self.linear.weight]
        if self.bn is not None:
            arrays += [self.bn.weight, self.bn.running_mean, self.bn.running_var]
        return arrays

    def describe(self):
        return f"connected                    {self.in_shape.size:4d}  ->  {self.options.output:4d}"
