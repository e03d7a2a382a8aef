"""`calc_anchors -show`: AlexeyAB's `cloud.png` (`show_acnhors` in image_opencv.cpp): a 700 x 700 picture,
each label box a dot at its (width, height) in network pixels scaled to the picture, coloured by its k-means
cluster, and each anchor a white rectangle from the origin to its (width, height)."""
from __future__ import annotations

import cv2
import numpy as np

from .anchors import AnchorsResult

CLOUD_SIZE = 700


def cluster_color(cluster: int) -> tuple[int, int, int]:
    """AB's colour of a cluster, as BGR."""
    red, green, blue = (cluster * 123 + 55) % 255, (cluster * 321 + 33) % 255, (cluster * 11 + 99) % 255
    return blue, green, red


def draw_cloud(result: AnchorsResult, width: int, height: int) -> np.ndarray:
    image = np.zeros((CLOUD_SIZE, CLOUD_SIZE, 3), np.uint8)
    for (w, h), cluster in zip(result.points, result.assignments):
        point = (int(w * CLOUD_SIZE / width), int(h * CLOUD_SIZE / height))   # C's float -> int truncation
        cv2.circle(image, point, 1, cluster_color(int(cluster)), -1)
    for w, h in result.anchors:
        corner = (int(w * CLOUD_SIZE / width), int(h * CLOUD_SIZE / height))
        cv2.rectangle(image, (0, 0), corner, (255, 255, 255), 1)
    return image
