"""Batch normalisation (spec §5): the module conv/connected layers use, and the `[batchnorm]` section.

Darknet's BN differs by build. Inference: AB (all paths) and PJ-GPU use ``(x-m)/sqrt(v+1e-5)``, PJ-CPU uses
``(x-m)/(sqrt(v)+1e-6)``. Training: ``train_mode`` (set by :func:`darknet_py.train.batchnorm.set_batchnorm_mode`)
selects cuDNN semantics (AB default, = torch BatchNorm with momentum .01) or one of the CPU reference builds
(spec §5.1, §5.3, §15.1), whose backward is *not* the gradient of their forward, so they get a custom
autograd function:

* ``ab_cpu``: ``x̂ = (x-μ)/sqrt(v+1e-5)`` with the unbiased variance ``v`` (÷(N-1)); running stats 0.9/0.1
  (0.95/0.05 for ``[connected]``); backward with the direct term ``1/(sqrt(v)+1e-5)``.
* ``pj_cpu``: ``x̂ = (x-μ)/(sqrt(v)+1e-6)``; running stats 0.99/0.01; backward with ``1/sqrt(v+1e-5)``.

Both backwards use the biased-variance derivative (÷N) and ``(v+1e-5)`` in the mean/variance terms. Only the
normalisation is custom; γ and β stay ordinary autograd (``dγ = Σ g·x̂``, ``dβ = Σ g``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer

EPS = 1e-5
MODES = ("cudnn", "ab_cpu", "pj_cpu")


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
            return cpu_reference_batchnorm(self, x)
        if self.flavor.bn_eps_outside_sqrt:
            # (x - mean) / (sqrt(var) + 1e-6) is batch norm with variance (sqrt(var) + 1e-6)^2 and eps 0: one
            # fused pass instead of four
            var = (self.running_var.sqrt() + 1e-6).square()
            return F.batch_norm(x, self.running_mean, var, self.weight, self.bias, False, 0.0, 0.0)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, EPS)

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) per channel with ``bn(x) == x * scale + shift`` in inference, by this fork's formula
        (what AlexeyAB's `fuse_conv_batchnorm` folds into a convolution); computed in float64, so folding
        adds no rounding beyond the final float32 product."""
        var = self.running_var.double()
        std = var.sqrt() + 1e-6 if self.flavor.bn_eps_outside_sqrt else (var + EPS).sqrt()
        scale = self.weight.double() / std
        return scale, self.bias.double() - self.running_mean.double() * scale

    def _check_input_dim(self, x):  # accept (N, C) for [connected] as well
        if x.dim() not in (2, 4):
            raise ValueError(f"expected 2D or 4D input (got {x.dim()}D input)")


@dataclass(frozen=True)
class CpuNormalization:
    """The constants that tell the two CPU builds apart."""
    eps_outside_sqrt: float      # forward: 0 -> (x-μ)/sqrt(v+1e-5); else (x-μ)/(sqrt(v)+eps)
    direct_eps_outside: bool     # backward direct term: 1/(sqrt(v)+1e-5) (AB) or 1/sqrt(v+1e-5) (PJ)
    momentum: float              # weight of the batch statistic in the running update
    connected_momentum: float


_CPU = {
    "ab_cpu": CpuNormalization(eps_outside_sqrt=0.0, direct_eps_outside=True, momentum=0.1,
                               connected_momentum=0.05),
    "pj_cpu": CpuNormalization(eps_outside_sqrt=1e-6, direct_eps_outside=False, momentum=0.01,
                               connected_momentum=0.01),
}


class _DarknetCpuNormalize(torch.autograd.Function):
    """x -> x̂ with Darknet's CPU forward; backward = Darknet's `mean_delta`/`variance_delta`/
    `normalize_delta` recipe (which is not the exact derivative of this forward)."""

    @staticmethod
    def forward(ctx, x, dims: tuple, count: int, mean, var, spec: CpuNormalization):
        centered = x - mean
        if spec.eps_outside_sqrt:
            x_hat = centered / (var.sqrt() + spec.eps_outside_sqrt)
        else:
            x_hat = centered / (var + EPS).sqrt()
        ctx.save_for_backward(centered, var)
        ctx.dims, ctx.count, ctx.spec = dims, count, spec
        return x_hat

    @staticmethod
    def backward(ctx, grad):
        centered, var = ctx.saved_tensors
        dims, n = ctx.dims, ctx.count
        var_eps = var + EPS
        mean_term = grad.sum(dim=dims, keepdim=True) * (-1.0 / var_eps.sqrt())
        var_term = (grad * centered).sum(dim=dims, keepdim=True) * (-0.5 * var_eps.pow(-1.5))
        direct = 1.0 / (var.sqrt() + EPS) if ctx.spec.direct_eps_outside else 1.0 / var_eps.sqrt()
        grad_x = grad * direct + var_term * (2.0 / n) * centered + mean_term / n
        return grad_x, None, None, None, None, None


def cpu_reference_batchnorm(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """Training-mode forward of ``bn`` with the CPU semantics named by ``bn.train_mode``; updates the running statistics once, like one Darknet forward."""
    spec = _CPU[bn.train_mode]
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    count = x.numel() // x.shape[1]
    with torch.no_grad():
        mean, var = _darknet_mean_variance(x.detach(), count)
        momentum = spec.connected_momentum if x.dim() == 2 else spec.momentum
        bn.running_mean.mul_(1.0 - momentum).add_(mean.view(-1), alpha=momentum)
        bn.running_var.mul_(1.0 - momentum).add_(var.view(-1), alpha=momentum)
    x_hat = _DarknetCpuNormalize.apply(x, dims, count, mean.view(shape), var.view(shape), spec)
    return x_hat * bn.weight.view(shape) + bn.bias.view(shape)


def _darknet_mean_variance(x: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and unbiased variance (÷(N-1); N == 1 gives NaN, as 0/0 does in Darknet).

    Darknet sums each channel one float at a time (image by image, then row-major). On CPU we reproduce
    that rounding: the BN backward subtracts nearly equal terms, and the ~1e-6 error of a sequential float
    mean over 65536 values changes first-layer weight gradients by ~0.5% (measured on the tiny3 fixture).
    CUDA (and non-float32) tensors use torch's reductions."""
    channels = x.shape[1]
    if x.device.type != "cpu" or x.dtype != torch.float32:
        mean = x.mean(dim=0) if x.dim() == 2 else x.mean(dim=(0, 2, 3))
        centered = x - mean.view((1, -1) + (1,) * (x.dim() - 2))
        return mean, centered.pow(2).transpose(0, 1).reshape(channels, -1).sum(dim=1) / (count - 1)
    per_channel = x.transpose(0, 1).reshape(channels, -1).numpy()
    mean = (_sequential_sum(per_channel).astype(np.float64) * (1.0 / count)).astype(np.float32)
    squares = np.square(per_channel - mean[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (_sequential_sum(squares).astype(np.float64) * (1.0 / (count - 1) if count > 1 else np.nan))
    return torch.from_numpy(mean), torch.from_numpy(var.astype(np.float32))


def _sequential_sum(rows: np.ndarray) -> np.ndarray:
    """Left-to-right float32 sum of each row (numpy's `sum` is pairwise, `accumulate` is sequential)."""
    if rows.shape[1] == 0:
        return np.zeros(rows.shape[0], dtype=np.float32)
    return np.add.accumulate(rows, axis=1, dtype=np.float32)[:, -1]


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
