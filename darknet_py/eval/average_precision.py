"""Darknet's detection records and average precision (spec §12.6 steps 3 and 5–8).

A *record* is one (detection, class) pair with prob > 0. Matching is VOC-style: each record takes the
ground-truth box of its class with the highest IoU > `iou_thresh` (strict), even one already taken by
another record; after the global sort by prob, the first record of a truth is the TP, later ones are FPs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import box_iou_matrix
from .detections import DetectionArrays


@dataclass(frozen=True, eq=False)
class Records:
    """Records in Darknet's order (detection-major, then class)."""
    probs: np.ndarray       # (R,) float32
    classes: np.ndarray     # (R,) int64
    truth_ids: np.ndarray   # (R,) int64 global truth index, -1 when unmatched
    boxes: np.ndarray       # (R, 4) float32 the detection's box
    ious: np.ndarray        # (R,) float32 IoU with the matched truth (0 when unmatched)

    def __len__(self) -> int:
        return len(self.probs)

    def take(self, index) -> "Records":
        return Records(self.probs[index], self.classes[index], self.truth_ids[index], self.boxes[index],
                       self.ious[index])

    @staticmethod
    def concat(parts: list["Records"]) -> "Records":
        if not parts:
            return Records(np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                           np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        return Records(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("probs", "classes", "truth_ids", "boxes", "ious")))


@dataclass(frozen=True, eq=False)
class ImageMatch:
    """What one image adds: the records kept for AP and the threshold statistics (TP/FP at `-thresh`)."""
    records: Records
    tp_per_class: np.ndarray     # (classes,) int
    fp_per_class: np.ndarray     # (classes,) int
    tp_ious: np.ndarray          # IoUs of the threshold TPs, in record order (Darknet sums them in float)


def _best_truth(ious: np.ndarray, truth_classes: np.ndarray, record_classes: np.ndarray,
                iou_thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Per record: index of the same-class truth with the highest IoU > iou_thresh (first on ties), or -1;
    and that IoU (0 when none)."""
    if ious.shape[1] == 0:
        return np.full(len(ious), -1, np.int64), np.zeros(len(ious), np.float32)
    ok = (truth_classes[None, :] == record_classes[:, None]) & (ious > iou_thresh)
    masked = np.where(ok, ious, np.float32(-1))
    best = np.argmax(masked, axis=1)
    found = ok.any(axis=1)
    return np.where(found, best, -1), np.where(found, masked[np.arange(len(best)), best], np.float32(0))


def match_image(dets: DetectionArrays, truth: np.ndarray, difficult: np.ndarray, iou_thresh: float,
                thresh_calc_avg_iou: float, truth_offset: int, classes: int) -> ImageMatch:
    """Records of one image (§12.6 step 3). ``truth``/``difficult``: (T, 5) `[class, x, y, w, h]` relative
    boxes; ``truth_offset``: how many truths earlier images had (truth ids are global)."""
    det_index, record_classes = np.nonzero(dets.probs > 0)
    probs = dets.probs[det_index, record_classes].astype(np.float32)
    boxes = dets.boxes[det_index]
    ious = box_iou_matrix(dets.boxes, truth[:, 1:5])[det_index]
    best, best_iou = _best_truth(ious, truth[:, 0].astype(np.int64), record_classes, iou_thresh)
    matched = best >= 0
    truth_ids = np.where(matched, best + truth_offset, -1)
    removed = np.zeros(len(probs), dtype=bool)
    if len(difficult):
        dif_ious = box_iou_matrix(dets.boxes, difficult[:, 1:5])[det_index]
        dif_best, _ = _best_truth(dif_ious, difficult[:, 0].astype(np.int64), record_classes, iou_thresh)
        removed = ~matched & (dif_best >= 0)   # matches a "difficult" object: neither TP nor FP in AP
    first = np.zeros(len(probs), dtype=bool)
    if matched.any():
        where = np.flatnonzero(matched)
        _, first_pos = np.unique(truth_ids[where], return_index=True)
        first[where[first_pos]] = True
    above = probs > thresh_calc_avg_iou
    # Darknet quirk kept: a record dropped as difficult still counts as FP at the threshold.
    tp = above & matched & first
    fp = above & ~(matched & first)
    keep = ~removed
    return ImageMatch(
        Records(probs[keep], record_classes[keep], truth_ids[keep], boxes[keep], best_iou[keep]),
        np.bincount(record_classes[tp], minlength=classes), np.bincount(record_classes[fp], minlength=classes),
        best_iou[tp])


def ranked_true_positives(records: Records) -> tuple[np.ndarray, np.ndarray]:
    """Sort records by prob (stable, descending) and flag as TP the first record of each truth (§12.6 6).
    Returns (order, tp flags in sorted order)."""
    order = np.argsort(-records.probs, kind="stable")
    truth_ids = records.truth_ids[order]
    tp = np.zeros(len(order), dtype=bool)
    where = np.flatnonzero(truth_ids >= 0)
    if len(where):
        _, first_pos = np.unique(truth_ids[where], return_index=True)
        tp[where[first_pos]] = True
    return order, tp


def precision_recall(tp: np.ndarray, gt_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall (float64) after each of one class's ranked records."""
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(~tp)
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
    recall = tp_cum / gt_count if gt_count > 0 else np.zeros(len(tp))
    return precision, recall


def average_precision(tp: np.ndarray, gt_count: int, points: int = 0) -> float:
    """AP of one class from its records' TP flags in rank order (§12.6 step 7).

    ``points == 0``: area under the interpolated curve, Σ ΔR_k · max_{m≥k} P_m, summed from the last rank
    down as Darknet does. ``points == N``: mean over r_k = k/(N−1) of the best precision at recall ≥ r_k."""
    if len(tp) == 0:
        return 0.0
    precision, recall = precision_recall(np.asarray(tp, dtype=bool), gt_count)
    best_after = np.maximum.accumulate(precision[::-1])[::-1]
    if points == 0:
        delta = np.diff(recall, prepend=0.0)
        return float(np.cumsum((delta * best_after)[::-1])[-1])
    targets = np.arange(points) * 1.0 / (points - 1)
    start = np.searchsorted(recall, targets, side="left")   # recall is non-decreasing
    reached = start < len(recall)
    values = np.where(reached, best_after[np.minimum(start, len(recall) - 1)], 0.0)
    return float(np.cumsum(values)[-1] / points)
