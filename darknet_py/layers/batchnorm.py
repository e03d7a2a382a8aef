"""Batch normalisation (spec §5): the module conv/connected layers use, and the `[batchnorm]` section.

Darknet's BN differs by build. Inference: AB (all paths) and PJ-GPU use ``(x-m)/sqrt(v+1e-5)``, PJ-CPU uses
``(x-m)/(sqrt(v)+1e-6)``. Training: ``mode`` selects cuDNN semantics (AB default, = torch BatchNorm with
momentum .01) or the CPU reference builds; see :mod:`darknet_py.train.batchnorm` for the training variants.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer

EPS = 1e-5


class BatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d(eps=1e-5, momentum=0.01)`` with Darknet's fresh running variance of 0.

    ``flavor`` picks the inference formula; ``train_mode`` ("cudnn", "ab_cpu", "pj_cpu") the training one.
    Works on (N, C, H, W) and (N, C) inputs."""

    def __init__(self, channels: int, flavor: Flavor):
        super().__init__(channels, eps=EPS, momentum=0.01)
        nn.init.zeros_(self.running_var)
        self.flavor = flavor
        self.train_mode = "cudnn"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            if self.train_mode == "cudnn":
                return super().forward(x)
            from ..train.batchnorm import cpu_reference_batchnorm
            return cpu_reference_batchnorm(self, x)
        if self.flavor.bn_eps_outside_sqrt:
            # (x - mean) / (sqrt(var) + 1e-6) is batch norm with variance (sqrt(var) + 1e-6)^2 and eps 0: one
            # fused pass instead of four
            var = (self.running_var.sqrt() + 1e-6).square()
            return F.batch_norm(x, self.running_mean, var, self.weight, self.bias, False, 0.0, 0.0)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, EPS)

    def _check_input_dim(self, x):  # accept (N, C) for [connected] as well
        if x.dim() not in (2, 4):
            raise ValueError(f"expected 2D or 4D input (got {x.dim()}D input)")


@dataclass(frozen=True)
class BatchNormOptions:
    pass


def parse(section: Section, flavor: Flavor) -> BatchNormOptions:
    return BatchNormOptions()


class BatchNormLayer(DarknetLayer):
    """Standalone `[batchnorm]`. File layout differs by fork: PJ 3 arrays, AB 4 (β first)."""
    kind = "batchnorm"

    def __init__(self, opts: BatchNormOptions, ctx: BuildContext):
        super().__init__(ctx, ctx.input_shape)
        self.bn = BatchNorm(ctx.input_shape.c, ctx.flavor)
        self.flavor = ctx.flavor

    def forward(self, x, outputs):
        return self.bn(x)

    def darknet_arrays(self):
        bn = self.bn
        arrays = [bn.weight, bn.running_mean, bn.running_var]
        return [bn.bias] + arrays if self.flavor.batchnorm_layer_saves_biases else arrays
