"""Darknet's random helpers (`rand_uniform`, `rand_scale`, `rand_int`, `random_float`), drawn from an explicit
:class:`numpy.random.Generator` instead of C's global `rand()`, and glibc's `rand()` itself
(:class:`GlibcRandom`) where a draw-for-draw match with a Darknet binary matters (`policy=random`,
`calc_anchors`).

The augmentation *distributions* are Darknet's (spec §11.3); their streams are not glibc's, so runs are
reproducible by seed but not draw-for-draw identical to a Darknet binary. Results are float32 because
Darknet's helpers return C `float`."""
from __future__ import annotations

import numpy as np

RAND_MAX = 2147483647


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


class GlibcRandom:
    """glibc's ``rand()`` (the TYPE_3 additive feedback generator, the default state size), so that
    ``policy=random`` draws the same sequence as a Darknet binary after ``srand(seed)``."""

    _DEGREE, _SEPARATION = 31, 3

    def __init__(self, seed: int = 1):
        word = seed & 0xFFFFFFFF or 1          # glibc maps seed 0 to 1
        if word >= 2 ** 31:
            word -= 2 ** 32
        state = [word]
        for _ in range(1, self._DEGREE):
            # Schrage's method for 16807 * word mod (2^31 - 1) without overflow, as glibc computes it
            hi = word // 127773 if word >= 0 else -(-word // 127773)   # C truncating division
            lo = word - hi * 127773
            word = 16807 * lo - 2836 * hi
            if word < 0:
                word += RAND_MAX
            state.append(word)
        self._state = [s & 0xFFFFFFFF for s in state]
        self._front, self._rear = self._SEPARATION, 0
        for _ in range(10 * self._DEGREE):     # glibc discards the first 310 outputs
            self.rand()

    def state_dict(self) -> dict:
        """The generator's position: a resumed run draws the rest of the same sequence."""
        return {"_state": list(self._state), "_front": self._front, "_rear": self._rear}

    def load_state_dict(self, state: dict) -> None:
        self._state = [int(word) for word in state["_state"]]
        self._front, self._rear = int(state["_front"]), int(state["_rear"])

    def rand(self) -> int:
        s = self._state
        s[self._front] = (s[self._front] + s[self._rear]) & 0xFFFFFFFF
        result = s[self._front] >> 1
        self._front = (self._front + 1) % self._DEGREE
        self._rear = (self._rear + 1) % self._DEGREE
        return result

    def random(self) -> float:
        """Darknet's ``rand_uniform(0, 1)``: ``(float)rand() / RAND_MAX`` in float arithmetic."""
        quotient = float(np.float32(self.rand())) / float(np.float32(RAND_MAX))   # two C floats
        return float(np.float32(quotient))
