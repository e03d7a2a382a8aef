"""bench/bench_gpu.py keeps working: a CPU run at tiny sizes writes its report (no timing is checked)."""
from __future__ import annotations

import sys

import pytest

from helpers.paths import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import bench_gpu  # noqa: E402


@pytest.mark.parametrize("flags", [[], ["--channels-last", "--cudnn-benchmark"]])
def test_cpu_run_at_tiny_sizes_appends_its_report(tmp_path, flags):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n")
    bench_gpu.main(["--device", "cpu", "--cfgs", str(ROOT / "tests/fixtures/train/tiny3/tiny3.cfg"),
                    "--size", "64", "--batch", "2", "--subdivisions", "2", "--precisions", "fp32",
                    "--iterations", "1", "--warmup", "1", "--images", "4", "--image-size", "96x72",
                    "--map-images", "2", "--map-batch", "2", "--workers", "0", "--results", str(results), *flags])
    text = results.read_text()
    assert text.startswith("# Benchmark results\n")
    assert "## `bench/bench_gpu.py` — CPU" in text
    row = next(line for line in text.splitlines() if line.startswith("| tiny3.cfg | 2 | fp32 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[3]) > 0 and float(cells[4]) > 0 and cells[8] == "unknown peak"
    assert "tiny3.cfg: (d) detector map" in text and "images/s" in text
    assert "GFLOP an image at 64x64" in text
    assert f"channels_last {bool(flags)}" in text


def test_peak_table_names_the_device_or_says_unknown():
    assert bench_gpu.percent_of_peak(98.9, dict(bench_gpu.PEAKS)["H200"], "amp") == "10.0 % of 989.4 (bf16)"
    assert bench_gpu.percent_of_peak(1.0, None, "fp32") == "unknown peak"
    assert bench_gpu.tflops(65.9e9, 100.0) == 3 * 65.9e9 * 100 / 1e12
