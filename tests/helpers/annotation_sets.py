"""Annotation sources in other tools' formats made from the same generated pictures and the same ground
truth, for the `dataset import` tests and the custom-data guide's test: a COCO JSON, a Pascal VOC folder and
an Ultralytics folder with its data.yaml.

The ground truth is boxes with whole-pixel edges (left, top, right, bottom), so every format states them
exactly in its own convention (COCO `[left, top, right - left, bottom - top]`; VOC 1-based inclusive
`xmin = left + 1, xmax = right`; YOLO normalised centre and size). :func:`expected_labels` is the Darknet
label every import must give, computed here from the ground truth, not by the code under test."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

NAMES = ("ellipse", "rect")        # alphabetical = id order, so VOC's sorted names agree with the others
CATEGORY_IDS = (3, 7)              # COCO ids: not 0-based on purpose (the import maps them to 0, 1)


def make_pictures(count: int = 12, valid: int = 4, seed: int = 5, size: int = 64) -> list[dict]:
    """[{name, split, width, height, pixels, boxes: [(class, left, top, right, bottom)]}]."""
    rng = np.random.default_rng(seed)
    pictures = []
    for k in range(count + valid):
        width, height = size, int(size * rng.choice([0.75, 1.0, 1.25]))
        pixels = rng.integers(90, 150, (height, width, 3), dtype=np.uint8)
        boxes = []
        for _ in range(int(rng.integers(1, 3))):
            cls = int(rng.integers(0, 2))
            w, h = int(rng.integers(width // 4, width // 2)), int(rng.integers(height // 4, height // 2))
            left, top = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            if cls == 1:
                cv2.rectangle(pixels, (left, top), (left + w - 1, top + h - 1), colour, -1)
            else:
                cv2.ellipse(pixels, (left + w // 2, top + h // 2), (w // 2, h // 2), 0, 0, 360, colour, -1)
            boxes.append((cls, left, top, left + w, top + h))
        pictures.append({"name": f"pic{k:03d}.jpg", "split": "valid" if k >= count else "train",
                         "width": width, "height": height, "pixels": pixels, "boxes": boxes})
    return pictures


def expected_labels(picture: dict) -> np.ndarray:
    """(N, 5) `class x y w h` of the picture's boxes, Darknet's normalised form."""
    W, H = picture["width"], picture["height"]
    return np.array([(c, (l + r) / 2 / W, (t + b) / 2 / H, (r - l) / W, (b - t) / H)
                     for c, l, t, r, b in picture["boxes"]], np.float64).reshape(-1, 5)


def write_coco(root: Path, pictures: list[dict]) -> Path:
    """root/images/<name> and root/annotations.json (file_name relative to root/images)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id, picture in enumerate(pictures, start=1):
        cv2.imwrite(str(root / "images" / picture["name"]), picture["pixels"])
        images.append({"id": image_id, "file_name": picture["name"], "width": picture["width"],
                       "height": picture["height"]})
        for c, l, t, r, b in picture["boxes"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": CATEGORY_IDS[c],
                                "bbox": [l, t, r - l, b - t], "area": (r - l) * (b - t), "iscrowd": 0})
    categories = [{"id": i, "name": n} for i, n in zip(CATEGORY_IDS, NAMES)]
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def write_voc(root: Path, pictures: list[dict]) -> Path:
    """A VOC folder: Annotations/, JPEGImages/ and ImageSets/Main/{train,val}.txt."""
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for picture in pictures:
        cv2.imwrite(str(root / "JPEGImages" / picture["name"]), picture["pixels"])
        objects = "".join(
            f"<object><name>{NAMES[c]}</name><difficult>0</difficult><bndbox><xmin>{l + 1}</xmin>"
            f"<ymin>{t + 1}</ymin><xmax>{r}</xmax><ymax>{b}</ymax></bndbox></object>"
            for c, l, t, r, b in picture["boxes"])
        (root / "Annotations" / f"{Path(picture['name']).stem}.xml").write_text(
            f"<annotation><filename>{picture['name']}</filename><size><width>{picture['width']}</width>"
            f"<height>{picture['height']}</height><depth>3</depth></size>{objects}</annotation>")
    for split, listed in (("train", "train"), ("valid", "val")):
        stems = [Path(p["name"]).stem for p in pictures if p["split"] == split]
        (root / "ImageSets" / "Main" / f"{listed}.txt").write_text("".join(f"{s}\n" for s in stems))
    return root


def write_yolo(root: Path, pictures: list[dict]) -> Path:
    """An Ultralytics folder: images/{train,val}, labels/{train,val} and data.yaml (names as a mapping)."""
    for picture in pictures:
        split = "train" if picture["split"] == "train" else "val"
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / split / picture["name"]), picture["pixels"])
        rows = expected_labels(picture)
        (root / "labels" / split / f"{Path(picture['name']).stem}.txt").write_text(
            "".join(f"{int(c)} {x!r} {y!r} {w!r} {h!r}\n" for c, x, y, w, h in rows.tolist()))
    names = "".join(f"  {k}: {n}\n" for k, n in enumerate(NAMES))
    path = root / "data.yaml"
    path.write_text(f"path: .\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return path
