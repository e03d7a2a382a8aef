"""`detector map`: AlexeyAB's `validate_detector_map` (spec §12.6), plus pycocotools numbers on the same
detections, reported separately.

Per image: stretch (or `[net] letter_box=1`) to the network size, detections at .005 with NMS .45 (or the
last [yolo]'s nms_kind), records matched against the label file; then one global ranking gives per-class
AP (area under the curve, or 11/101 recall points) and the mean over *all* classes."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..config.data import DataConfig, parse_data
from ..data.labels import label_path, read_list
from ..atomic_write import write_atomically
from ..errors import DataFileError, warn
from ..json_text import json_dumps
from ..outputs import refuse_overwriting_inputs
from .average_precision import ImageMatch, Records, average_precision, match_image, ranked_true_positives
from .coco import CocoResult, coco_bbox, evaluate_coco, ground_truth_dataset
from .detect import at_cfg_size, detector_classes
from .detections import DetectionArrays
from .images import read_difficult, read_truth, valid_list, valid_list_file
from .inference import detect_images

MAP_DETECTION_THRESH = .005
MAP_NMS = .45


@dataclass(frozen=True)
class ClassAP:
    class_id: int
    name: str
    ap: float            # fraction
    tp: int              # at the -thresh confidence
    fp: int
    truth_count: int


def c_float(value: float, spec: str) -> str:
    """printf-style float; NaN prints as glibc prints x86's default 0/0 NaN."""
    return "-nan" if math.isnan(value) else format(value, spec)


@dataclass(frozen=True)
class MapResult:
    mean_ap: float                    # Darknet's mAP (fraction), what the function returns in C
    per_class: tuple[ClassAP, ...]
    detections_count: int
    unique_truth_count: int
    thresh: float
    iou_thresh: float
    points: int
    tp: int
    fp: int
    avg_iou: float                    # Σ IoU(TP) / (TP + FP), as Darknet
    seconds: float
    coco: Optional[CocoResult] = None

    @property
    def fn(self) -> int:
        return self.unique_truth_count - self.tp

    def precision_recall_f1(self) -> tuple[float, float, float]:
        """Darknet's float32 formulas (NaN when there is nothing to divide)."""
        tp, fp, fn = np.float32(self.tp), np.float32(self.fp), np.float32(self.fn)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = tp / (tp + fp)
            r = tp / (tp + fn)
            f1 = np.float32(2) * p * r / (p + r)
        return float(p), float(r), float(f1)

    def report_lines(self) -> list[str]:
        """Darknet's printout after the detection pass (its rank progress omitted)."""
        p, r, f1 = self.precision_recall_f1()
        lines = ["", f" detections_count = {self.detections_count}, unique_truth_count = "
                     f"{self.unique_truth_count}  "]
        lines += [f"class_id = {c.class_id}, name = {c.name}, ap = {c.ap * 100:2.2f}%   \t "
                  f"(TP = {c.tp}, FP = {c.fp}) " for c in self.per_class]
        lines += ["", f" for conf_thresh = {self.thresh:1.2f}, precision = {c_float(p, '1.2f')}, "
                      f"recall = {c_float(r, '1.2f')}, F1-score = {c_float(f1, '1.2f')} ",
                  f" for conf_thresh = {self.thresh:0.2f}, TP = {self.tp}, FP = {self.fp}, FN = {self.fn}, "
                  f"average IoU = {float(np.float32(self.avg_iou) * np.float32(100)):2.2f} % ",
                  "",
                  f" IoU threshold = {self.iou_thresh * 100:2.0f} %, "
                  + (f"used {self.points} Recall-points " if self.points
                     else "used Area-Under-Curve for each unique Recall "),
                  f" mean average precision (mAP@{self.iou_thresh:0.2f}) = {self.mean_ap:f}, or "
                  f"{self.mean_ap * 100:2.2f} % "]
        if self.coco is not None:
            lines.append(self.coco.line())
        return lines


class MapAccumulator:
    """Collects images one by one (``add_image``) and computes the result (``result``)."""

    def __init__(self, classes: int, thresh: float = .25, iou_thresh: float = .5, points: int = 0):
        self.classes, self.thresh, self.iou_thresh, self.points = classes, thresh, iou_thresh, points
        self.records: list[Records] = []
        self.truths: list[np.ndarray] = []
        self.sizes: list[tuple[int, int]] = []
        self.tp = np.zeros(classes, np.int64)
        self.fp = np.zeros(classes, np.int64)
        self.iou_sum = np.float32(0)
        self.truth_count = 0

    def add_image(self, dets: DetectionArrays, truth: np.ndarray, difficult: Optional[np.ndarray] = None,
                  size: tuple[int, int] = (1, 1)) -> ImageMatch:
        """One image's detections (relative boxes, after NMS) and label records; ``size`` = (w, h) in pixels,
        used only for the COCO numbers."""
        difficult = np.zeros((0, 5), np.float32) if difficult is None else difficult
        match = match_image(dets, truth, difficult, self.iou_thresh, self.thresh, self.truth_count,
                            self.classes)
        self.records.append(match.records)
        self.truths.append(truth)
        self.sizes.append(size)
        self.tp += match.tp_per_class
        self.fp += match.fp_per_class
        for iou in match.tp_ious:             # float32 running sum, in Darknet's order
            self.iou_sum = np.float32(self.iou_sum + iou)
        self.truth_count += len(truth)
        return match

    def average_precisions(self) -> np.ndarray:
        records = Records.concat(self.records)
        order, tp = ranked_true_positives(records)
        classes = records.classes[order]
        gt = self.gt_counts()
        return np.array([average_precision(tp[classes == c], int(gt[c]), self.points)
                         for c in range(self.classes)], dtype=np.float64)

    def gt_counts(self) -> np.ndarray:
        if not self.truths:
            return np.zeros(self.classes, np.int64)
        labels = np.concatenate([t[:, 0] for t in self.truths]).astype(np.int64)
        return np.bincount(labels, minlength=self.classes)

    def coco_detections(self) -> list[dict]:
        """The records as COCO results: image id = list index, category id = class id, pixel boxes."""
        out = []
        for image_id, (records, (w, h)) in enumerate(zip(self.records, self.sizes)):
            pixels = records.boxes * np.array([w, h, w, h], np.float32)
            for box, cls, prob in zip(coco_bbox(pixels, w, h), records.classes, records.probs):
                out.append({"image_id": image_id, "category_id": int(cls), "bbox": [float(v) for v in box],
                            "score": float(prob)})
        return out

    def coco(self) -> CocoResult:
        return evaluate_coco(ground_truth_dataset(self.sizes, self.truths, self.classes), self.coco_detections())

    def result(self, names: tuple[str, ...], seconds: float = 0.0, coco: bool = True) -> MapResult:
        aps = self.average_precisions()
        gt = self.gt_counts()
        per_class = tuple(ClassAP(c, names[c], float(aps[c]), int(self.tp[c]), int(self.fp[c]), int(gt[c]))
                          for c in range(self.classes))
        tp, fp = int(self.tp.sum()), int(self.fp.sum())
        avg_iou = float(self.iou_sum / np.float32(tp + fp)) if tp + fp else float(self.iou_sum)
        return MapResult(float(sum(aps.tolist()) / self.classes), per_class,
                         sum(len(r) for r in self.records), self.truth_count, self.thresh, self.iou_thresh,
                         self.points, tp, fp, avg_iou, seconds, self.coco() if coco else None)


def _difficult_list(data: DataConfig, count: int) -> Optional[list[str]]:
    if data.difficult is None:
        return None
    paths = read_list(data.resolve("difficult"))
    if len(paths) < count:
        raise DataFileError(f"the 'difficult' list has {len(paths)} images, the valid list {count}; they "
                            "must be parallel", file=data.file, line=data.lines.get("difficult"))
    return paths


def validate_detector_map(network, data_config: DataConfig | str, thresh: float = .25, iou_thresh: float = .5,
                          points: int = 0, letter_box: bool = False, coco: bool = True,
                          valid_default: str = "data/train.txt", coco_json: Optional[str] = None,
                          batch: int = 1, workers: Optional[int] = 0,
                          skip_unreadable: bool = False, plots_dir: Optional[str] = None) -> MapResult:
    """AB `validate_detector_map` on the `.data` file's `valid` list with a loaded ``network`` (batch 1).

    ``thresh``: confidence for the TP/FP/IoU statistics (`-thresh`); ``iou_thresh``: matching IoU (strict);
    ``points``: 0 = area under curve, 11 or 101 recall points. As in AB, letterboxing follows only
    `[net] letter_box` (``letter_box=True`` without it is ignored, with a warning). The training loop
    passes ``valid_default=<the train list>`` as AB falls back to it during training. ``coco_json``: also
    write the detections pycocotools scored (COCO results format) to this file. ``batch`` images per forward
    and ``workers`` loader processes (None: the default count; 0, the default here, keeps training's `-map`
    from forking) change the speed, not the result (see :mod:`~darknet_py.eval.inference`).
    ``skip_unreadable`` (training's `-map`): an image that cannot be decoded is warned about and left out
    instead of stopping. ``plots_dir``: also draw the PR curves, F1 curve and confusion matrix of these
    matches there (:mod:`.map_plots`)."""
    flavor = network.net_options.flavor
    data = parse_data(data_config, flavor) if isinstance(data_config, (str, Path)) else data_config
    names = data.read_names()
    classes = detector_classes(network)
    if len(names) != classes:
        raise DataFileError(f"has {len(names)} names but the cfg has classes={classes}; detector map needs "
                            "them equal", file=str(data.resolve("names")))
    if letter_box and not network.net_options.letter_box:
        warn("detector map ignores -letter_box (as AlexeyAB's Darknet does); set letter_box=1 in [net] to "
             "letterbox")
    letter = bool(network.net_options.letter_box)
    paths = valid_list(data, valid_default)
    difficult = _difficult_list(data, len(paths))
    if coco_json or plots_dir:
        refuse_overwriting_inputs("detector map", {
            "image": paths, "valid list": valid_list_file(data, valid_default),
            "label file": [label_path(path, flavor) for path in paths],
            "difficult list": data.resolve("difficult") if difficult else None}, {"-coco_out": coco_json},
            _plot_files(plots_dir))
    acc = MapAccumulator(classes, thresh, iou_thresh, points)
    start = time.time()
    with at_cfg_size(network):
        for found in detect_images(network, paths, MAP_DETECTION_THRESH, MAP_NMS, letter, batch=batch,
                                   workers=workers, skip_errors=skip_unreadable, desc="detector map"):
            if found.error is not None:
                warn(f"{found.error}; left out of the mAP")
                continue
            acc.add_image(found.detections, read_truth(found.source, classes, flavor),
                          read_difficult(difficult, found.index, classes, flavor), (found.width, found.height))
    result = acc.result(names, time.time() - start, coco)
    if coco_json:
        write_atomically(coco_json, json_dumps(acc.coco_detections()).encode())
    if plots_dir:
        from .map_plots import write_plots
        write_plots(plots_dir, acc, result)
    return result


def _plot_files(plots_dir) -> dict:
    """`--plots DIR`'s files, for the rule that no output is an input."""
    if not plots_dir:
        return {}
    from .map_plots import PLOT_FILES
    return {"--plots file": (plots_dir, PLOT_FILES)}
