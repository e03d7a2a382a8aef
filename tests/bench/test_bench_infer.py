"""bench/bench_infer.py keeps working: its forward comparison at one round on the small shapes cfg (no timing
is checked; the bench needs ONNX Runtime, OpenCV's dnn module and Debian's sample photo)."""
from __future__ import annotations

import sys

import pytest

from helpers.paths import ROOT

sys.path.insert(0, str(ROOT / "bench"))


def test_forward_comparison_runs_every_side(capsys, debian_share):
    pytest.importorskip("onnxruntime")
    import bench_infer
    import cv2
    import torch
    threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        bench_infer.main(["--models", "shapes-tiny", "--rounds", "1", "--skip-process", "--skip-map"])
    finally:                    # the bench sets both libraries' thread counts; later tests expect the defaults
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    out = capsys.readouterr().out
    for side in ("darknet_py (load_network(fuse=True))", "no Winograd", "darknet_py unfused", "TorchScript frozen",
                 "ONNX Runtime (darknet_py export)", "OpenCV DNN (readNetFromDarknet)"):
        assert out.count(side) == 2, side          # at 1 and 2 threads
    assert "shapes-tiny 128x128, 1 thread(s)" in out
