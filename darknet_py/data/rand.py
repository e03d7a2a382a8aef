"""Darknet's random helpers (`rand_uniform`, `rand_scale`, `rand_int`, `random_float`), drawn from an explicit
:class:`numpy.random.Generator` instead of C's global `rand()`.

The *distributions* are Darknet's (spec §11.3); the streams are not glibc's, so runs are reproducible by seed
but not draw-for-draw identical to a Darknet binary. Results are float32 because Darknet's helpers return C
`float`."""
from __future__ import annotations

import numpy as np


def random_float(rng: np.random.Generator) -> np.float32:
    """AB `random_float`: uniform in [0, 1]."""
    return np.float32(rng.random())


def rand_uniform(rng: np.random.Generator, low: float, high: float) -> np.float32:
    """`rand_uniform(min, max)`: uniform between the bounds, which are swapped when given in reverse order."""
    low, high = np.float32(low), np.float32(high)
    if high < low:
        low, high = high, low
    return np.float32(random_float(rng) * (high - low) + low)


def rand_scale(rng: np.random.Generator, s: float) -> np.float32:
    """`rand_scale(s)`: u ~ U(1, s), then u or 1/u with probability 1/2 each (log-asymmetric range)."""
    scale = rand_uniform(rng, 1.0, s)
    if rng.integers(2):
        return scale
    return np.float32(1.0 / float(scale))  # C: `1./scale` in double, returned as float


def rand_int(rng: np.random.Generator, low: int, high: int) -> int:
    """`rand_int(min, max)`: uniform integer in [min, max], both inclusive (bounds swapped if reversed)."""
    low, high = int(low), int(high)
    if high < low:
        low, high = high, low
    return int(rng.integers(low, high + 1))
