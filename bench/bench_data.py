"""Training-data throughput on photo-sized images: darknet_py's loader per worker, and `detector train` with a
network that does almost nothing, both on ONE core, against the Debian (pjreddie) darknet in the same run.

Workload (generated here, nothing read from elsewhere): photo-like JPEGs (smooth colour fields, shapes and
sensor noise) at 640x480 and 1280x720, 5 boxes each, 3 classes; jitter .2, hue .1, saturation 1.5,
exposure 1.5, flip; batch 64; network input 416 or 608.

* Loader: `DetectionLoader` with num_workers=0 (the work one worker process does), pinned to one core,
  torch/OpenCV single-threaded; images/s per worker for pj, ab (OpenCV, the default) and ab + mosaic.
* `detector train`: the trivial network (a 1x1 stride-32 conv, a 1x1 conv, a [yolo] at 13x13), pj flavour,
  416, 640x480 JPEGs, both programs pinned to the same core with `taskset -c <core>`; darknet_py runs with
  its default worker count (the cores available: one under taskset). Two measures:
  - CPU: each program runs twice, for A and B iterations; sustained images/s per core-second =
    64·(B − A) / (CPU seconds of run B − CPU seconds of run A), CPU seconds being user + system time of the
    program and all its processes (start-up cancels out). This one holds on a shared, loaded machine.
  - wall: 64 / median("Loaded" + training seconds as the program prints them) over run B's iterations after
    the first few; meaningful only on an idle machine.
* Loader rates are reported the same two ways (CPU seconds of this process; wall seconds).

    python bench/bench_data.py [--iterations 5 40] [--batches 3] [--quick]     # --quick: ~2-3 min idle
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from darknet_py.network import parse_cfg  # noqa: E402
from darknet_py.data.augment import augment_options  # noqa: E402
from darknet_py.data.loader import DetectionDataset, DetectionLoader  # noqa: E402

BATCH, CLASSES, BOXES = 64, 3, 5
LOADED = re.compile(r"^Loaded: ([\d.]+) seconds")
ITERATION = re.compile(r"^\s*(\d+): .* rate, ([\d.]+) seconds")
CFG = """[net]
batch={batch}
subdivisions=1
width={size}
height={size}
channels=3
momentum=0.9
decay=0.0005
saturation=1.5
exposure=1.5
hue=.1
learning_rate=0.001
max_batches={max_batches}
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


# -- workload -----------------------------------------------------------------------------------------------
def photo(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, list]:
    """A photo-like BGR image (compresses like a photo: smooth regions, edges, noise) and its 5 boxes."""
    field = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
    image = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    boxes = []
    for _ in range(BOXES):
        w, h = rng.uniform(0.05, 0.4), rng.uniform(0.05, 0.4)
        x, y = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        corner = (int((x - w / 2) * width), int((y - h / 2) * height))
        cv2.rectangle(image, corner, (int((x + w / 2) * width), int((y + h / 2) * height)), colour, -1)
        boxes.append((int(rng.integers(CLASSES)), x, y, w, h))
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8), boxes


def make_images(root: Path, width: int, height: int, count: int, seed: int = 0) -> list[str]:
    """``count`` JPEGs (quality 90) under root/JPEGImages with labels under root/labels (both forks' rules)."""
    rng = np.random.default_rng(seed)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "labels").mkdir()
    paths = []
    for i in range(count):
        image, boxes = photo(rng, width, height)
        path = root / "JPEGImages" / f"{i:04d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (root / "labels" / f"{i:04d}.txt").write_text(
            "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in boxes))
        paths.append(str(path.resolve()))
    return paths


def write_run(tmp: Path, images: list[str], size: int, max_batches: int) -> tuple[Path, Path]:
    (tmp / "train.txt").write_text("\n".join(images) + "\n")
    (tmp / "backup").mkdir(exist_ok=True)
    (tmp / "b.names").write_text("a\nb\nc\n")
    (tmp / "b.data").write_text(f"classes={CLASSES}\ntrain={tmp / 'train.txt'}\nnames={tmp / 'b.names'}\n"
                                f"backup={tmp / 'backup'}\n")
    (tmp / "b.cfg").write_text(CFG.format(batch=BATCH, size=size, max_batches=max_batches))
    return tmp / "b.data", tmp / "b.cfg"


# -- measurements -------------------------------------------------------------------------------------------
def core() -> str:
    return str(min(os.sched_getaffinity(0)))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def adopt_orphans() -> None:
    """Make this process the subreaper of everything it starts (Linux `PR_SET_CHILD_SUBREAPER`): a loader
    worker still running when its training process exits becomes our child, and its CPU time is counted once
    we reap it (otherwise it would go to init, uncounted)."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)


def reap_orphans() -> None:
    """Wait for every adopted process (loader workers exit by themselves once their parent is gone)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def train_run(command: list[str], cwd: Path) -> tuple[float, list[float]]:
    """(CPU seconds of the whole run, its loader workers included; per-iteration wall periods "Loaded" +
    training seconds)."""
    before = children_cpu()
    out = subprocess.run(["taskset", "-c", core(), "stdbuf", "-oL"] + command, cwd=cwd, capture_output=True,
                         text=True)
    reap_orphans()
    cpu = children_cpu() - before
    lines = out.stdout.splitlines()
    loaded = [float(m.group(1)) for m in map(LOADED.match, lines) if m]
    trained = [float(m.group(2)) for m in map(ITERATION.match, lines) if m]
    # Debian darknet sometimes segfaults while freeing, after it saved its final weights: the run is complete
    finished = out.returncode == 0 or (out.returncode == -11 and "_final.weights" in out.stdout + out.stderr)
    if not finished or not trained:
        raise SystemExit(f"{command[0]} did not train ({out.returncode}):\n{out.stdout[-2000:]}\n"
                         f"{out.stderr[-2000:]}")
    return cpu, [load + train for load, train in zip(loaded, trained)]


class TrainRate(NamedTuple):
    cpu: float          # images per CPU second, sustained (two-run difference)
    wall: float         # 64 / median wall period after start-up
    periods: list


def train_rate(command, data: Path, cfg: Path, short: int, long: int, skip: int) -> TrainRate:
    runs = []
    for iterations in (short, long):
        cfg.write_text(CFG.format(batch=BATCH, size=416, max_batches=iterations))
        shutil.rmtree(data.parent / "backup")
        (data.parent / "backup").mkdir()
        runs.append(train_run(command, data.parent))
    (cpu_a, _), (cpu_b, periods) = runs
    return TrainRate(BATCH * (long - short) / (cpu_b - cpu_a), BATCH / statistics.median(periods[skip:]),
                     periods)


def train_rates(images: list[str], short: int, long: int) -> tuple[TrainRate, TrainRate]:
    adopt_orphans()
    binary = shutil.which("darknet")
    if binary is None:
        raise SystemExit("the Debian 'darknet' package is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        data, cfg = write_run(Path(tmp), images, 416, long)
        theirs = train_rate([binary, "detector", "train", str(data), str(cfg)], data, cfg, short, long, 1)
        ours_cmd = [sys.executable, "-m", "darknet_py", "detector", "train", str(data), str(cfg), "--flavor", "pj",
                    "--device", "cpu", "--no-check", "--no-progress"]
        os.environ["PYTHONPATH"] = str(ROOT)
        ours = train_rate(ours_cmd, data, cfg, short, long, 2)
    return theirs, ours


def loader_rate(images: list[str], cfg_path: Path, flavor: str, mosaic: bool, batches: int
                ) -> tuple[float, float]:
    """(images per CPU second, images per wall second) of the loader working in this process."""
    options = dataclasses.replace(augment_options(parse_cfg(str(cfg_path), flavor), "opencv"), mosaic=mosaic)
    loader = DetectionLoader(DetectionDataset(images, options, seed=1, batch=BATCH))
    loader.next_batch()                                   # warm-up: page cache, imports
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        loader.next_batch()
    return BATCH * batches / (time.process_time() - cpu), BATCH * batches / (time.perf_counter() - wall)


def compiled_kernels() -> str:
    """Which pj augmentation path runs: numba's compiled kernels (extra `fast`) or the numpy one."""
    try:
        from darknet_py.data import kernels
    except ImportError:                     # a checkout from before the kernels
        return "numpy augmentation"
    return "numba kernels (extra 'fast')" if kernels.AVAILABLE else "numpy augmentation (no numba)"


VARIANTS = (("pj", "pj", False), ("ab, OpenCV (default)", "ab", False), ("ab, OpenCV + mosaic", "ab", True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, nargs=2, default=(5, 40), metavar=("A", "B"),
                        help="detector train iterations of the short and the long run")
    parser.add_argument("--batches", type=int, default=3, help="loader batches of 64 per variant")
    parser.add_argument("--quick", action="store_true", help="640x480 and 416 only")
    parser.add_argument("--no-train", action="store_true", help="skip the detector train comparison")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"(1/5/15 min), {os.cpu_count()} CPUs, pinned to core {core()}; {compiled_kernels()}")
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shapes = ((640, 480),) if args.quick else ((640, 480), (1280, 720))
        sets = {shape: make_images(tmp / f"{shape[0]}x{shape[1]}", *shape, count=64) for shape in shapes}
        if not args.no_train:
            theirs, ours = train_rates(sets[(640, 480)], *args.iterations)
            print("detector train, trivial net, pj, 416, 640x480 JPEGs, one core (images/s):")
            for measure in ("cpu", "wall"):
                mine, ref = getattr(ours, measure), getattr(theirs, measure)
                print(f"  per {measure:4s} second: Debian darknet {ref:6.1f}, darknet_py {mine:6.1f}, "
                      f"ratio {mine / ref:4.2f}")
            print(f"  wall periods (s): darknet {' '.join('%.3f' % p for p in theirs.periods)}")
            print(f"                    darknet_py {' '.join('%.3f' % p for p in ours.periods)}")
        os.sched_setaffinity(0, {int(core())})
        for shape, images in sets.items():
            for size in ((416,) if args.quick else (416, 608)):
                cfg_path = tmp / f"bench{size}.cfg"
                cfg_path.write_text(CFG.format(batch=BATCH, size=size, max_batches=1))
                for label, flavor, mosaic in VARIANTS:
                    cpu, wall = loader_rate(images, cfg_path, flavor, mosaic, args.batches)
                    print(f"loader {shape[0]}x{shape[1]} -> {size}  {label:22s}: {cpu:6.1f} images per CPU second "
                          f"({wall:6.1f} per wall second)")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
