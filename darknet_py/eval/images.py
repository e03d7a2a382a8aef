"""The image lists that `valid`, `map` and `recall` walk, and their ground truth.

Like Darknet's loader threads, images are decoded ahead of the network in a background thread; a tqdm bar
on stderr shows progress."""
from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Optional

import numpy as np
from tqdm import tqdm

from ..config.data import DataConfig
from ..data.image import load_image
from ..data.labels import label_path, read_labels, read_list
from ..errors import ImageError, LabelError

PREFETCH = 4   # Darknet's validation commands keep 4 images loading


def valid_list(data: DataConfig, default: str = "data/train.list") -> list[str]:
    """Image paths of the `.data` file's `valid` list (``default`` when the key is absent: AB's map and
    recall use `data/train.txt`; training `-map` passes the `train` value)."""
    if "valid" not in data.lines:
        data = replace(data, valid=default)
    return read_list(data.resolve("valid"))


def iterate_images(paths: list[str], channels: int, desc: str,
                   skip_unreadable: bool = False) -> Iterator[tuple[int, str, np.ndarray]]:
    """(index, path, image (C, H, W) float32) for every path, decoded ahead in a worker thread. With
    ``skip_unreadable`` an image that cannot be read is warned about and left out."""
    progress = tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr, leave=False,
                    disable=None, dynamic_ncols=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(load_image, p, channels) for p in paths[:PREFETCH]]
        for index, path in enumerate(paths):
            try:
                image = pending[index].result()
            except ImageError as exc:
                if not skip_unreadable:
                    raise
                warnings.warn(f"{exc}; left out of the mAP")
                image = None
            if index + PREFETCH < len(paths):
                pending.append(pool.submit(load_image, paths[index + PREFETCH], channels))
            pending[index] = None
            if image is not None:
                yield index, path, image
            progress.update(1)
    progress.close()


def read_truth(image_path: str, classes: int, flavor: str = "ab") -> np.ndarray:
    """Ground truth `[class, x, y, w, h]` (relative) of an image, from its label file (§1.5 path rule).
    A class id outside the model's classes is an error: Darknet would count it out of bounds."""
    path = label_path(image_path, flavor)
    truth = read_labels(path, flavor)
    bad = truth[:, 0] >= classes
    if bad.any():
        raise LabelError(f"class id {int(truth[bad][0, 0])} is not below classes={classes}", file=path,
                         value=str(int(truth[bad][0, 0])))
    return truth


def read_difficult(paths: Optional[list[str]], index: int, classes: int, flavor: str = "ab") -> np.ndarray:
    """The "difficult" boxes for image ``index`` (from the parallel `difficult` list), or none."""
    if paths is None:
        return np.zeros((0, 5), np.float32)
    return read_truth(paths[index], classes, flavor)
