"""CPU forward pass of yolov3-tiny at 416x416 on Debian's dog.jpg: darknet_py against the real Darknet and
against OpenCV's dnn module, all measured in this run on the same image (goals: <= 0.1x Darknet, <= 1x OpenCV).

* Darknet: the Debian `darknet detector test` (pjreddie, CPU, no OpenMP) prints "Predicted in X seconds",
  the time of `network_predict` alone measured with C `clock()`, i.e. CPU time; the best of a few runs is used.
* OpenCV: `cv2.dnn.readNetFromDarknet` on the same cfg/weights, `forward()` of the yolo outputs.
* darknet_py: `Network.forward` in eval mode under `torch.inference_mode`, same input blob.

Everything runs with ``--threads`` threads (default 1: the Debian build is single-threaded). With one thread
every side is timed in process CPU time like Darknet's `clock()`, so a busy machine does not distort the
ratios; with more, darknet_py and OpenCV are timed in wall time (CPU time would add the threads up).

    python bench/bench_forward.py [--repeat N] [--threads T]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import torch

from bench_weights import yolov3_tiny_weights      # bench/ is the script's folder, hence on sys.path
from darknet_py import load_network
from darknet_py.data.image import load_image, resize_image

DEBIAN = Path("/usr/share/darknet")
CFG = DEBIAN / "cfg" / "yolov3-tiny.cfg"
IMAGE = DEBIAN / "data" / "dog.jpg"


def best_of(action, repeat: int, clock, warmup: int = 2) -> float:
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeat):
        start = clock()
        action()
        times.append(clock() - start)
    return min(times)


def darknet_predict_seconds(weights: Path, repeat: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "coco.data"
        data.write_text(f"classes=80\nnames={DEBIAN / 'data' / 'coco.names'}\n")
        times = []
        for _ in range(repeat):
            run = subprocess.run(["darknet", "detector", "test", str(data), str(CFG), str(weights), str(IMAGE),
                                  "-out", str(Path(tmp) / "predictions")], capture_output=True, text=True,
                                 check=True, cwd=tmp)
            times.append(float(re.search(r"Predicted in ([0-9.]+) seconds", run.stdout + run.stderr).group(1)))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    weights = yolov3_tiny_weights()
    blob = resize_image(load_image(IMAGE), 416, 416)[None]

    network = load_network(str(CFG), str(weights), flavor="pj", batch=1).eval()
    x = torch.from_numpy(blob)

    def ours():
        with torch.inference_mode():
            network.forward(x)

    opencv = cv2.dnn.readNetFromDarknet(str(CFG), str(weights))
    names = opencv.getUnconnectedOutLayersNames()

    def theirs():
        opencv.setInput(blob)
        opencv.forward(names)

    # one thread: CPU time, like Darknet's clock(); several: wall time (CPU time would add the threads up)
    clock, kind = (time.process_time, "CPU") if args.threads == 1 else (time.perf_counter, "wall")
    t_ours = best_of(ours, args.repeat, clock)
    t_opencv = best_of(theirs, args.repeat, clock)
    t_darknet = darknet_predict_seconds(weights, max(1, args.repeat // 3))
    print(f"yolov3-tiny 416x416, {args.threads} thread(s), best of {args.repeat}, {kind} time")
    print(f"  darknet_py forward  {t_ours * 1000:8.1f} ms")
    print(f"  OpenCV dnn forward  {t_opencv * 1000:8.1f} ms")
    print(f"  Debian darknet      {t_darknet * 1000:8.1f} ms  (\"Predicted in\")")
    for label, ratio, goal in (("darknet_py / Darknet", t_ours / t_darknet, 0.1),
                               ("darknet_py / OpenCV", t_ours / t_opencv, 1.0)):
        print(f"  {label:<22s} {ratio:6.3f}  ({'ok' if ratio <= goal else 'MISSED'}: goal <= {goal})")


if __name__ == "__main__":
    main()
