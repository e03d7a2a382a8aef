"""How fast `dataset import coco --link` goes through a large annotation file (issue 20: 100k pictures must
import in minutes, not hours).

Generates a COCO JSON of N pictures (default 100,000) with BOXES boxes each (default 10: 1M boxes) over 80
categories, `width`/`height` in the JSON, and the pictures as empty files (no pixels: the import trusts the
JSON's sizes and links the files). Then runs `python -m darknet_py dataset import coco ... --link` in a
subprocess (its wall time and peak memory, resource.getrusage of the child) against a reference in the same
script: the least any importer must do in Python (json.load, one label file and one symbolic link per
picture). Usage: python bench/bench_dataset_import.py [N] [BOXES]."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CATEGORIES = 80


def build(root: Path, n: int, boxes: int) -> Path:
    """root/images/<n empty pictures> and root/annotations.json; returns the JSON."""
    images_dir = root / "images"
    images_dir.mkdir()
    images, annotations = [], []
    for i in range(n):
        name = f"{i:07d}.jpg"
        (images_dir / name).touch()
        images.append({"id": i + 1, "file_name": name, "width": 640, "height": 480})
        for k in range(boxes):
            x, y = (i * 7 + k * 53) % 560, (i * 11 + k * 37) % 400
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": (i + k) % CATEGORIES + 1, "bbox": [x, y, 40.5 + k, 30.25 + k],
                                "area": 1000.0, "iscrowd": 0})
    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(CATEGORIES)]
    path = root / "annotations.json"
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return path


def reference(path: Path, out: Path) -> None:
    """json.load, then per picture one label file (its boxes normalised) and one symbolic link."""
    with open(path) as f:
        document = json.load(f)
    by_image: dict[int, list] = {}
    for a in document["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    (out / "JPEGImages").mkdir(parents=True)
    (out / "labels").mkdir()
    for image in document["images"]:
        w, h = image["width"], image["height"]
        lines = "".join(f"{a['category_id'] - 1} {(a['bbox'][0] + a['bbox'][2] / 2) / w:.8f} "
                        f"{(a['bbox'][1] + a['bbox'][3] / 2) / h:.8f} {a['bbox'][2] / w:.8f} {a['bbox'][3] / h:.8f}\n"
                        for a in by_image.get(image["id"], ()))
        stem = image["file_name"][:-4]
        (out / "labels" / f"{stem}.txt").write_text(lines)
        os.symlink(path.parent / "images" / image["file_name"], out / "JPEGImages" / image["file_name"])


def timed_import(path: Path, out: Path) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of the import command in a child process."""
    command = [sys.executable, "-m", "darknet_py", "dataset", "import", "coco", str(path), str(out), "--link",
               "--images", str(path.parent / "images")]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - started
    return took, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    boxes = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        path = build(root, n, boxes)
        print(f"generated {n} pictures, {n * boxes} boxes ({path.stat().st_size / 2**20:.0f} MiB JSON) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        reference(path, root / "reference")
        floor = time.perf_counter() - started
        took, peak = timed_import(path, root / "out")
        labels = sum(1 for _ in (root / "out" / "labels").iterdir())
    assert labels == n, labels
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"dataset import coco --link: {n} pictures, {n * boxes} boxes in {took:.1f} s "
          f"({n / took:,.0f} pictures/s), peak memory {peak:.0f} MiB; reference (json.load + label files + "
          f"links) {floor:.1f} s; ratio {took / floor:.2f}x")


if __name__ == "__main__":
    main()
