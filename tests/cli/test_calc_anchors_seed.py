"""`calc_anchors` seeds its initial centres with the clock unless `-seed N`, as AlexeyAB; `--help` and the
README say so, and neither lists it under training's fixed `--seed` (default 0)."""
from __future__ import annotations

import re
import shutil

import pytest

import darknet_py.eval.anchors as anchors
from helpers.cli import run_cli
from helpers.paths import FIXTURES, ROOT

PICTURE = FIXTURES / "eval" / "synth" / "JPEGImages" / "valid" / "00003.jpg"


@pytest.mark.parametrize("flags,seed", [([], 1234567), (["-seed", "7"], 7)])
def test_the_seed_is_the_clock_unless_given(tmp_path, monkeypatch, flags, seed):
    seeds = []

    class Recorder(anchors.GlibcRandom):
        def __init__(self, value):
            seeds.append(value)
            super().__init__(value)

    monkeypatch.setattr(anchors, "GlibcRandom", Recorder)
    monkeypatch.setattr(anchors.time, "time", lambda: 1234567.9)
    monkeypatch.chdir(tmp_path)
    shutil.copy(PICTURE, "a.jpg")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.3 0.3 0.6 0.4\n")
    (tmp_path / "train.txt").write_text("a.jpg\n")
    (tmp_path / "a.data").write_text("classes=1\ntrain=train.txt\n")
    result = run_cli("detector", "calc_anchors", "a.data", "-num_of_clusters", "2", "-width", "64", "-height", "64",
                     *flags)
    assert result.code == 0, result.output
    assert seeds == [seed]


def test_help_and_readme_say_the_same():
    help_text = " ".join(run_cli("detector", "calc_anchors", "--help").out.split())
    assert "default: the clock, as AlexeyAB" in help_text
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `darknet_py detector calc_anchors"))
    assert "seeded with the clock, as AlexeyAB, unless `-seed N`" in row
    seed_row = next(line for line in readme.splitlines() if line.startswith("| Every random draw comes from `--seed`"))
    assert re.search(r"`calc_anchors` alone seeds with the clock", seed_row)
