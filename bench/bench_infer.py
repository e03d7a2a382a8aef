"""Inference speed against the fastest CPU runtimes and against Darknet, all measured in this one run (issue 22).

1. Forward pass, yolov3-tiny and yolov4-tiny (`cfg/`) at 416x416, random weights with batch-norm statistics
   far from the identity (speed does not depend on the values), input: Debian's dog.jpg resized as
   `detector test` does (stretched, AlexeyAB). Runs alternate between
   * darknet_py: the inference network (`load_network(..., fuse=True)`: batch norm folded, oneDNN with
     prepacked weights and the activation fused, channels_last; on one thread Winograd's F(2x2, 3x3) for the
     deep 3x3 layers) under `torch.inference_mode`, and the variants measured to choose it: fused with oneDNN's
     direct kernel only (no Winograd), fused on PyTorch's own convolution in NCHW, unfused (before issue 22),
     fused and frozen by TorchScript (`torch.jit.freeze` + `optimize_for_inference`);
   * ONNX Runtime on `darknet_py export` of the same network (all graph optimisations on);
   * OpenCV DNN: `cv2.dnn.readNetFromDarknet` of the same cfg and `.weights`;
   at 1 and 2 threads each (torch's OpenMP threads sleep while they wait, as the command line sets them:
   `OMP_WAIT_POLICY=PASSIVE` unless the environment says otherwise). Median per side, in process CPU time
   (what a shared machine distorts least; at 2 threads the sum of both) and wall time.
   Goal: darknet_py <= ONNX Runtime and <= OpenCV at one thread.
2. Whole process `detector test` on one photo: `python -m darknet_py detector test` against Debian's
   `darknet detector test` (yolov3-tiny, the official weights, pjreddie flavour for both), alternated, median
   wall and CPU time, and the same command run without `darknet_py/process.py` (how it ended before: torch
   loaded with the garbage collector running, the interpreter's tear-down at the end). Goal: <= 1.5x.
3. `darknet_py --help`: median wall time. Goal: < 0.5 s.
4. `detector map` on ``--photos`` photo-sized JPEGs (made as bench_map.py makes them), yolov3-tiny 416:
   the default loader setting against `--workers 0`, `1` (the default on 2 cores before issue 22) and `2`,
   alternated, with every core this process may use and pinned to one core (taskset; `--map-cores 1,2,4`:
   pinned to 1, 2 and 4 cores). Goal: default <= workers 0.

    python bench/bench_infer.py [--rounds N] [--process-rounds N] [--photos N] [--map-rounds N]
                                [--skip-forward] [--skip-process] [--skip-map]
"""
from __future__ import annotations

import argparse
import copy
import importlib.metadata
import importlib.util
import math
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from darknet_py.device import passive_waiting_threads

passive_waiting_threads()       # what the darknet_py command line sets before torch is imported

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_map import coco_weights, make_photos  # noqa: E402  (bench/ is the script's folder)
from darknet_py.data.image import load_image, resize_image  # noqa: E402
from darknet_py.export.onnx import export_onnx  # noqa: E402
from darknet_py.layers import winograd  # noqa: E402
from darknet_py.network import Network, load_network, parse_cfg  # noqa: E402
from darknet_py.weights import save_weights  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEBIAN = Path("/usr/share/darknet")
MODELS = ("yolov3-tiny", "yolov4-tiny")
DEFAULT = "darknet_py (load_network(fuse=True))"


def random_weights(cfg: Path, path: Path) -> None:
    """``cfg`` with Darknet's random initialisation and batch-norm statistics that make the fold non-trivial."""
    torch.manual_seed(0)
    network = Network(parse_cfg(cfg, batch=1))
    with torch.no_grad():
        for layer in network.layers:
            bn = getattr(layer, "bn", None)
            if bn is not None:
                bn.weight.uniform_(.5, 1.5)
                bn.running_mean.uniform_(-.5, .5)
                bn.running_var.uniform_(.05, 2.)
    save_weights(network, path)


def frozen(network, x):
    """The TorchScript variant: the fused network traced, frozen and optimised for inference."""
    class Outputs(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, images):
            return tuple(self.inner(images).values())

    with torch.no_grad():
        traced = torch.jit.trace(Outputs(network), x, check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))


def plain_kernels(network):
    """A copy of the fused network on PyTorch's own convolution path in NCHW (the variant before the oneDNN
    kernel and channels_last were chosen)."""
    plain = copy.deepcopy(network)
    for layer in plain.layers:
        if layer.kind == "convolutional":
            layer.prepacked = None
    plain.memory_format = torch.contiguous_format
    return plain


def without_winograd(run):
    """``run`` with every convolution on oneDNN's direct kernel (the inference network before Winograd's was
    added for deep 3x3 layers on one thread)."""
    def direct_only():
        floor = winograd.MIN_MULTIPLY_ADDS
        winograd.MIN_MULTIPLY_ADDS = math.inf
        try:
            run()
        finally:
            winograd.MIN_MULTIPLY_ADDS = floor
    return direct_only


def forward_runners(cfg: Path, weights: Path, onnx_path: Path, threads: int, blob: np.ndarray) -> dict:
    """name -> a function running one forward pass of ``blob`` (1, 3, 416, 416)."""
    fused = load_network(cfg, weights, batch=1, fuse=True)
    unfused = load_network(cfg, weights, batch=1).eval()
    x = torch.from_numpy(blob)
    script = frozen(plain_kernels(fused), x)
    import onnxruntime           # here: sections 2-4 run where it is not installed (a bare GPU machine)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    opencv = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    opencv.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    out_names = opencv.getUnconnectedOutLayersNames()

    def ours(network):
        def run():
            with torch.inference_mode():
                network(x)
        return run

    def script_run():
        with torch.no_grad():
            script(x)

    def opencv_run():
        opencv.setInput(blob)
        opencv.forward(out_names)

    return {DEFAULT: ours(fused), "darknet_py fused, no Winograd": without_winograd(ours(copy.deepcopy(fused))),
            "darknet_py fused, PyTorch conv, NCHW": ours(plain_kernels(fused)),
            "darknet_py unfused (before issue 22)": ours(unfused),
            "darknet_py fused, TorchScript frozen": script_run,
            "ONNX Runtime (darknet_py export)": lambda: session.run(None, {"images": blob}),
            "OpenCV DNN (readNetFromDarknet)": opencv_run}


def shuffled_rounds(names: list, rounds: int):
    """The order of each of ``rounds`` rounds: every name once, in a fresh (seeded) order each round, so that
    each side runs after each other side about equally often. What runs before a side changes its time: the
    caches it leaves, and at 2 threads ONNX Runtime's and OpenCV's pool threads, which spin on for a while
    after their run. A rotation of one fixed order (before 2026-12-04 16:00) kept every side after the same
    predecessor in most rounds: at 2 threads darknet_py's default always followed OpenCV and measured 6-15 %
    slower than the identical network that followed it."""
    shuffle = random.Random(0)
    for _ in range(rounds):
        yield shuffle.sample(names, len(names))


def alternate(runners: dict, rounds: int) -> dict:
    """Median (CPU seconds, wall seconds) of each runner over ``rounds`` rounds that run each once in turn
    (:func:`shuffled_rounds`)."""
    for run in runners.values():             # warm-up: oneDNN/ORT/OpenCV build their kernels on the first call
        run()
        run()
    cpu = {name: [] for name in runners}
    wall = {name: [] for name in runners}
    for order in shuffled_rounds(list(runners), rounds):
        for name in order:
            run = runners[name]
            c, w = time.process_time(), time.perf_counter()
            run()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    return {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in runners}


def bench_forward(root: Path, models: list[str], rounds: int) -> None:
    photo = load_image(DEBIAN / "data" / "dog.jpg")
    for model in models:
        cfg = ROOT / "cfg" / f"{model}.cfg"
        net = parse_cfg(cfg).net
        blob = resize_image(photo, net.width, net.height)[None]
        weights, onnx_path = root / f"{model}.weights", root / f"{model}.onnx"
        random_weights(cfg, weights)
        export_onnx(load_network(cfg, weights, batch=1, fuse=True), str(onnx_path))
        for threads in (1, 2):
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
            times = alternate(forward_runners(cfg, weights, onnx_path, threads, blob), rounds)
            ours_cpu, ours_wall = times[DEFAULT]
            print(f"{model} {net.width}x{net.height}, {threads} thread(s), median of {rounds} alternated runs "
                  f"(ratio: darknet_py fused / this, < 1 = darknet_py faster):")
            print(f"  {'':40s} {'CPU ms':>8s} {'ratio':>6s} {'wall ms':>8s} {'ratio':>6s}")
            for name, (c, w) in times.items():
                print(f"  {name:40s} {c * 1000:8.1f} {ours_cpu / c:6.2f} {w * 1000:8.1f} {ours_wall / w:6.2f}")
    torch.set_num_threads(1)


def darknet_py_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "darknet_py", *args]


def run_alternated(commands: dict, cwd: Path, rounds: int) -> dict:
    """name -> (median wall seconds, median CPU seconds) of ``commands`` (name -> (argv, env)) run in turn
    ``rounds`` times. CPU time (user + system of the process and the children it waited for) is what a
    shared machine distorts least."""
    wall = {name: [] for name in commands}
    cpu = {name: [] for name in commands}
    for order in shuffled_rounds(list(commands), rounds):
        for name in order:
            command, env = commands[name]
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            wall[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in commands}


def print_medians(title: str, times: dict, reference: str, label: str) -> None:
    ref_wall, ref_cpu = times[reference]
    print(title)
    print(f"  {'':46s} {'wall s':>7s} {'ratio':>6s} {'CPU s':>7s} {'ratio':>6s}   (ratio: / {label})")
    for name, (wall, cpu) in times.items():
        print(f"  {name:46s} {wall:7.2f} {wall / ref_wall:6.2f} {cpu:7.2f} {cpu / ref_cpu:6.2f}")


def bench_process(root: Path, rounds: int) -> None:
    darknet = shutil.which("darknet")
    if darknet is None:
        print("whole-process detector test: skipped (no Debian darknet)")
        return
    cfg, weights, photo = DEBIAN / "cfg" / "yolov3-tiny.cfg", coco_weights(), DEBIAN / "data" / "dog.jpg"
    (root / "coco.data").write_text(f"classes=80\nnames={DEBIAN / 'data' / 'coco.names'}\n")
    one_thread = dict(os.environ, OMP_NUM_THREADS="1")
    arguments = ("detector", "test", "coco.data", str(cfg), str(weights), str(photo), "--flavor", "pj")
    test = darknet_py_command(*arguments)
    # the same command without darknet_py/process.py (torch loaded with the collector running, the interpreter's
    # tear-down at the end): how `darknet_py` ended before
    usual_end = [sys.executable, "-c", "import sys\nfrom darknet_py.cli import main\nmain(sys.argv[1:])", *arguments]
    commands = {
        # -out: save the picture without opening a window (Debian's build has OpenCV/Qt; no display here)
        "Debian darknet detector test": ([darknet, "detector", "test", "coco.data", str(cfg), str(weights),
                                          str(photo), "-out", "predictions"], None),
        "darknet_py detector test (default threads)": (test, None),
        "darknet_py detector test (OMP_NUM_THREADS=1)": (test, one_thread),
        "the same, without process.py (as before)": (usual_end, None),
        "darknet_py --help": (darknet_py_command("--help"), None),
        "python -c 'import torch' (for scale)": ([sys.executable, "-c", "import torch"], None),
    }
    print_medians(f"whole process, one photo (dog.jpg), yolov3-tiny 416, official weights; medians of {rounds} "
                  "alternated runs:", run_alternated(commands, root, rounds), "Debian darknet detector test",
                  "Darknet")


def bench_workers(root: Path, photos: int, rounds: int, core_counts: list) -> None:
    """`detector map` default loader setting against --workers 0 / 1, pinned (taskset) to the first N of the
    cores this process may use for each N in ``core_counts`` ("all": not pinned)."""
    paths = make_photos(root / "photos", photos)
    for path in paths:                       # no objects: map's work is decoding + the network, not the truth
        Path(path).with_suffix(".txt").write_text("")
    (root / "photos.txt").write_text("".join(p + "\n" for p in paths))
    (root / "photos.data").write_text(f"classes=80\nvalid={root / 'photos.txt'}\n"
                                      f"names={DEBIAN / 'data' / 'coco.names'}\n")
    cfg, weights = str(DEBIAN / "cfg" / "yolov3-tiny.cfg"), str(coco_weights())
    base = darknet_py_command("detector", "map", "photos.data", cfg, weights)
    cores = sorted(os.sched_getaffinity(0))
    for count in core_counts:
        if count == "all":
            label, pin = f"{len(cores)} cores", []
        else:
            label, pin = f"{count} core(s) (taskset)", ["taskset", "-c", ",".join(map(str, cores[:int(count)]))]
        runs = {"default": (pin + base, None)}
        runs.update({f"--workers {n}": (pin + base + ["--workers", str(n)], None) for n in (0, 1, 2)})
        print_medians(f"detector map, {photos} photo-sized JPEGs, yolov3-tiny 416, {label}; medians of {rounds} "
                      "alternated runs:", run_alternated(runs, root, rounds), "--workers 0", "--workers 0")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=28, help="alternated rounds of the forward comparison (7 sides)")
    parser.add_argument("--process-rounds", type=int, default=12, help="alternated whole-process runs (6 commands)")
    parser.add_argument("--photos", type=int, default=100, help="photo-sized JPEGs of the detector map runs")
    parser.add_argument("--map-rounds", type=int, default=3, help="alternated detector map runs")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="cfg names in cfg/ for section 1")
    parser.add_argument("--skip-forward", action="store_true", help="leave out section 1")
    parser.add_argument("--skip-process", action="store_true", help="leave out sections 2 and 3")
    parser.add_argument("--skip-map", action="store_true", help="leave out section 4 (minutes)")
    parser.add_argument("--map-cores", default="all,1",
                        help="section 4: comma-separated core counts to pin to, 'all' for no pinning")
    args = parser.parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ort = importlib.util.find_spec("onnxruntime") and importlib.metadata.version("onnxruntime")
    print(f"machine: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} usable cores, "
          f"torch {torch.__version__}, onnxruntime {ort or 'not installed'}, OpenCV {cv2.__version__}; "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.skip_forward:
            bench_forward(root, args.models, args.rounds)
        if not args.skip_process:
            bench_process(root, args.process_rounds)
        if not args.skip_map:
            bench_workers(root, args.photos, args.map_rounds, args.map_cores.split(","))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
