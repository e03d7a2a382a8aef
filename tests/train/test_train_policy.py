"""Learning-rate policies vs real Darknet: `lr/{ab,pj}_<policy>.csv` were written by each fork's own
`get_current_rate` for iterations 0..1200 (the `random` rows after glibc `srand(1)`)."""
from __future__ import annotations

import csv
import math

import pytest

from darknet_py.network import parse_cfg
from darknet_py.errors import CfgError
from darknet_py.data.rand import GlibcRandom
from darknet_py.train.policy import get_current_rate

POLICIES = ("constant", "constant_burnin", "exp", "poly", "random", "sgdr", "sigmoid", "step", "steps_burnin")


def _rows(path):
    with open(path) as f:
        reader = csv.reader(f)
        next(reader)
        return [(int(i), float(r)) for i, r in reader]


@pytest.mark.parametrize("flavor", ["ab", "pj"])
@pytest.mark.parametrize("policy", POLICIES)
def test_rate_matches_darknet_csv(fixtures_dir, flavor, policy):
    lr_dir = fixtures_dir / "train" / "lr"
    net = parse_cfg(lr_dir / "cfg" / f"{policy}.cfg", flavor=flavor).net
    rng = GlibcRandom(1)                       # one generator for the whole sweep, as the dumping binary
    rows = _rows(lr_dir / f"{flavor}_{policy}.csv")
    assert [i for i, _ in rows] == list(range(1201))
    for iteration, expected in rows:
        ours = get_current_rate(net, iteration, rng)
        assert math.isclose(ours, expected, rel_tol=1e-6, abs_tol=0.0), (iteration, ours, expected)


def test_glibc_rand_first_values():
    # glibc: srand(1); rand() -> 1804289383, 846930886, 1681692777, 1714636915 (well-known sequence)
    g = GlibcRandom(1)
    assert [g.rand() for _ in range(4)] == [1804289383, 846930886, 1681692777, 1714636915]


def test_pj_sigmoid_is_zero_before_step_and_ab_is_not(fixtures_dir):
    cfg = fixtures_dir / "train" / "lr" / "cfg" / "sigmoid.cfg"
    pj, ab = parse_cfg(cfg, flavor="pj").net, parse_cfg(cfg, flavor="ab").net
    assert get_current_rate(pj, 599) == 0.0
    assert get_current_rate(ab, 599) > 0.005
    assert get_current_rate(pj, 600) == get_current_rate(ab, 600) == pytest.approx(0.005)


def test_first_update_of_yolov3_burn_in(tmp_path):
    # Spec appendix A: learning_rate=0.001 burn_in=1000 power=4 -> rate(1) = 1e-15, rate(500) = 6.25e-5
    cfg = tmp_path / "y.cfg"
    cfg.write_text("[net]\nbatch=64\nsubdivisions=16\nwidth=32\nheight=32\nchannels=3\nlearning_rate=0.001\n"
                   "burn_in=1000\npolicy=steps\nsteps=400000,450000\nscales=.1,.1\nmax_batches=500200\n"
                   "[convolutional]\nfilters=1\nsize=1\n")
    net = parse_cfg(cfg).net
    assert get_current_rate(net, 1) == pytest.approx(1e-15, rel=1e-6)
    assert get_current_rate(net, 500) == pytest.approx(6.25e-5, rel=1e-6)
    assert get_current_rate(net, 1000) == pytest.approx(1e-3, rel=1e-6)
    assert get_current_rate(net, 400000) == pytest.approx(1e-4, rel=1e-6)
    assert get_current_rate(net, 450000) == pytest.approx(1e-5, rel=1e-6)


def test_sgdr_without_cycle_is_an_error_not_a_hang(tmp_path):
    cfg = tmp_path / "s.cfg"
    cfg.write_text("[net]\nbatch=1\nwidth=8\nheight=8\nchannels=3\npolicy=sgdr\n[convolutional]\nfilters=1\n")
    net = parse_cfg(cfg).net
    with pytest.raises(CfgError, match="sgdr_cycle"):
        get_current_rate(net, 5)
