"""A tiny detection data set and cfgs for the training-loop tests, generated in a temporary folder.

Images are PNG (lossless) so that Darknet's stb_image and OpenCV decode the same pixels; they sit under
`JPEGImages/` so both forks' label rules find `labels/`. Two classes: filled rectangles (0) and ellipses (1)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

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
    List entries are absolute paths so Darknet binaries run from any directory find them."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lists = {"train": [], "valid": []}
    for split, n in (("train", count), ("valid", valid)):
        images, labels = root / "JPEGImages" / split, root / "labels" / split
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image, records = _draw(rng, size)
            path = images / f"{i:03d}.png"
            cv2.imwrite(str(path), image)
            (labels / f"{i:03d}.txt").write_text("".join(
                f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in records))
            lists[split].append(str(path.resolve()))
    for split, paths in lists.items():
        (root / f"{split}.txt").write_text("\n".join(paths) + "\n")
    (root / "tiny.names").write_text("\n".join(CLASSES) + "\n")
    data = root / "tiny.data"
    data.write_text(f"classes={len(CLASSES)}\ntrain={root / 'train.txt'}\nvalid={root / 'valid.txt'}\n"
                    f"names={root / 'tiny.names'}\nbackup={root / 'backup'}\n")
    return data


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
