"""The image lists that `valid`, `map` and `recall` walk, and their ground truth (the images themselves are
decoded ahead of the network by :mod:`~darknet_py.eval.inference`)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

from ..config.data import DataConfig
from ..data.labels import label_path, read_labels, read_list
from ..errors import LabelError
from ..flavor import AB, Flavor


def valid_list(data: DataConfig, default: str = "data/train.list") -> list[str]:
    """Image paths of the `.data` file's `valid` list (``default`` when the key is absent: AB's map and
    recall use `data/train.txt`; training `-map` passes the `train` value)."""
    return read_list(valid_list_file(data, default))


def valid_list_file(data: DataConfig, default: str = "data/train.list") -> Path:
    """The list file :func:`valid_list` reads."""
    if "valid" not in data.lines:
        data = replace(data, valid=default)
    return data.resolve("valid")


def read_truth(image_path: str, classes: int, flavor: Flavor | str = AB) -> np.ndarray:
    """Ground truth `[class, x, y, w, h]` (relative) of an image, from its label file (§1.5 path rule).
    A class id outside the model's classes is an error: Darknet would count it out of bounds."""
    path = label_path(image_path, flavor)
    truth = read_labels(path, flavor)
    bad = truth[:, 0] >= classes
    if bad.any():
        raise LabelError(f"class id {int(truth[bad][0, 0])} is not below classes={classes}", file=path,
                         value=str(int(truth[bad][0, 0])))
    return truth


def read_difficult(paths: Optional[list[str]], index: int, classes: int, flavor: Flavor | str = AB) -> np.ndarray:
    """The "difficult" boxes for image ``index`` (from the parallel `difficult` list), or none."""
    if paths is None:
        return np.zeros((0, 5), np.float32)
    return read_truth(paths[index], classes, flavor)
