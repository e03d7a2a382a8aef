"""AlexeyAB's `-show_imgs`: every augmented training picture saved as `aug_*.jpg` with its truth boxes.

AlexeyAB's loader (data.c, `load_data_detection`) draws each truth box on the network-sized picture and saves
it as `aug_<index>_<slot>_<image name>_<random>.jpg` in the working directory; with `-dont_show` it only saves.
darknet_py writes the same pictures, named `aug_<iteration>_<slot>_<image name>.jpg` so that a seeded run
writes the same files again, into the directory it is given."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..eval.draw import bgr_picture

BOX_COLOR = (50, 100, 150)   # BGR of AlexeyAB's draw_box_width(..., r=1 -> 150, g=100, b=50 on 0..255)


def save_augmented_batch(images: np.ndarray, truth: np.ndarray, paths: list, iteration: int,
                         directory: Path) -> list[Path]:
    """Write each picture of a batch (images (B, C, H, W) RGB in [0, 1], truth (B, max, 5+) Darknet rows) with
    its boxes; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for slot, (image, rows, used) in enumerate(zip(images, truth, paths)):
        picture = _picture_with_boxes(image, rows)
        name = Path(used[0] if isinstance(used, (list, tuple)) else used).stem
        target = directory / f"aug_{iteration}_{slot}_{name}.jpg"
        if not cv2.imwrite(str(target), picture):
            raise OSError(f"cannot write {target}")
        written.append(target)
    return written


def _picture_with_boxes(image: np.ndarray, rows: np.ndarray) -> np.ndarray:
    _, h, w = image.shape
    canvas = bgr_picture(image)
    for x, y, bw, bh in rows[:, :4]:
        if not x:       # AlexeyAB stops at the first empty truth row
            break
        left, right = int((x - bw / 2) * w), int((x + bw / 2) * w)
        top, bottom = int((y - bh / 2) * h), int((y + bh / 2) * h)
        cv2.rectangle(canvas, (left, top), (right, bottom), BOX_COLOR, 1)
    return canvas
