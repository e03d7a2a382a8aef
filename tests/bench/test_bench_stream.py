"""bench/bench_stream.py keeps working: one short run of each variant (no server, a never-reading client,
reading clients) trains and reports its iteration times (no timing is checked)."""
from __future__ import annotations

import sys

from helpers.paths import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import bench_stream  # noqa: E402


def test_each_variant_trains_and_reports(capsys):
    medians = bench_stream.main(["--iterations", "2", "--warmup", "0", "--repeats", "1", "--clients", "3"])
    assert set(medians) == {"A", "B", "C"} and all(m > 0 for m in medians.values())
    assert "B / A = " in capsys.readouterr().out
