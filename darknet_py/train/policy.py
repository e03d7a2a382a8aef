"""Learning-rate policies (spec §8): Darknet's `get_current_rate`, for both forks.

Darknet stores the `[net]` rates as C ``float`` and mixes float and double arithmetic; the result is returned
as a float. Reproducing those roundings matters: ``exp`` with ``gamma=0.998`` drifts by 3e-5 relative after
1200 iterations if gamma is taken as a double, and ``poly`` near ``max_batches`` amplifies the rounding of
``n/max_batches``. So every operand Darknet holds as a float goes through :func:`_f32`, every operation Darknet
does in float arithmetic is rounded, and double operations are left to Python floats (both use glibc's libm).
"""
from __future__ import annotations

import math
import random
from typing import Optional, Protocol

import numpy as np

from ..config.net import NetOptions
from ..errors import CfgError

_SIZE_T = 2 ** 64


class UniformSource(Protocol):
    """Anything with ``random() -> float in [0, 1]``: :class:`~darknet_py.data.rand.GlibcRandom`,
    ``random.Random``, ..."""

    def random(self) -> float: ...


def _f32(x: float) -> float:
    """Round to the nearest C float (what storing into a ``float`` or float arithmetic does)."""
    with np.errstate(all="ignore"):
        return float(np.float32(x))


def _pow(base: float, exponent: float) -> float:
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


def get_current_rate(net: NetOptions, iteration: int, rng: Optional[UniformSource] = None) -> float:
    """The learning rate Darknet uses for the update that ends iteration ``iteration`` (1 for the first
    update: ``iteration = seen / (batch*subdivisions)`` after the micro-batches). Burn-in first, then the
    policy. ``rng`` feeds ``policy=random``: :class:`~darknet_py.data.rand.GlibcRandom` reproduces a Darknet binary's draws; the
    default is Python's global generator (seeded and checkpointed by the training loop)."""
    n = iteration
    lr = _f32(net.learning_rate)
    if n < net.burn_in:
        return _f32(lr * _pow(_f32(_f32(n) / _f32(net.burn_in)), _f32(net.power)))
    policy = net.policy
    if policy == "sgdr" and net.flavor.pjreddie:
        policy = "constant"                     # pjreddie has no sgdr: "Couldn't find policy", constant
    if policy == "constant":
        return lr
    if policy == "step":
        return _f32(lr * _pow(_f32(net.scale), n // net.step))
    if policy == "steps":
        return _steps_rate(net, n, lr)
    if policy == "exp":
        return _f32(lr * _pow(_f32(net.gamma), n))
    if policy == "poly":
        fraction = _f32(_f32(n) / _f32(net.max_batches)) if net.max_batches else math.inf
        return _f32(lr * _pow(_f32(1.0 - fraction), _f32(net.power)))
    if policy == "random":
        u = (rng or random).random()
        return _f32(lr * _pow(u, _f32(net.power)))
    if policy == "sigmoid":
        return _sigmoid_rate(net, n, lr)
    if policy == "sgdr":
        return _sgdr_rate(net, n, lr)
    raise CfgError(f"unknown learning-rate policy '{net.policy}'")


def _steps_rate(net: NetOptions, n: int, lr: float) -> float:
    rate = lr
    for step, scale in zip(net.steps, net.scales):
        if step > n:                           # the first unmet step ends the scan (steps need not be sorted)
            break
        rate = _f32(rate * _f32(scale))        # `rate` is a float in Darknet: float multiplication
    return rate


def _sigmoid_rate(net: NetOptions, n: int, lr: float) -> float:
    distance = n - net.step
    if net.flavor.pjreddie and distance < 0:
        # pjreddie's batch number is a size_t: `n - step` wraps to ~1.8e19 before `step`, so exp() overflows
        # and the rate is exactly 0 (for gamma > 0) until iteration `step`.
        distance += _SIZE_T
    exponent = _f32(_f32(net.gamma) * _f32(distance))
    try:
        return _f32(lr * (1.0 / (1.0 + math.exp(exponent))))
    except OverflowError:
        return 0.0


def _sgdr_rate(net: NetOptions, n: int, lr: float) -> float:
    start, cycle = 0, net.sgdr_cycle
    while start + cycle < n:
        if cycle <= 0:
            raise CfgError(f"policy=sgdr needs a positive sgdr_cycle and sgdr_mult (cycle is {cycle}); "
                           "Darknet would loop forever here", value=str(net.sgdr_cycle),
                           hint="set sgdr_cycle (default: max_batches) and sgdr_mult >= 1 in [net]")
        start += cycle
        cycle *= net.sgdr_mult
    lr_min = _f32(net.learning_rate_min)
    spread = _f32(lr - lr_min)                 # float - float in Darknet
    angle = _f32(n - start) * 3.14159265 / cycle
    return _f32(lr_min + 0.5 * spread * (1.0 + math.cos(angle)))
