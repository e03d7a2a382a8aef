"""Darknet's `detection` records: one box, its objectness and per-class probabilities.

:class:`DetectionArrays` holds a whole image's detections as parallel float32 arrays (what the NMS and
evaluation code work on); :class:`Detection` is the frozen per-box view handed to users."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One detection; x, y (centre), w, h in the units asked for (relative to the image by default).
    ``probs[c]`` = objectness · class probability, 0 unless above the detection threshold or after NMS."""
    x: float
    y: float
    w: float
    h: float
    objectness: float
    probs: tuple[float, ...]

    @property
    def best_class(self) -> int:
        """Index of the highest class probability (the first on ties, like Darknet's `max_index`)."""
        return int(np.argmax(self.probs))


@dataclass(frozen=True, eq=False)
class DetectionArrays:
    boxes: np.ndarray        # (N, 4) float32 x, y, w, h
    objectness: np.ndarray   # (N,) float32
    probs: np.ndarray        # (N, classes) float32

    def __len__(self) -> int:
        return len(self.objectness)

    @staticmethod
    def empty(classes: int) -> "DetectionArrays":
        return DetectionArrays(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                               np.zeros((0, classes), np.float32))

    def take(self, index: np.ndarray) -> "DetectionArrays":
        return DetectionArrays(self.boxes[index], self.objectness[index], self.probs[index])

    def concat(self, other: "DetectionArrays") -> "DetectionArrays":
        return DetectionArrays(np.concatenate([self.boxes, other.boxes]),
                               np.concatenate([self.objectness, other.objectness]),
                               np.concatenate([self.probs, other.probs]))

    def to_list(self) -> list[Detection]:
        return [Detection(*map(float, box), float(obj), tuple(float(p) for p in probs))
                for box, obj, probs in zip(self.boxes, self.objectness, self.probs)]
