"""The high-level Python API: ``Detector(cfg, weights, ...).predict(x)`` gives what `detector test` prints.

One :class:`Detection` per line `detector test` prints for an image (a box can print several classes), in
the same order and with the same probability, its box as corners in pixels of the original image."""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from .config.data import parse_data, read_names
from .data.image import check_bgr_image
from .device import resolve_device
from .eval.detect import check_class_names, detector_classes, open_network, uses_letter_box
from .eval.detections import DetectionArrays
from .eval.inference import default_batch, detect_images
from .eval.printout import ab_printed, pj_printed
from .flavor import AB, Flavor, flavor_of

Image = Union[str, os.PathLike, np.ndarray]


@dataclass(frozen=True)
class Detection:
    """One detected object: class, its probability (objectness · class probability) and the box corners in
    pixels of the original image (not clipped to it, as `-ext_output` prints them)."""
    class_id: int
    name: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float


class Detector:
    """A network ready to detect, with `detector test`'s settings.

    ``names``: a `.names` file or a sequence of class names; or ``data``: a `.data` file whose `names=` is
    used; neither: the class ids as names. ``flavor``: the fork, ab or pj, by name or as a Flavor (order of
    the detections and the letterbox rule); ``device``: "cpu", "cuda" or "cuda:N"; ``thresh``/``nms``: detection and NMS
    thresholds; ``letterbox``: None follows Darknet (PJ letterboxes, AB only with `[net] letter_box=1`),
    True/False forces it; ``batch``: images per forward when predicting a list (default per device);
    ``workers``: processes decoding a list's images ahead of the network (0: in this process)."""

    def __init__(self, cfg: str, weights: Optional[str], names: Union[str, os.PathLike, Sequence[str], None] = None,
                 data: Optional[str] = None, flavor: Flavor | str = AB, device: str = "cpu", thresh: float = .25,
                 nms: float = .45, letterbox: Optional[bool] = None, batch: Optional[int] = None,
                 workers: int = 0):
        flavor = flavor_of(flavor)
        device = resolve_device(device)
        self.network = open_network(cfg, weights, flavor, device)
        self.flavor, self.thresh, self.nms = flavor, float(thresh), float(nms)
        self.names = self._class_names(names, data)
        self.letter_box = uses_letter_box(self.network, letterbox, "test") if letterbox is None else bool(letterbox)
        self.batch, self.workers = batch or default_batch(device, self.network), workers

    def _class_names(self, names, data) -> tuple[str, ...]:
        if names is not None and data is not None:
            raise ValueError("give names or data, not both")
        if data is not None:
            config = parse_data(data, self.flavor)
            return check_class_names(config.read_names(), str(config.resolve("names")), self.network)
        if isinstance(names, (str, os.PathLike)):
            return check_class_names(read_names(names), str(names), self.network)
        if names is not None:
            return check_class_names(tuple(str(n) for n in names), "names", self.network)
        return tuple(str(c) for c in range(detector_classes(self.network)))

    def predict(self, x: Union[Image, Sequence[Image]]) -> Union[list[Detection], list[list[Detection]]]:
        """Detections of one image (a path, or a BGR uint8 (H, W, 3) array as `cv2.imread` returns), or a
        list of detection lists for a list (any iterable) of images. Anything else (None, a number, ...) raises
        TypeError saying what is accepted, a wrong array layout ValueError; an unreadable file raises
        darknet_py.errors.ImageError naming it. A path gives what its `cv2.imread` array gives."""
        single = isinstance(x, (str, os.PathLike, np.ndarray))
        if not single and not isinstance(x, Iterable):
            check_bgr_image(x)           # None (cv2.imread's answer for an unreadable file), a number...: TypeError
        sources = [x] if single else list(x)
        found = [self._detections(item.detections, item.width, item.height)
                 for item in detect_images(self.network, sources, self.thresh, self.nms, self.letter_box,
                                           batch=self.batch, workers=self.workers)]
        return found[0] if single else found

    def _detections(self, dets: DetectionArrays, im_w: int, im_h: int) -> list[Detection]:
        pairs = ab_printed(dets, self.names, self.thresh) if self.flavor.alexeyab else pj_printed(dets, self.thresh)
        out = []
        for i, j in pairs:
            x, y, w, h = (float(v) for v in dets.boxes[i])
            out.append(Detection(j, self.names[j], float(dets.probs[i, j]), (x - w / 2) * im_w, (y - h / 2) * im_h,
                                 (x + w / 2) * im_w, (y + h / 2) * im_h))
        return out
