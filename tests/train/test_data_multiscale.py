"""Multiscale training sizes (spec §7.4) over 1000 iterations, re-derived here from the spec's formulas with
the same random draws (rand_scale: u = U(1, coef) from one uniform draw, then a coin: u if 1 else 1/u)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from darknet_py.train.multiscale import Multiscale, MultiscaleOptions, multiscale_options

F32 = np.float32


def _spec_ab(rng, iteration, first, init_w, init_h, random, step, max_batches):
    coef = F32(1.4) if random == 1 else F32(random)
    u = F32(F32(rng.random()) * (coef - F32(1)) + F32(1)) if coef >= 1 else \
        F32(F32(rng.random()) * (F32(1) - coef) + coef)
    r = u if rng.integers(2) else F32(1.0 / float(u))
    rnd = lambda v: int(math.floor(float(v) + 0.5))      # C roundl, values are positive
    w = rnd(r * F32(init_w) / F32(step) + F32(1)) * step
    h = rnd(r * F32(init_h) / F32(step) + F32(1)) * step
    if r < 1 and (w > init_w or h > init_h):
        w, h = init_w, init_h
    if first or iteration > max_batches - 100:
        w = rnd(coef * F32(init_w) / F32(step) + F32(1)) * step
        h = rnd(coef * F32(init_h) / F32(step) + F32(1)) * step
    return max(w, step), max(h, step)


def _run(options, seed, iterations, start=0):
    ms = Multiscale(options, np.random.default_rng(seed))
    return [ms.next_size(i) for i in range(start, iterations)]


@pytest.mark.parametrize("init, random, step", [((416, 416), 1.0, 32), ((416, 320), 1.2, 32),
                                                ((608, 608), 1.5, 64)])
def test_ab_sizes_follow_the_spec(init, random, step):
    options = MultiscaleOptions("ab", init[0], init[1], random, max_batches=1000, resize_step=step)
    got = _run(options, seed=11, iterations=1000)
    rng = np.random.default_rng(11)
    expected = [(_spec_ab(rng, i, i == 0, init[0], init[1], random, step, 1000) if i % 10 == 0 else None)
                for i in range(1000)]
    assert got == expected
    sizes = {s for s in got if s}
    # multiples of the step, except when a shrinking draw falls back to the initial size
    assert len(sizes) > 3 and all((w % step == 0 and h % step == 0) or (w, h) == init for w, h in sizes)


def test_ab_416_range_first_and_last():
    options = MultiscaleOptions("ab", 416, 416, 1.0, max_batches=1000)
    got = _run(options, seed=3, iterations=1000)
    picked = [s for s in got if s]
    assert got[0] == (608, 608)                            # first resize of the process: largest size
    assert all(got[i] == (608, 608) for i in range(910, 1000, 10))      # iteration > max_batches - 100
    assert {w for w, _ in picked} <= set(range(320, 609, 32)) and len({w for w, _ in picked}) >= 6
    assert sum(1 for s in got if s) == 100 and all(s is None for i, s in enumerate(got) if i % 10)


def test_pj_sizes_follow_the_spec():
    options = MultiscaleOptions("pj", 416, 416, 1.0, max_batches=1000)
    got = _run(options, seed=5, iterations=1000)
    rng = np.random.default_rng(5)
    expected = []
    for i in range(1000):
        if i % 10:
            expected.append(None)
            continue
        dim = (int(rng.integers(10)) + 10) * 32
        dim = 608 if i + 200 > 1000 else dim
        expected.append((dim, dim))
    assert got == expected
    assert {s for s in got if s} == {(d, d) for d in range(320, 609, 32)}


def test_disabled_and_pj_int_parse():
    assert _run(MultiscaleOptions("ab", 416, 416, 0.0, 100), 0, 100) == [None] * 100
    assert _run(MultiscaleOptions("pj", 416, 416, 0.5, 100), 0, 100) == [None] * 100   # atoi("0.5") == 0
    assert _run(MultiscaleOptions("ab", 416, 416, 0.5, 100), 0, 1)[0] is not None


def test_state_resume_equals_uninterrupted_and_restart_is_darknet_like():
    options = MultiscaleOptions("ab", 416, 416, 1.0, max_batches=1000)
    full = _run(options, seed=9, iterations=600)
    first = Multiscale(options, np.random.default_rng(9))
    for i in range(333):
        first.next_size(i)
    state = first.state_dict()
    resumed = Multiscale(options, np.random.default_rng(0))
    resumed.load_state_dict(state)
    assert [resumed.next_size(i) for i in range(333, 600)] == full[333:]
    restarted = _run(options, seed=1, iterations=600, start=333)     # a new process: count from 0
    assert restarted[0] == (608, 608) and restarted[10] is not None


def test_options_from_cfg(tmp_path):
    from darknet_py.network import parse_cfg
    path = tmp_path / "m.cfg"
    path.write_text("[net]\nwidth=320\nheight=256\nchannels=3\nmax_batches=500\nresize_step=64\n"
                    "[convolutional]\nfilters=24\nsize=1\nactivation=linear\n"
                    "[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\nnum=3\nclasses=3\nrandom=1.3\n")
    o = multiscale_options(parse_cfg(str(path)))
    assert (o.flavor.name, o.init_w, o.init_h, o.random, o.max_batches, o.resize_step) == ("ab", 320, 256, 1.3, 500, 64)
    assert multiscale_options(parse_cfg(str(path), "pj")).enabled          # pj reads random=1.3 as 1
