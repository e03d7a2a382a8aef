"""Loader processes forked from a process whose OpenCV thread pool is running (any program that called
cv2.resize on a big picture first, or pytest after other tests) must not hang: a worker that calls
cv2.setNumThreads blocks for ever, joining pool threads that a forked child lacks. Both loaders stop the pool
while they fork (`forking_workers`).

The check runs in a fresh interpreter so that a regression fails (at the hang guard) instead of freezing the
suite."""
from __future__ import annotations

import subprocess
import sys
from helpers.paths import FIXTURES, ROOT

EVAL = FIXTURES / "eval"

SCRIPT = f"""
import cv2, numpy as np
from darknet_py.eval.inference import detect_images
from darknet_py.network import load_network
big = np.zeros((1500, 1500, 3), np.uint8)
for _ in range(3):
    cv2.resize(cv2.cvtColor(big, cv2.COLOR_BGR2RGB), (700, 700))      # OpenCV's pool now has threads
network = load_network({str(EVAL / 'synth' / 'cfg' / 'tiny3.cfg')!r}, {str(EVAL / 'tiny3' / 'trained.weights')!r},
                       batch=1).eval()
paths = [{str(EVAL / 'synth' / 'JPEGImages' / 'valid')!r} + f"/0000{{i}}.jpg" for i in range(4)]
found = list(detect_images(network, paths, .25, batch=1, workers=2))
from darknet_py.network import parse_cfg
from darknet_py.data.loader import detection_loader
cfg = parse_cfg({str(EVAL / 'synth' / 'cfg' / 'tiny3.cfg')!r})
batch = detection_loader(cfg, paths, seed=1, batch=2, num_workers=2).next_batch()
cv2.resize(big, (700, 700))                                              # and works again afterwards
print("detected", len(found), tuple(batch.images.shape[:2]), cv2.getNumThreads() >= 1)
"""


def test_workers_forked_after_opencv_threads_ran_do_not_hang():
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("detected 4 (2, 3) True")
