"""Non-maximum suppression as Darknet does it (spec §12.3): `do_nms_sort`, `do_nms_obj` and AB's
`diounms_sort` (`nms_kind=greedynms|diounms` in the last [yolo]).

Darknet reorders its detection array in place; these functions return the permuted arrays so that callers
see detections in exactly Darknet's order (it decides line order in output files and record order in mAP).
Sorting is stable, like glibc's `qsort` (a merge sort) that both oracle builds use. Suppression is a loop
over the surviving boxes with the pairwise comparison vectorised."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .boxes import box_diou_matrix, box_iou_matrix
from .detections import DetectionArrays

GREEDY_NMS_BETA = 0.6   # AB's `box_diou` exponent, used by nms_kind=greedynms


def _zero_objectness_last(dets: DetectionArrays) -> tuple[np.ndarray, int]:
    """Darknet's first step: swap every detection with objectness 0 to the end (a swap, so the order of the
    others changes too). Returns the permutation and how many are left in front."""
    order = np.arange(len(dets))
    zero = dets.objectness == 0
    if not zero.any():
        return order, len(order)
    k = len(order) - 1
    i = 0
    while i <= k:
        if zero[order[i]]:
            order[i], order[k] = order[k], order[i]
            k -= 1
        else:
            i += 1
    return order, k + 1


def _sort_desc(values: np.ndarray) -> np.ndarray:
    return np.argsort(-values, kind="stable")


def _suppress(scores: np.ndarray, over: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Greedy pass in the current order (``perm`` maps positions to rows of ``over``, the boolean "overlaps
    by more than the threshold" matrix): each box still non-zero zeroes the score of later boxes it
    overlaps. Only the non-zero boxes take part (a zero one suppresses nothing and stays zero)."""
    candidates = np.flatnonzero(scores != 0)
    if len(candidates) < 2:
        return scores
    rows = perm[candidates]
    pairs = over[np.ix_(rows, rows)]
    alive = np.ones(len(rows), dtype=bool)
    for i in range(len(rows) - 1):
        if alive[i]:
            alive[i + 1:] &= ~pairs[i, i + 1:]
    out = scores.copy()
    out[candidates[~alive]] = 0
    return out


def _per_class_nms(dets: DetectionArrays, overlap_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                   thresh: float) -> DetectionArrays:
    order, total = _zero_objectness_last(dets)
    dets = dets.take(order)
    head, tail = dets.take(np.arange(total)), dets.take(np.arange(total, len(dets)))
    boxes, probs = head.boxes, head.probs.copy()
    over = overlap_fn(boxes, boxes) > thresh
    perm = np.arange(total)
    for k in range(probs.shape[1]):
        step = _sort_desc(probs[:, k])
        probs, perm = probs[step], perm[step]
        probs[:, k] = _suppress(probs[:, k], over, perm)
    head = DetectionArrays(head.boxes[perm], head.objectness[perm], probs)
    return head.concat(tail)


def do_nms_sort(dets: DetectionArrays, thresh: float) -> DetectionArrays:
    """Per class: sort by that class's prob, zero it in later boxes whose IoU with a kept box is > thresh."""
    return _per_class_nms(dets, box_iou_matrix, thresh)


def diounms_sort(dets: DetectionArrays, thresh: float, nms_kind: str, beta_nms: float) -> DetectionArrays:
    """AB `diounms_sort`: like `do_nms_sort` with DIoU (greedynms: exponent 0.6; diounms: `beta_nms`)."""
    beta = GREEDY_NMS_BETA if nms_kind == "greedynms" else beta_nms
    return _per_class_nms(dets, lambda a, b: box_diou_matrix(a, b, beta), thresh)


def do_nms_obj(dets: DetectionArrays, thresh: float) -> DetectionArrays:
    """One pass by objectness; a suppressed box loses its objectness and every class prob (used by recall)."""
    order, total = _zero_objectness_last(dets)
    dets = dets.take(order)
    head, tail = dets.take(np.arange(total)), dets.take(np.arange(total, len(dets)))
    head = head.take(_sort_desc(head.objectness))
    over = box_iou_matrix(head.boxes, head.boxes) > thresh
    objectness = _suppress(head.objectness, over, np.arange(len(head)))
    probs = np.where((objectness == 0)[:, None], np.float32(0), head.probs)
    return DetectionArrays(head.boxes, objectness, probs).concat(tail)


def apply_nms(dets: DetectionArrays, thresh: float, nms_kind: str = "default",
              beta_nms: float = 0.6) -> DetectionArrays:
    """The NMS `detector test/valid/map` run: `do_nms_sort`, or AB's `diounms_sort` for the last [yolo]'s
    `nms_kind`. ``thresh`` <= 0 means no NMS (Darknet skips it when `nms` is 0)."""
    if thresh <= 0 or len(dets) == 0:
        return dets
    if nms_kind in ("greedynms", "diounms"):
        return diounms_sort(dets, thresh, nms_kind, beta_nms)
    return do_nms_sort(dets, thresh)
