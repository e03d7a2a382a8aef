"""Darknet's threshold and NMS applied to an exported model's `boxes` and `scores` (what `detector test`
does after `network_predict`). NMS stays outside the ONNX graph: Darknet's is order-dependent (a stable
sort per class, then a greedy pass), which ONNX's NonMaxSuppression does not reproduce."""
from __future__ import annotations

import numpy as np

from ..eval.boxes import correct_yolo_boxes
from ..eval.detections import Detection, DetectionArrays
from ..eval.nms import apply_nms


def onnx_detections(boxes, scores, net_w: int, net_h: int, im_w: int, im_h: int, thresh: float = .25,
                    nms: float = .45, letter_box: bool = False, nms_kind: str = "default",
                    beta_nms: float = .6, relative: bool = True) -> list[Detection]:
    """One image's detections from an exported model's outputs (``--decode``), in Darknet's order.

    ``boxes`` (K, 4) x1, y1, x2, y2 in network pixels and ``scores`` (K, classes) are one image of the
    `boxes`/`scores` outputs; ``net_w``/``net_h`` the model's input size, ``im_w``/``im_h`` the original
    image's. ``thresh``, ``nms``, ``letter_box`` (whether the input was letterboxed rather than stretched:
    pjreddie's `detector test` letterboxes, AlexeyAB's stretches unless `-letter_box`), ``nms_kind`` and
    ``beta_nms`` (the last [yolo]'s, AlexeyAB) and ``relative`` mean what they mean for
    :func:`darknet_py.eval.detect.detect`. The graph has no separate objectness output, so each detection's
    ``objectness`` is its best class score; boxes and ``probs`` are Darknet's."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32)
    scores = scores.reshape(len(boxes), -1)
    # a candidate whose every score is <= thresh has no effect on Darknet's NMS or output: drop it early
    keep = scores.max(axis=1, initial=0) > thresh
    corners, scores = boxes[keep], scores[keep]
    centre = np.stack([(corners[:, 0] + corners[:, 2]) / 2 / net_w, (corners[:, 1] + corners[:, 3]) / 2 / net_h,
                       (corners[:, 2] - corners[:, 0]) / net_w, (corners[:, 3] - corners[:, 1]) / net_h], axis=1)
    image_boxes = correct_yolo_boxes(centre, im_w, im_h, net_w, net_h, relative, letter_box)
    probs = np.where(scores > thresh, scores, np.float32(0))
    dets = DetectionArrays(image_boxes, scores.max(axis=1, initial=0), probs)
    return apply_nms(dets, nms, nms_kind, beta_nms).to_list()
