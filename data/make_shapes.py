#!/usr/bin/env python3
"""Generate the embedded `shapes` demo dataset in Darknet's layout (numpy + OpenCV only).

    python data/make_shapes.py                      # rewrites data/shapes/, data/shapes.data, data/shapes.names
    python data/make_shapes.py --out /tmp/x         # the same dataset somewhere else
    python data/make_shapes.py --anchors 6 --size 128   # k-means anchors for a cfg (prints, writes nothing)

Three classes (rect, ellipse, triangle), 1-4 filled shapes per image on a noisy background, image sizes
96..160 px. Every image draws its randomness from its own generator seeded by (seed, split, index), so the
output is the same on every run and machine; only the JPEG bytes may vary with the encoder version.

Layout (what both Darknet forks expect): images under `JPEGImages/` -- the one folder name pjreddie *and*
AlexeyAB map to `labels/` -- and one `class cx cy w h` line per object, relative to the image size.
List files and the `.data` file hold paths relative to the repository root, because Darknet opens them
relative to the current directory.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("rect", "ellipse", "triangle")
SPLITS = {"train": 200, "valid": 50}
SPLIT_IDS = {"train": 0, "valid": 1}
SEED = 20261122
MIN_SIDE, MAX_SIDE = 96, 160
MIN_SHAPE = 14               # pixels: a shape must cover > 1 cell of the 8x8 grid of a 128-px network
JPEG_QUALITY = 80
MAX_PLACEMENT_TRIES = 60


@dataclass(frozen=True)
class Shape:
    """One object, as the integer pixel rectangle [x0, x1) x [y0, y1) it fills exactly."""
    cls: int
    x0: int
    y0: int
    x1: int
    y1: int

    def overlaps(self, other: "Shape", margin: int) -> bool:
        return not (self.x1 + margin <= other.x0 or other.x1 + margin <= self.x0
                    or self.y1 + margin <= other.y0 or other.y1 + margin <= self.y0)

    def label_line(self, width: int, height: int) -> str:
        cx, cy = (self.x0 + self.x1) / 2 / width, (self.y0 + self.y1) / 2 / height
        w, h = (self.x1 - self.x0) / width, (self.y1 - self.y0) / height
        return f"{self.cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_IDS[split], index])


def place_shapes(rng: np.random.Generator, width: int, height: int) -> list[Shape]:
    """1-4 shapes that do not touch each other: occlusion would make the tiny demo model's job ambiguous."""
    wanted = int(rng.integers(1, 5))
    largest = int(0.55 * min(width, height))
    shapes: list[Shape] = []
    for _ in range(MAX_PLACEMENT_TRIES):
        if len(shapes) == wanted:
            break
        w, h = (int(v) for v in rng.integers(MIN_SHAPE, largest + 1, size=2))
        x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        candidate = Shape(int(rng.integers(0, len(CLASSES))), x0, y0, x0 + w, y0 + h)
        if not any(candidate.overlaps(s, margin=2) for s in shapes):
            shapes.append(candidate)
    return shapes


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A dim base colour with a linear gradient: float BGR image, noise is added after drawing."""
    base = rng.uniform(20, 140, size=3)
    tilt = rng.uniform(-40, 40, size=(2, 3))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    image = base + xs[..., None] / width * tilt[0] + ys[..., None] / height * tilt[1]
    return image


def shape_colour(rng: np.random.Generator, behind: np.ndarray) -> tuple[float, float, float]:
    """A colour far enough from the background under the shape that the shape stays visible."""
    for _ in range(100):
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - behind).sum() > 150:
            return tuple(float(c) for c in colour)
    return tuple(float(c) for c in 255 - behind)


def draw_shape(image: np.ndarray, shape: Shape, colour, rng: np.random.Generator) -> None:
    """Fill exactly the pixels of ``shape``'s rectangle that belong to it; its label box stays tight."""
    x0, y0, x1, y1 = shape.x0, shape.y0, shape.x1 - 1, shape.y1 - 1   # last pixel, inclusive
    name = CLASSES[shape.cls]
    if name == "rect":
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thickness=-1)
    elif name == "ellipse":
        # drawn as a polygon through points on the ellipse so that its extremes hit the box edges
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        cx, cy, ax, ay = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        points = np.stack([np.rint(cx + ax * np.cos(t)), np.rint(cy + ay * np.sin(t))], axis=1)
        cv2.fillPoly(image, [points.astype(np.int32)], colour)
    else:
        cv2.fillPoly(image, [triangle_points(shape, rng)], colour)


def triangle_points(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """A triangle whose base lies on one side of the box and whose apex touches the opposite side."""
    x0, y0, x1, y1 = shape.x0, shape.y0, shape.x1 - 1, shape.y1 - 1
    side = int(rng.integers(0, 4))                       # base at bottom, top, left or right
    apex_x, apex_y = int(rng.integers(x0, x1 + 1)), int(rng.integers(y0, y1 + 1))
    corners = {0: [(x0, y1), (x1, y1), (apex_x, y0)], 1: [(x0, y0), (x1, y0), (apex_x, y1)],
               2: [(x0, y0), (x0, y1), (x1, apex_y)], 3: [(x1, y0), (x1, y1), (x0, apex_y)]}[side]
    return np.array(corners, dtype=np.int32)


def make_image(seed: int, split: str, index: int) -> tuple[np.ndarray, list[Shape]]:
    rng = image_rng(seed, split, index)
    width, height = (int(v) for v in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
    image = background(rng, width, height)
    shapes = place_shapes(rng, width, height)
    for shape in shapes:
        behind = image[shape.y0:shape.y1, shape.x0:shape.x1].reshape(-1, 3).mean(axis=0)
        draw_shape(image, shape, shape_colour(rng, behind), rng)
    image += rng.normal(0, 10, size=image.shape)         # sensor-like noise over shapes and background
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), shapes


def repo_relative(path: Path) -> str:
    """How a list/.data entry names ``path``: relative to the repository root when inside it."""
    root = Path(__file__).resolve().parent.parent
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def write_split(out: Path, split: str, count: int, seed: int) -> list[str]:
    image_dir, label_dir = out / "shapes" / "JPEGImages" / split, out / "shapes" / "labels" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for index in range(count):
        image, shapes = make_image(seed, split, index)
        name = f"{index:05d}"
        cv2.imwrite(str(image_dir / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        lines = [s.label_line(image.shape[1], image.shape[0]) for s in shapes]
        (label_dir / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
        entries.append(f"{repo_relative(image_dir)}/{name}.jpg")
    return entries


def write_dataset(out: Path, seed: int = SEED, counts: dict = SPLITS) -> None:
    out = Path(out)
    for split, count in counts.items():
        entries = write_split(out, split, count, seed)
        (out / "shapes" / f"{split}.txt").write_text("".join(e + "\n" for e in entries))
    (out / "shapes.names").write_text("".join(name + "\n" for name in CLASSES))
    prefix = repo_relative(out)
    (out / "shapes.data").write_text(
        f"classes = {len(CLASSES)}\n"
        f"train = {prefix}/shapes/train.txt\n"
        f"valid = {prefix}/shapes/valid.txt\n"
        f"names = {prefix}/shapes.names\n"
        "backup = backup/\n"
        "eval = voc\n")


# -- anchors: AlexeyAB's calc_anchors k-means (distance 1 - IoU of origin-centred boxes) ----------------
def label_sizes(seed: int, split: str, count: int, net_w: int, net_h: int) -> np.ndarray:
    """(N, 2) box sizes in network pixels of every object in ``split`` (regenerated, no files read)."""
    sizes = []
    for index in range(count):
        image, shapes = make_image(seed, split, index)
        h, w = image.shape[:2]
        sizes += [((s.x1 - s.x0) / w * net_w, (s.y1 - s.y0) / h * net_h) for s in shapes]
    return np.array(sizes, dtype=np.float64)


def kmeans_anchors(points: np.ndarray, k: int, seed: int = 0, iterations: int = 1000) -> np.ndarray:
    """k centres sorted by area; assignments by highest IoU of origin-centred boxes (ties: lowest index)."""
    rng = np.random.default_rng(seed)
    centres = points[rng.choice(len(points), size=k, replace=False)].copy()
    assignment = None
    for _ in range(iterations):
        inter = np.minimum(points[:, None, 0], centres[None, :, 0]) * np.minimum(points[:, None, 1],
                                                                                   centres[None, :, 1])
        union = points[:, None].prod(-1) + centres[None, :].prod(-1) - inter
        new = np.argmax(inter / union, axis=1)
        if assignment is not None and np.array_equal(new, assignment):
            break
        assignment = new
        for j in range(k):
            if np.any(assignment == j):
                centres[j] = points[assignment == j].mean(axis=0)
    return centres[np.argsort(centres.prod(axis=1), kind="stable")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder that receives shapes/, shapes.data and shapes.names (default: data/)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--anchors", type=int, metavar="K", help="print K k-means anchors instead of writing")
    parser.add_argument("--size", type=int, default=128, help="network width=height for --anchors")
    args = parser.parse_args()
    if args.anchors:
        points = label_sizes(args.seed, "train", SPLITS["train"], args.size, args.size)
        anchors = kmeans_anchors(points, args.anchors)
        print("anchors = " + ",  ".join(f"{w:.0f},{h:.0f}" for w, h in anchors))
        return
    write_dataset(args.out, args.seed)
    print(f"wrote {sum(SPLITS.values())} images to {os.fspath(args.out / 'shapes')}")


if __name__ == "__main__":
    main()
