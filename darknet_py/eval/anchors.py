"""`detector calc_anchors` (AB, spec §12.8): k-means with distance 1 − IoU on the label boxes' sizes.

Initial centres are the first K points of a Fisher–Yates shuffle driven by glibc's `rand()` after
`srand(seed)` (AB seeds with the time; pass a seed to make runs repeatable and equal to a Darknet binary
seeded the same way). Arithmetic is float32 like Darknet's `matrix`."""
from __future__ import annotations

import time
from dataclasses import replace
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..config.data import DataConfig
from ..errors import DataFileError, UsageError, warn
from ..flavor import AB, Flavor
from ..data.labels import label_path, read_list
from ..data.rand import GlibcRandom
from ..outputs import refuse_overwriting_inputs
from .images import read_truth

MAX_ITERATIONS = 1000


@dataclass(frozen=True)
class AnchorsResult:
    anchors: np.ndarray          # (K, 2) float32, by area ascending
    avg_iou: float               # percent
    counters_per_class: tuple[int, ...]
    iterations: int
    width: int
    points: np.ndarray           # (N, 2) float32: every label box's (w·width, h·height)
    assignments: np.ndarray      # (N,) its k-means cluster (k-means order, before sorting by area)

    def anchors_text(self) -> str:
        spec = "3.0f" if self.width > 32 else "2.4f"
        return ", ".join(f"{w:{spec}},{h:{spec}}" for w, h in self.anchors.astype(np.float64))

    def counters_text(self) -> str:
        return "counters_per_class = " + ", ".join(str(c) for c in self.counters_per_class)


def one_minus_iou(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(N, K) distances 1 − IoU of origin-centred boxes (float32, Darknet's `dist`)."""
    inter = np.minimum(points[:, None, 0], centers[None, :, 0]) * np.minimum(points[:, None, 1], centers[None, :, 1])
    union = points[:, None, 0] * points[:, None, 1] + centers[None, :, 0] * centers[None, :, 1] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.float32(1) - inter / union).astype(np.float32)


def sample_order(n: int, rng: GlibcRandom) -> np.ndarray:
    """Darknet's `sample(n)`: Fisher–Yates from the end with `rand() % (i + 1)`."""
    s = list(range(n))
    for i in range(n - 1, -1, -1):
        j = rng.rand() % (i + 1)
        s[i], s[j] = s[j], s[i]
    return np.array(s)


def _maximization(points: np.ndarray, assignments: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Mean of each cluster's members (float32 running sums); a zero coordinate (e.g. an empty cluster)
    keeps the old value."""
    sums = np.zeros_like(centers)
    for axis in range(2):
        np.add.at(sums[:, axis], assignments, points[:, axis])
    counts = np.bincount(assignments, minlength=len(centers)).astype(np.float32)
    means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], sums).astype(np.float32)
    return np.where(means == 0, centers, means)


def do_kmeans(points: np.ndarray, k: int, rng: GlibcRandom) -> tuple[np.ndarray, np.ndarray, int]:
    """(centers, assignments, iterations) as AB's `do_kmeans`."""
    centers = points[sample_order(len(points), rng)[:k]].copy()
    assignments = np.zeros(len(points), np.int64)
    if k == 1:
        centers = _maximization(points, assignments, centers)
    iteration = 0
    while iteration < MAX_ITERATIONS:
        closest = np.argmin(one_minus_iou(points, centers), axis=1)   # ties: lowest index
        converged = bool(np.array_equal(closest, assignments))
        assignments = closest
        if converged:
            break
        centers = _maximization(points, assignments, centers)
        iteration += 1
    return centers, assignments, iteration


def calc_anchors(data: DataConfig, num_of_clusters: int, width: int, height: int,
                 seed: Optional[int] = None, flavor: Flavor | str = AB,
                 written: Sequence[str] = ()) -> AnchorsResult:
    """Cluster the (w·width, h·height) sizes of every label of the `train` list. ``written``: the files the
    command will write, refused (outputs.py) when one is the .data file, the list, an image or a label file."""
    if width <= 0 or height <= 0:
        raise UsageError("calc_anchors needs -width and -height (the network input size)")
    if "train" not in data.lines:                 # calc_anchors' own default in AB
        data = replace(data, train="data/train.list")
    paths = read_list(data.resolve("train"))
    refuse_overwriting_inputs("detector calc_anchors", {
        "data file": data.file, "train list": data.resolve("train"), "image": paths,
        "label file": [label_path(path, flavor) for path in paths]}, {"output": written})
    classes = data.classes if "classes" in data.lines else 1
    sizes, class_ids = [], []
    for path in paths:
        truth = read_truth(path, 1 << 30, flavor)
        _warn_out_of_range(truth, label_path(path, flavor))
        sizes.append(truth[:, 3:5] * np.array([width, height], np.float32))
        class_ids.append(truth[:, 0].astype(np.int64))
    points = np.concatenate(sizes).astype(np.float32) if sizes else np.zeros((0, 2), np.float32)
    if not len(points):
        raise DataFileError("no label boxes found for the images of the train list", file=str(data.resolve("train")),
                            hint=f"darknet_py detector check {data.file} shows why")
    if num_of_clusters < 1 or num_of_clusters > len(points):
        raise UsageError(f"-num_of_clusters must be between 1 and the number of label boxes ({len(points)}), "
                         f"got {num_of_clusters}")
    labels = np.concatenate(class_ids)
    counters = np.bincount(labels, minlength=max(classes, int(labels.max()) + 1))
    rng = GlibcRandom(int(time.time()) if seed is None else seed)
    centers, assignments, iterations = do_kmeans(points, num_of_clusters, rng)
    centers = centers[np.argsort(centers[:, 0] * centers[:, 1], kind="stable")]
    best = np.float32(1) - one_minus_iou(points, centers).min(axis=1)
    iou_sum = np.float32(0)
    for value in best[(best >= 0) & (best <= 1)]:
        iou_sum = np.float32(iou_sum + value)
    avg_iou = float(np.float32(100) * iou_sum / np.float32(len(points)))
    return AnchorsResult(centers, avg_iou, tuple(int(c) for c in counters), iterations, width, points,
                         assignments)


def _warn_out_of_range(truth: np.ndarray, path: str) -> None:
    coords = truth[:, 1:5]
    bad = np.flatnonzero(((coords <= 0) | (coords > 1)).any(axis=1))
    for j in bad[:5]:
        x, y, w, h = truth[j, 1:5]
        warn(f"wrong label {j}: x = {x:f}, y = {y:f}, width = {w:f}, height = {h:f} (expected 0 < value <= 1)",
             path)
