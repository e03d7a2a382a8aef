"""GPU training and inference throughput (issue 13), on the CUDA device it finds or on CPU with tiny sizes.

For each cfg (default cfg/yolov3.cfg and cfg/yolov4.cfg at 416x416, batch 64), subdivisions (1 and 16) and
precision (fp32 as Darknet, `--amp`; `tf32` on request):

(a) `loader`: training images/s of the real `detector train` loop (`train_network`: loader workers, JPEG
    decoding, augmentation, step, no checkpoints in the timed part) on a synthetic on-disk set of
    photo-sized JPEGs this script writes (shapes on noise, 1-4 boxes each), and the peak GPU memory;
(b) `premade`: the same step on a batch already on the device (the model's own ceiling): if (a) is well
    below (b), the loader does not keep up;
(c) achieved TFLOP/s = 3 x forward FLOPs (torch's FlopCounterMode: convolutions, as Darknet's BFLOPs) x
    images/s, against the device's dense peak for that precision (table below; unknown device: unknown);
(d) `detector map` images/s (`validate_detector_map`, COCO scoring off) at `--map-batch` images per forward
    where the evaluator takes a batch (i9a's batched inference; until it lands, one image at a time and the
    table says so). The weights are random with objectness biased off (no detections), so this measures
    loading, letterboxing, forward and decoding, not NMS.

Results are printed and appended to bench/RESULTS.md (``--results``) with the device named.

On a GPU machine, the whole prepared session (CUDA tests, the issue's checks, this bench) is
``bench/gpu_session.sh``; this script alone, a few minutes on an H100-class GPU:

    python bench/bench_gpu.py                                     # defaults above, cuda:0
    python bench/bench_gpu.py --device cpu --cfgs tests/fixtures/train/tiny3/tiny3.cfg --size 64 --batch 4 \\
        --subdivisions 1,2 --iterations 2 --warmup 1 --images 8 --image-size 96x72 --map-images 4 --workers 0
"""
from __future__ import annotations

import argparse
import datetime
import inspect
import json
import math
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "data"))

from make_shapes import background, draw_shape, place_shapes, shape_colour  # noqa: E402

from darknet_py.network import parse_cfg  # noqa: E402
from darknet_py.eval.map import validate_detector_map  # noqa: E402
from darknet_py.network import Network  # noqa: E402
from darknet_py.train.loop import TrainOptions, train_network  # noqa: E402
from darknet_py.train.precision import amp_dtype, yolo_in_float32  # noqa: E402
from darknet_py.train.step import train_network_step  # noqa: E402
from darknet_py.train.update import make_optimizer  # noqa: E402

# Dense (no sparsity) peak TFLOP/s from NVIDIA's data sheets: fp32 (CUDA cores), tf32 and bf16 tensor cores.
# Matched against torch.cuda.get_device_name in this order (H100 PCIe before the SXM default).
PEAKS = (
    ("H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}),
    ("H100", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),
    ("L40S", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0}),
    ("L4", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0}),
    ("A10", {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0}),
    ("RTX 4090", {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2}),
)
PRECISION_PEAK = {"fp32": "fp32", "tf32": "tf32", "amp": "bf16"}
OBJECTNESS_OFF = -8.0      # sigmoid(-8) = 0.0003 < detector map's 0.005 threshold


@dataclass(frozen=True)
class Case:
    cfg: Path
    subdivisions: int
    precision: str


@dataclass(frozen=True)
class Measured:
    images_per_s: float
    peak_mib: float           # nan on CPU


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else None)
    p.add_argument("--cfgs", default="cfg/yolov3.cfg,cfg/yolov4.cfg")
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--subdivisions", default="1,16")
    p.add_argument("--precisions", default="fp32,amp", help="comma list of fp32, tf32, amp")
    p.add_argument("--iterations", type=int, default=8, help="timed iterations per case")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--images", type=int, default=256, help="synthetic training/valid images")
    p.add_argument("--image-size", default="640x480", help="synthetic JPEG size WxH (photo-sized)")
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: CPU count - 1, max 16)")
    p.add_argument("--map-batch", type=int, default=32)
    p.add_argument("--map-images", type=int, default=256)
    p.add_argument("--cudnn-benchmark", action="store_true", help="set torch.backends.cudnn.benchmark")
    p.add_argument("--channels-last", action="store_true", help="train in NHWC (detector train --channels-last)")
    p.add_argument("--skip", default="", help="comma list of parts to skip: loader, premade, map")
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    p.add_argument("--no-append", action="store_true")
    args = p.parse_args(argv)
    if args.warmup < 1 or args.iterations < 1:
        p.error("--warmup and --iterations must be at least 1")
    if args.device is None:
        p.error("no CUDA device found: pass --device cpu (with tiny sizes) to run on the CPU")
    return args


# -- synthetic data set -------------------------------------------------------------------------------------

def write_dataset(root: Path, count: int, width: int, height: int, classes: int, seed: int = 13) -> Path:
    """`count` photo-sized JPEGs with YOLO labels (classes 0-2 of the cfg's), a list and a .data file."""
    images = root / "JPEGImages"
    labels = root / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    paths = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        image = background(rng, width, height)
        shapes = place_shapes(rng, width, height)
        for shape in shapes:
            behind = image[shape.y0:shape.y1, shape.x0:shape.x1].reshape(-1, 3).mean(axis=0)
            draw_shape(image, shape, shape_colour(rng, behind), rng)
        path = images / f"{index:05d}.jpg"
        cv2.imwrite(str(path), np.clip(np.rint(image), 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
        (labels / f"{index:05d}.txt").write_text(
            "".join(s.label_line(width, height) + "\n" for s in shapes if s.cls < classes))
        paths.append(str(path))
    (root / "list.txt").write_text("".join(p + "\n" for p in paths))
    (root / "names.txt").write_text("".join(f"class{c}\n" for c in range(classes)))
    (root / "backup").mkdir()
    data = root / "bench.data"
    data.write_text(f"classes = {classes}\ntrain = {root / 'list.txt'}\nvalid = {root / 'list.txt'}\n"
                    f"names = {root / 'names.txt'}\nbackup = {root / 'backup'}\n")
    return data


def sized_cfg(cfg: Path, out: Path, size: int, batch: int, subdivisions: int, max_batches: int) -> Path:
    """``cfg`` at ``size``, ``batch``/``subdivisions``, no multiscale (`random=0`), a short run."""
    text = cfg.read_text()
    for key, value in (("batch", batch), ("subdivisions", subdivisions), ("width", size), ("height", size),
                       ("max_batches", max_batches)):
        text = re.sub(rf"(?m)^\s*{key}\s*=.*$", f"{key}={value}", text, count=1)
    text = re.sub(r"(?m)^\s*random\s*=.*$", "random=0", text)
    path = out / f"{cfg.stem}_{size}_b{batch}_s{subdivisions}.cfg"
    path.write_text(text)
    return path


# -- measurements -------------------------------------------------------------------------------------------

def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else math.nan


def train_with_loader(cfg: Path, data: Path, device: torch.device, precision: str, warmup: int, iterations: int,
                      workers: int, work: Path, args) -> Measured:
    """(a): `train_network` for warmup + iterations; throughput from the log's iteration times. ``args``:
    --cudnn-benchmark and --channels-last, passed as `detector train`'s flags."""
    log = work / f"{cfg.stem}_{precision}.jsonl"
    _reset_peak(device)
    train_network(TrainOptions(data_file=str(data), cfg_file=str(cfg), device=str(device),
                               amp=precision == "amp", tf32=precision == "tf32", workers=workers,
                               cudnn_benchmark=args.cudnn_benchmark, channels_last=args.channels_last,
                               progress=False, log_file=str(log), chart_dir=str(work)))
    times = [e["time"] for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "iteration"]
    batch = parse_cfg(cfg).net.images_per_update
    seconds = max(times[-1] - times[warmup - 1], 1e-3) / (len(times) - warmup)    # the log keeps ms
    return Measured(batch / seconds, _peak_mib(device))


def synthetic_truth(batch: int, classes: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    truth = np.zeros((batch, 90, 5), dtype=np.float32)
    n = 4
    truth[:, :n, :2] = rng.uniform(0.15, 0.85, (batch, n, 2))
    truth[:, :n, 2:4] = rng.uniform(0.05, 0.3, (batch, n, 2))
    truth[:, :n, 4] = rng.integers(0, classes, (batch, n))
    return torch.from_numpy(truth)


def _network(cfg: Path, device: torch.device, precision: str, channels_last: bool = False) -> Network:
    torch.manual_seed(0)
    network = Network(parse_cfg(cfg)).to(device)
    if precision == "amp":
        yolo_in_float32(network)
    return network.channels_last_() if channels_last else network


def train_premade(cfg: Path, device: torch.device, precision: str, warmup: int, iterations: int,
                  channels_last: bool = False) -> Measured:
    """(b): the step alone on a batch already on the device (the step ends with its one host read)."""
    network = _network(cfg, device, precision, channels_last)
    optimizer = make_optimizer(network)
    net = network.net_options
    images = torch.rand(net.images_per_update, net.channels, net.height, net.width, device=device)
    truth = synthetic_truth(net.images_per_update, network.layers[network.detection_indices[0]].options.classes)
    tf32 = precision == "tf32"
    _reset_peak(device)
    for i in range(warmup + iterations):
        if i == warmup:
            started = time.perf_counter()
        with torch.autocast(device.type, dtype=amp_dtype(device), enabled=precision == "amp"):
            train_network_step(network, optimizer, images, truth, device=device, tf32=tf32)
    return Measured(iterations * net.images_per_update / (time.perf_counter() - started), _peak_mib(device))


def forward_flops(cfg: Path, device: torch.device) -> float:
    """FLOPs of one image's forward (2 per multiply-add, convolutions and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    network = _network(cfg, device, "fp32").eval()
    net = network.net_options
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(torch.zeros(1, net.channels, net.height, net.width, device=device))
    return float(counter.get_total_flops())


def device_peak(device: torch.device) -> tuple[str, Optional[dict]]:
    if device.type != "cuda":
        return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)", None
    name = torch.cuda.get_device_name(device)
    return name, next((peaks for key, peaks in PEAKS if key in name), None)


def map_speed(cfg: Path, data: Path, device: torch.device, batch: int) -> tuple[float, str]:
    """(d): images/s of `detector map`'s evaluator; says whether it ran batched."""
    network = _network(cfg, device, "fp32")
    for index in network.detection_indices:     # objectness off: no detections, no NMS
        conv = network.layers[index - 1]
        a, e = len(network.layers[index].options.mask), network.layers[index].options.classes + 5
        with torch.no_grad():
            conv.conv.weight.zero_()
            conv.biases.view(a, e)[:, 4] = OBJECTNESS_OFF
    batched = "batch" in inspect.signature(validate_detector_map).parameters
    kwargs = {"batch": batch} if batched else {}
    result = validate_detector_map(network, str(data), coco=False, **kwargs)
    images = len(Path(parse_data_list(data)).read_text().split())
    return images / result.seconds, f"batch {batch}" if batched else "1 image a forward (no batched map yet)"


def parse_data_list(data: Path) -> str:
    return re.search(r"(?m)^valid\s*=\s*(.+)$", data.read_text()).group(1).strip()


def cuda_syncs_per_step(cfg: Path, device: torch.device) -> Optional[list[str]]:
    """Host syncs of one training step as CUDA's own sync debug mode reports them, as the Python lines that
    asked for each (bench/host_syncs.py counts the same on CPU by simulation)."""
    if device.type != "cuda":
        return None
    import warnings

    network = _network(cfg, device, "fp32")
    optimizer = make_optimizer(network)
    net = network.net_options
    images = torch.rand(net.images_per_update, net.channels, net.height, net.width).pin_memory()
    truth = synthetic_truth(net.images_per_update, network.layers[network.detection_indices[0]].options.classes)
    train_network_step(network, optimizer, images, truth, device=device)
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        caught.clear()          # switching the mode on warns once itself (seen on torch 2.11): not the step's
        try:
            train_network_step(network, optimizer, images, truth, device=device)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [f"{Path(w.filename).name}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]


# -- report ---------------------------------------------------------------------------------------------------

def tflops(flops: float, images_per_s: float) -> float:
    return 3 * flops * images_per_s / 1e12


def percent_of_peak(value: float, peaks: Optional[dict], precision: str) -> str:
    if peaks is None or math.isnan(value):
        return "unknown peak"
    key = PRECISION_PEAK[precision]
    return f"{100 * value / peaks[key]:.1f} % of {peaks[key]:g} ({key})"


def markdown(device_name: str, args, rows: list[dict], notes: list[str]) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n## `bench/bench_gpu.py` — {device_name}, {stamp}\n",
             f"torch {torch.__version__}; {args.size}x{args.size}, batch {args.batch}; synthetic set: "
             f"{args.images} JPEGs of {args.image_size}; loader workers {args.workers}; {args.warmup} warm-up + "
             f"{args.iterations} timed iterations per case; cudnn.benchmark {args.cudnn_benchmark}; "
             f"channels_last {args.channels_last}.\n",
             "| cfg | subdiv | precision | (a) loader img/s | (b) premade img/s | (a)/(b) | peak MiB (a) / (b) "
             "| (c) TFLOP/s (b) | of peak |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r.get("loader"), r.get("premade")
        lines.append(
            f"| {r['cfg']} | {r['subdivisions']} | {r['precision']} | {_fmt(a and a.images_per_s)} | "
            f"{_fmt(b and b.images_per_s)} | {_ratio(a, b)} | {_fmt(a and a.peak_mib, 0)} / "
            f"{_fmt(b and b.peak_mib, 0)} | {_fmt(r.get('tflops'), 2)} | {r.get('peak', '')} |")
    lines += [""] + [f"- {line}" for line in notes] + ["- nan / —: out of GPU memory or not run"]
    return "\n".join(lines) + "\n"


def _fmt(value, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _ratio(a: Optional[Measured], b: Optional[Measured]) -> str:
    return "—" if a is None or b is None else f"{a.images_per_s / b.images_per_s:.2f}"


def main(argv=None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark      # off unless asked: measure what users get
    args.workers = min(16, max(0, (torch.multiprocessing.cpu_count() or 2) - 1)) if args.workers is None \
        else args.workers
    device_name, peaks = device_peak(device)
    print(f"device: {device_name}; peaks (dense TFLOP/s): {peaks or 'unknown'}", flush=True)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for cfg_name in args.cfgs.split(","):
            cfg = Path(cfg_name) if Path(cfg_name).is_absolute() else ROOT / cfg_name
            cfg_rows, cfg_notes = bench_cfg(cfg, args, device, peaks, Path(tmp))
            rows += cfg_rows
            notes += cfg_notes
            print("\n".join(cfg_notes), flush=True)
    report = markdown(device_name, args, rows, notes)
    print(report)
    if not args.no_append:
        with open(args.results, "a") as f:
            f.write(report)


def bench_cfg(cfg: Path, args, device: torch.device, peaks: Optional[dict], work: Path) -> tuple[list, list]:
    """(a)-(c) for every subdivisions and precision of one cfg, then (d) and the CUDA sync count."""
    skip = set(filter(None, args.skip.split(",")))
    width, height = (int(v) for v in args.image_size.split("x"))
    classes = _classes(cfg)
    folder = work / cfg.stem
    data = write_dataset(folder, args.images, width, height, classes)
    rows, flops = [], None
    for subdivisions in (int(s) for s in args.subdivisions.split(",")):
        sized = sized_cfg(cfg, folder, args.size, args.batch, subdivisions, args.warmup + args.iterations)
        flops = flops or forward_flops(sized, device)
        for precision in args.precisions.split(","):
            row = {"cfg": cfg.name, "subdivisions": subdivisions, "precision": precision}
            if "loader" not in skip:
                row["loader"] = _unless_out_of_memory(train_with_loader, sized, data, device, precision,
                                                      args.warmup, args.iterations, args.workers, folder, args)
            if "premade" not in skip:
                row["premade"] = _unless_out_of_memory(train_premade, sized, device, precision, args.warmup,
                                                       args.iterations, args.channels_last)
                row["tflops"] = tflops(flops, row["premade"].images_per_s)
                row["peak"] = percent_of_peak(row["tflops"], peaks, precision)
            rows.append(row)
            print(row, flush=True)
    notes = [f"{cfg.name}: forward {flops / 1e9:.3f} GFLOP an image at {args.size}x{args.size}"]
    if "map" not in skip:
        valid = write_dataset(work / f"{cfg.stem}_valid", args.map_images, width, height, classes, seed=14)
        speed, how = map_speed(sized_cfg(cfg, folder, args.size, 1, 1, 1), valid, device, args.map_batch)
        notes.append(f"{cfg.name}: (d) detector map {speed:.1f} images/s ({how}; {args.map_images} images)")
    syncs = cuda_syncs_per_step(sized_cfg(cfg, folder, args.size, args.batch, min(16, args.batch), 1), device)
    if syncs is not None:
        notes.append(f"{cfg.name}: {len(syncs)} host syncs in one training step (CUDA sync debug mode): "
                     + ", ".join(syncs))
    return rows, notes


def _unless_out_of_memory(measure, *args) -> Measured:
    """A case that does not fit in GPU memory is reported as such (nan), not the end of the bench."""
    try:
        return measure(*args)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return Measured(math.nan, math.nan)


def _classes(cfg: Path) -> int:
    return int(re.findall(r"(?m)^\s*classes\s*=\s*(\d+)", cfg.read_text())[-1])


if __name__ == "__main__":
    main()
