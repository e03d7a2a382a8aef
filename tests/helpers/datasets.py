"""The one builder of small Darknet data sets for the tests, in a temporary folder: pictures under
`JPEGImages/` with their label files under `labels/` (where both forks' label rules find them), list files,
.names and .data files; and `make_dataset`, the tiny generated detection set of the training tests.

Each piece writes exactly the bytes it is given (OpenCV encodes the pixels), so a test's data, and the golden
values computed from it, do not depend on which test built it."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable, Optional, Union

import cv2
import numpy as np

Pixels = Union[np.ndarray, Path, None]


def add_picture(root: Path, name: str, pixels: Pixels = None, labels: Union[str, Path, None] = None,
                split: str = "") -> Path:
    """``root/JPEGImages/[split/]name`` and its label file ``root/labels/[split/]<stem>.txt``; returns the
    image path. ``pixels``: an array OpenCV writes (BGR), a file to copy, or None for an empty file (for
    commands that read only the labels). ``labels``: the label file's text, a label file to copy, or None
    for no label file."""
    images, label_dir = root / "JPEGImages" / split, root / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    path = images / name
    if isinstance(pixels, np.ndarray):
        cv2.imwrite(str(path), pixels)
    elif pixels is None:
        path.touch()
    else:
        shutil.copy(pixels, path)
    if isinstance(labels, str):
        (label_dir / f"{path.stem}.txt").write_text(labels)
    elif labels is not None:
        shutil.copy(labels, label_dir / f"{path.stem}.txt")
    return path


def write_list(path: Path, entries: Iterable) -> Path:
    """A Darknet list file (train=, valid=): one entry per line."""
    path.write_text("".join(f"{entry}\n" for entry in entries))
    return path


def write_names(path: Path, names: Iterable[str]) -> Path:
    path.write_text("".join(f"{name}\n" for name in names))
    return path


def write_data_file(path: Path, separator: str = "=", **keys) -> Path:
    """A .data file, one ``key=value`` line per key in the order given."""
    path.write_text("".join(f"{key}{separator}{value}\n" for key, value in keys.items()))
    return path


CLASSES = ("rect", "ellipse")


def tiny_cfg(*, batch=8, subdivisions=2, size=64, max_batches=200, batch_normalize=True, random=0,
             learning_rate=0.01, burn_in=10, steps=(150,), jitter=0.2, hue=0.1, saturation=1.5,
             exposure=1.5) -> str:
    bn = "batch_normalize=1\n" if batch_normalize else ""
    conv = lambda filters, size_, act="leaky": (  # noqa: E731
        f"[convolutional]\n{bn}filters={filters}\nsize={size_}\nstride=1\npad=1\nactivation={act}\n\n")
    pool = "[maxpool]\nsize=2\nstride=2\n\n"
    filters = 3 * (len(CLASSES) + 5)
    scales = ",".join(".1" for _ in steps)
    return (f"[net]\nbatch={batch}\nsubdivisions={subdivisions}\nwidth={size}\nheight={size}\nchannels=3\n"
            f"momentum=0.9\ndecay=0.0005\nsaturation={saturation}\nexposure={exposure}\nhue={hue}\n"
            f"learning_rate={learning_rate}\nburn_in={burn_in}\nmax_batches={max_batches}\npolicy=steps\n"
            f"steps={','.join(str(s) for s in steps)}\nscales={scales}\n\n"
            + conv(8, 3) + pool + conv(16, 3) + pool + conv(32, 3) + pool + conv(32, 3)
            + f"[convolutional]\nsize=1\nstride=1\npad=1\nfilters={filters}\nactivation=linear\n\n"
            f"[yolo]\nmask=0,1,2\nanchors=10,10, 20,16, 32,32\nclasses={len(CLASSES)}\nnum=3\n"
            f"jitter={jitter}\nignore_thresh=.7\ntruth_thresh=1\nrandom={random}\n")


def make_dataset(root: Path, count: int = 12, valid: int = 4, seed: int = 7, size: int = 64) -> Path:
    """Write images, labels, list files, names and `tiny.data` under ``root``; returns the .data path.
    Images are PNG (lossless) so that Darknet's stb_image and OpenCV decode the same pixels. Two classes:
    filled rectangles (0) and ellipses (1). List entries are absolute paths so Darknet binaries run from any
    directory find them."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", count), ("valid", valid)):
        paths = []
        for i in range(n):
            image, records = _draw(rng, size)
            labels = "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in records)
            paths.append(add_picture(root, f"{i:03d}.png", image, labels, split).resolve())
        write_list(root / f"{split}.txt", paths)
    write_names(root / "tiny.names", CLASSES)
    return write_data_file(root / "tiny.data", classes=len(CLASSES), train=root / "train.txt",
                           valid=root / "valid.txt", names=root / "tiny.names", backup=root / "backup")


def write_tiny_data(root: Path, dataset: Path, backup: str = "backup", **extra) -> Path:
    """A `tiny.data` in ``root`` using ``dataset``'s (`make_dataset`'s) lists and names, backups in
    ``root/backup``."""
    root.mkdir(parents=True, exist_ok=True)
    return write_data_file(root / "tiny.data", **{"classes": 2, "train": dataset / "train.txt",
                                                   "valid": dataset / "valid.txt", "names": dataset / "tiny.names",
                                                   "backup": root / backup, **extra})


def _draw(rng: np.random.Generator, size: int):
    height = int(size * rng.uniform(0.8, 1.25))
    width = size
    image = rng.integers(90, 150, (height, width, 3), dtype=np.uint8)
    records = []
    for _ in range(int(rng.integers(1, 3))):
        cls = int(rng.integers(0, 2))
        w, h = rng.uniform(0.25, 0.5) * width, rng.uniform(0.25, 0.5) * height
        x, y = rng.uniform(w / 2, width - w / 2), rng.uniform(h / 2, height - h / 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if cls == 0:
            cv2.rectangle(image, (int(x - w / 2), int(y - h / 2)), (int(x + w / 2), int(y + h / 2)), colour, -1)
        else:
            cv2.ellipse(image, (int(x), int(y)), (int(w / 2), int(h / 2)), 0, 0, 360, colour, -1)
        records.append((cls, x / width, y / height, w / width, h / height))
    return image, records
