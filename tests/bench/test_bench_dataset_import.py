"""bench/bench_dataset_import.py keeps working: at 30 pictures its generated COCO JSON imports with --link, and
the import's label files hold the boxes the bench's own reference conversion writes (no timing is checked)."""
from __future__ import annotations

import sys

import numpy as np

from helpers.paths import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import bench_dataset_import  # noqa: E402


def test_generated_coco_imports_to_the_reference_labels(tmp_path):
    path = bench_dataset_import.build(tmp_path, 30, 4)
    bench_dataset_import.reference(path, tmp_path / "reference")
    took, peak = bench_dataset_import.timed_import(path, tmp_path / "out")
    assert took > 0 and peak > 0
    for label in sorted((tmp_path / "reference" / "labels").iterdir()):
        want = np.loadtxt(label, ndmin=2)
        got = np.loadtxt(tmp_path / "out" / "labels" / label.name, ndmin=2)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=label.name)
    assert (tmp_path / "out" / "JPEGImages" / "0000000.jpg").is_symlink()
