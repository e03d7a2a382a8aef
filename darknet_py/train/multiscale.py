"""Multiscale training (spec §7.4): `random` in the last detection layer re-picks the input size every 10
iterations of this process, starting with the first.

Usage (once per iteration, before taking its batch)::

    multiscale = Multiscale(multiscale_options(cfg), np.random.default_rng(seed))
    size = multiscale.next_size(iteration)        # iteration = updates done so far (get_current_iteration)
    if size: loader.set_size(*size); network.resize(*size)

* AB: ``r = rand_scale(coef)`` (coef 1.4 when random=1, else random);
  ``dim = round(r·init/resize_step + 1)·resize_step`` (float32, round half away from zero); a shrinking r
  that still gives a size above init keeps init; the largest size ``round(coef·init/step + 1)·step`` is used
  on the first resize of the process and while ``iteration > max_batches − 100``; at least one step.
* pj: square ``(rand() % 10 + 10)·32`` (320…608), 608 while ``iteration + 200 > max_batches``; `random` is
  read as an int there (``random=0.5`` disables it).

`state_dict()` holds the process's resize count and the generator state (plain ints/dicts), so a resumed
run restored from it picks the same sizes as an uninterrupted one; a fresh ``Multiscale`` behaves like a
restarted Darknet (count from 0, AB's first resize at the largest size).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..data.rand import rand_scale
from ..flavor import Flavor, flavor_of

F32 = np.float32
PERIOD = 10                  # iterations between size picks
AB_DEFAULT_COEF = 1.4        # random=1 means a factor of 1.4
AB_LAST_AT_MAX = 100         # AB trains at the largest size when iteration > max_batches - 100
PJ_LAST_AT_MAX = 200
PJ_STEP, PJ_MAX = 32, 608


@dataclass(frozen=True)
class MultiscaleOptions:
    flavor: Flavor           # a name is accepted and turned into the Flavor
    init_w: int
    init_h: int
    random: float            # the last detection layer's `random`
    max_batches: int
    resize_step: int = 32

    def __post_init__(self):
        object.__setattr__(self, "flavor", flavor_of(self.flavor))

    @property
    def enabled(self) -> bool:
        return self.random != 0 if self.flavor.alexeyab else int(self.random) != 0   # PJ reads random with atoi

    @property
    def coef(self) -> np.float32:
        return F32(AB_DEFAULT_COEF) if self.random == 1 else F32(self.random)


def multiscale_options(cfg) -> MultiscaleOptions:
    """From a CfgModel: `random` of the trainer's detection layer (:meth:`Flavor.trainer_layer`), else of the
    last layer."""
    last = cfg.flavor.trainer_layer(cfg.layers)
    last = cfg.layers[-1] if last is None else last
    net = cfg.net
    return MultiscaleOptions(cfg.flavor, net.width, net.height, float(getattr(last.options, "random", 0.0)),
                             net.max_batches, net.resize_step)


def ab_round(value: np.float32) -> int:
    """C `roundl` for the non-negative values that occur: halves round away from zero."""
    return int(math.floor(float(value) + 0.5))


class Multiscale:
    def __init__(self, options: MultiscaleOptions, rng: np.random.Generator):
        self.options = options
        self.rng = rng
        self.count = 0       # Darknet's `count`: iterations of this process seen while random is on

    def next_size(self, iteration: int) -> Optional[tuple[int, int]]:
        """Call once per iteration; returns the new (width, height) when Darknet re-picks, else None."""
        if not self.options.enabled:
            return None
        due = self.count % PERIOD == 0
        first = self.count == 0
        self.count += 1
        if not due:
            return None
        return self._pick_ab(iteration, first) if self.options.flavor.alexeyab else self._pick_pj(iteration)

    def _pick_pj(self, iteration: int) -> tuple[int, int]:
        dim = (int(self.rng.integers(10)) + 10) * PJ_STEP
        if iteration + PJ_LAST_AT_MAX > self.options.max_batches:
            dim = PJ_MAX
        return dim, dim

    def _pick_ab(self, iteration: int, first: bool) -> tuple[int, int]:
        o = self.options
        coef, step = o.coef, o.resize_step
        r = rand_scale(self.rng, coef)
        dim_w, dim_h = (ab_round(r * F32(n) / F32(step) + F32(1)) * step for n in (o.init_w, o.init_h))
        if r < 1 and (dim_w > o.init_w or dim_h > o.init_h):
            dim_w, dim_h = o.init_w, o.init_h
        if first or iteration > o.max_batches - AB_LAST_AT_MAX:
            dim_w, dim_h = (ab_round(coef * F32(n) / F32(step) + F32(1)) * step for n in (o.init_w, o.init_h))
        return max(dim_w, step), max(dim_h, step)

    def state_dict(self) -> dict:
        return {"count": self.count, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self.rng.bit_generator.state = state["rng"]
