"""Training-data throughput per loader worker (one CPU core): darknet_py vs the Debian (pjreddie) darknet.

Workload: the synth images (`/work/shared/fixtures/synth/JPEGImages/valid`, 100 JPEGs of 120–176 px, read at
bench time; skipped when absent), 416×416 network input, jitter .2, hue .1, saturation 1.5, exposure 1.5,
flip, batch 64.

Reference: Debian darknet has no standalone loader benchmark, so we run `darknet detector train` on a
network that does almost nothing (a 1×1 stride-32 conv, a 1×1 conv, a [yolo] at 13×13), pinned to one core
with `taskset`. Darknet loads the next batch in a thread while the current one trains, so on one core the
steady iteration period is (load 64 images + a tiny training step): 64 / period is a slight *underestimate*
of Darknet's loader rate (our ratios are therefore slightly flattering). The first iteration's `Loaded:`
time (pure loading, but with 64-thread start-up and cold caches) is printed too.

darknet_py: `DetectionLoader` with num_workers=0 (the work one worker process does), pinned to the same core,
torch/OpenCV single-threaded; pj flavour (same algorithm as the reference), AB without OpenCV (`darknet`
backend), AB with OpenCV (default), AB with OpenCV + mosaic.

    python bench/bench_data.py [--iterations 6] [--batches 4]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from darknet_py.config.cfg import parse_cfg  # noqa: E402
from darknet_py.data.augment import augment_options  # noqa: E402
from darknet_py.data.loader import DetectionDataset, DetectionLoader  # noqa: E402

SYNTH = Path("/work/shared/fixtures/synth")
BATCH, SIZE = 64, 416
LOADED = re.compile(r"^Loaded: ([\d.]+) seconds")
ITERATION = re.compile(r"^\s*(\d+): .* rate, ([\d.]+) seconds")
CFG = f"""[net]
batch={BATCH}
subdivisions=1
width={SIZE}
height={SIZE}
channels=3
momentum=0.9
decay=0.0005
saturation=1.5
exposure=1.5
hue=.1
learning_rate=0.001
max_batches={{max_batches}}
policy=constant

[convolutional]
filters=4
size=1
stride=32
pad=0
activation=linear

[convolutional]
filters=24
size=1
stride=1
pad=0
activation=linear

[yolo]
mask=0,1,2
anchors=10,14,23,27,37,58
classes=3
num=3
jitter=.2
random=0
"""


def pin_command() -> list[str]:
    return ["taskset", "-c", str(min(os.sched_getaffinity(0)))] if shutil.which("taskset") else []


def darknet_rate(images: list[str], iterations: int) -> tuple[float, float]:
    """(steady images/s from the iteration period, images/s of the first pure `Loaded:`)."""
    binary = shutil.which("darknet")
    if binary is None:
        raise SystemExit("the Debian 'darknet' package is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "train.txt").write_text("\n".join(images) + "\n")
        (tmp / "backup").mkdir()
        (tmp / "b.data").write_text(f"classes=3\ntrain={tmp / 'train.txt'}\nnames={SYNTH / 'obj.names'}\n"
                                    f"backup={tmp / 'backup'}\n")
        (tmp / "b.cfg").write_text(CFG.format(max_batches=iterations))
        out = subprocess.run(pin_command() + ["stdbuf", "-oL", binary, "detector", "train", str(tmp / "b.data"),
                                              str(tmp / "b.cfg")], cwd=tmp, capture_output=True, text=True)
    lines = out.stdout.splitlines()
    loaded = [float(m.group(1)) for m in map(LOADED.match, lines) if m]
    trained = [float(m.group(2)) for m in map(ITERATION.match, lines) if m]
    if len(trained) < 3:
        raise SystemExit(f"darknet did not train ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    periods = [load + train for load, train in zip(loaded[1:], trained[1:])]   # first: start-up
    return BATCH / statistics.median(periods), BATCH / loaded[0]


def ours_rate(images: list[str], cfg_path: Path, flavor: str, backend: str, mosaic: bool, batches: int) -> float:
    options = dataclasses.replace(augment_options(parse_cfg(str(cfg_path), flavor), backend), mosaic=mosaic)
    loader = DetectionLoader(DetectionDataset(images, options, seed=1, batch=BATCH))
    loader.next_batch()                                   # warm-up: page cache, imports
    start = time.perf_counter()
    for _ in range(batches):
        loader.next_batch()
    return BATCH * batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=6, help="darknet iterations (first is dropped)")
    parser.add_argument("--batches", type=int, default=4, help="darknet_py batches of 64 per variant")
    args = parser.parse_args()
    if not (SYNTH / "JPEGImages" / "valid").is_dir():
        print(f"skipped: {SYNTH} not present")
        return
    images = sorted(str(p) for p in (SYNTH / "JPEGImages" / "valid").glob("*.jpg"))
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "bench.cfg"
        cfg_path.write_text(CFG.format(max_batches=1))
        reference, first_loaded = darknet_rate(images, args.iterations)
        print(f"Debian darknet (pj), 1 core: {reference:7.1f} images/s steady "
              f"({first_loaded:.1f} images/s for the first, cold batch)")
        for label, flavor, backend, mosaic in (("pj", "pj", "darknet", False),
                                               ("ab, no OpenCV", "ab", "darknet", False),
                                               ("ab, OpenCV (default)", "ab", "opencv", False),
                                               ("ab, OpenCV + mosaic", "ab", "opencv", True)):
            rate = ours_rate(images, cfg_path, flavor, backend, mosaic, args.batches)
            print(f"darknet_py {label:22s}: {rate:7.1f} images/s per worker   ratio vs darknet pj: "
                  f"{rate / reference:5.2f}")


if __name__ == "__main__":
    main()
