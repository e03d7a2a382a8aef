"""One tiny3 training iteration (B=16, S=4, 128x128) on CPU: darknet_py vs the Debian (pjreddie) darknet.

Reference: `darknet detector train` on the embedded shapes data set with the same cfg for a few iterations;
Darknet prints each iteration's `train_network` seconds (data loading excluded). darknet_py:
`train_network_step` on a fixed batch of the same images (default "cudnn" batch norm, what AB GPU users
get), and the share of it spent in `yolo_deltas` (timed separately on the same micro-batches). Each side
reports its fastest iteration (after the first), the one least disturbed by other processes on a shared
machine.

Both sides run single-threaded (OMP_NUM_THREADS=1, torch.set_num_threads(1)) so the ratio compares code,
not core counts. Goals: step time <= 0.25x Darknet's, loss share < 10%.

    python bench/bench_train_step.py [--iterations 6] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from darknet_py.data.image import load_image, resize_image  # noqa: E402
from darknet_py.layers.yolo_loss import yolo_deltas  # noqa: E402
from darknet_py.network import Network  # noqa: E402
from darknet_py.network import parse_cfg  # noqa: E402
from darknet_py.train.batchnorm import set_batchnorm_mode  # noqa: E402
from darknet_py.train.step import train_network_step  # noqa: E402
from darknet_py.train.update import make_optimizer  # noqa: E402

CFG = ROOT / "tests" / "fixtures" / "train" / "tiny3" / "tiny3.cfg"
DATA = ROOT / "data" / "shapes"
LINE = re.compile(r"^\s*(\d+): ([\d.naif-]+), ([\d.naif-]+) avg, ([\d.e-]+) rate, ([\d.]+) seconds")


def darknet_seconds(iterations: int) -> tuple[list[float], float]:
    """Per-iteration `train_network` seconds printed by the Debian darknet binary, and the CPU seconds the
    whole process used (start-up, data loading threads and all iterations)."""
    binary = shutil.which("darknet")
    if binary is None:
        raise SystemExit("the Debian 'darknet' package is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = tmp / "tiny3.cfg"
        text = CFG.read_text()
        text = re.sub(r"max_batches=\d+", f"max_batches={iterations}", text)
        cfg.write_text(text)
        images = sorted((DATA / "JPEGImages" / "train").glob("*.jpg"))
        (tmp / "train.txt").write_text("".join(f"{p}\n" for p in images))
        (tmp / "obj.names").write_text("rect\nellipse\ntriangle\n")
        (tmp / "obj.data").write_text(f"classes=3\ntrain={tmp / 'train.txt'}\nvalid={tmp / 'train.txt'}\n"
                                      f"names={tmp / 'obj.names'}\nbackup={tmp}/\n")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = subprocess.run([binary, "detector", "train", str(tmp / "obj.data"), str(cfg)], cwd=tmp,
                             env=env, capture_output=True, text=True, timeout=1800)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    seconds = [float(m.group(5)) for m in map(LINE.match, (run.stdout + run.stderr).splitlines()) if m]
    if not seconds:
        raise SystemExit(f"no iteration lines in darknet's output:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return seconds, cpu


def darknet_cpu_per_iteration(iterations: int) -> float:
    """CPU seconds per iteration: the difference of two runs, so start-up cost cancels (the loader threads'
    augmentation of 16 images per iteration stays in; it is small next to the training)."""
    _, short = darknet_seconds(2)
    _, long = darknet_seconds(2 + iterations)
    return (long - short) / iterations


def fixed_batch(net) -> tuple[torch.Tensor, torch.Tensor]:
    """16 shapes images stretched to the network size, with their labels as Darknet truth rows."""
    images = sorted((DATA / "JPEGImages" / "train").glob("*.jpg"))[:16]
    pixels, truth = [], np.zeros((16, 200, 6), dtype=np.float32)
    for k, path in enumerate(images):
        pixels.append(resize_image(load_image(path), net.width, net.height))
        label = Path(str(path).replace("JPEGImages", "labels")).with_suffix(".txt")
        rows = np.loadtxt(label, ndmin=2) if label.stat().st_size else np.zeros((0, 5))
        for r, (cls, x, y, w, h) in enumerate(rows[:200]):
            truth[k, r] = (x, y, w, h, cls, 0)
    return torch.from_numpy(np.stack(pixels)), torch.from_numpy(truth)


def ours(repeats: int) -> tuple[list[float], list[float], list[float]]:
    network = Network(parse_cfg(CFG))
    set_batchnorm_mode(network, "cudnn")
    network.seen = 200 * network.net_options.images_per_update     # past burn-in: a real update
    optimizer = make_optimizer(network)
    images, truth = fixed_batch(network.net_options)
    steps, cpu, losses = [], [], []
    train_network_step(network, optimizer, images, truth)   # warm-up (allocations, kernels)
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        train_network_step(network, optimizer, images, truth)
        steps.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        losses.append(loss_seconds(network, images, truth))
    return steps, cpu, losses


def loss_seconds(network, images, truth) -> float:
    """Time `yolo_deltas` alone on one iteration's micro-batches (outputs precomputed)."""
    net = network.net_options
    yolo = [i for i, layer in enumerate(network.layers) if layer.kind == "yolo"]
    total = 0.0
    with torch.no_grad():
        for s in range(net.subdivisions):
            part = slice(s * net.mini_batch, (s + 1) * net.mini_batch)
            outputs = network(images[part], keep=yolo)
            start = time.process_time()
            for i in yolo:
                layer = network.layers[i]
                yolo_deltas(layer.options, outputs[i], truth[part], layer.net_w, layer.net_h, net.flavor)
            total += time.process_time() - start
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=6, help="darknet iterations to run")
    parser.add_argument("--repeats", type=int, default=5, help="darknet_py steps to time")
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference, _ = darknet_seconds(args.iterations)
    # the fastest iteration of each side: the least disturbed by other processes on a shared machine
    ref = min(reference[1:] or reference)
    ref_cpu = darknet_cpu_per_iteration(args.iterations)
    steps, cpu, losses = ours(args.repeats)
    step, step_cpu, loss = min(steps), min(cpu), min(losses)
    print(f"darknet (pjreddie, CPU, 1 thread): {ref:.3f} s/iteration wall, {ref_cpu:.3f} s CPU  (wall per "
          f"iteration: {', '.join(f'{s:.3f}' for s in reference)})")
    print(f"darknet_py train_network_step:     {step:.3f} s/iteration wall, {step_cpu:.3f} s CPU")
    print(f"ratio darknet_py / darknet:        {step / ref:.3f}x wall, {step_cpu / ref_cpu:.3f}x CPU "
          "(goal <= 0.25x)")
    print(f"yolo_deltas share of the step:     {100 * loss / step_cpu:.1f} % of CPU time  (goal < 10 %)")


if __name__ == "__main__":
    main()
