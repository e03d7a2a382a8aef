"""Training-mode batch normalisation of Darknet's CPU builds (spec §5.1, §5.3, §15.1).

The default ("cudnn") is what AlexeyAB users train with on a GPU and equals ``torch.nn.BatchNorm2d``
(momentum .01, biased variance in the normalisation). The CPU builds differ, and their backward is *not* the
gradient of their forward, so they get a custom autograd function:

* ``ab_cpu``: ``x̂ = (x-μ)/sqrt(v+1e-5)`` with the unbiased variance ``v`` (÷(N-1)); running stats 0.9/0.1
  (0.95/0.05 for ``[connected]``); backward with the direct term ``1/(sqrt(v)+1e-5)``.
* ``pj_cpu``: ``x̂ = (x-μ)/(sqrt(v)+1e-6)``; running stats 0.99/0.01; backward with ``1/sqrt(v+1e-5)``.

Both backwards use the biased-variance derivative (÷N) and ``(v+1e-5)`` in the mean/variance terms. Only the
normalisation is custom; γ and β stay ordinary autograd (``dγ = Σ g·x̂``, ``dβ = Σ g``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

MODES = ("cudnn", "ab_cpu", "pj_cpu")
EPS = 1e-5


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
    """Training-mode forward of ``bn`` (a :class:`darknet_py.layers.batchnorm.BatchNorm`) with the CPU
    semantics named by ``bn.train_mode``; updates the running statistics once, like one Darknet forward."""
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


def set_batchnorm_mode(network: nn.Module, mode: str, freeze_beta: bool = False) -> None:
    """Choose the training semantics of every BN in ``network``: "cudnn" (default; AB/PJ GPU builds),
    "ab_cpu" or "pj_cpu". ``freeze_beta=True`` also reproduces stock AlexeyAB CPU, which never computes the
    β gradient of convolutional and [batchnorm] layers (spec §5.3); its [connected] layers do train β."""
    from ..layers.batchnorm import BatchNorm

    if mode not in MODES:
        raise ValueError(f"unknown batch-norm mode {mode!r}; expected one of {', '.join(MODES)}")
    for layer in network.modules():
        bn = getattr(layer, "bn", None)
        if not isinstance(bn, BatchNorm):
            continue
        bn.train_mode = mode
        bn.momentum = 0.01                     # nn.BatchNorm2d's running update, used by "cudnn" only
        trainable = not (freeze_beta and getattr(layer, "kind", "") in ("convolutional", "batchnorm"))
        bn.bias.requires_grad_(trainable)
