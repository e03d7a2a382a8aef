"""Boxes in Darknet's centre form (x, y, w, h): IoU variants (spec §9.1, §12.3) and `correct_yolo_boxes`
(§12.2).

Arrays are float32 like Darknet's `box` struct, so strict `IoU > thresh` comparisons fall on the same side
as in C for all but the closest ties."""
from __future__ import annotations

import numpy as np

from ..data.image import letterbox_size


def _edges(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y, w, h = (boxes[..., k] for k in range(4))
    half = np.float32(2)
    return x - w / half, y - h / half, x + w / half, y + h / half


def _pairs(a: np.ndarray, b: np.ndarray):
    """``a`` as (N, 1, 4) and ``b`` as (1, M, 4) float32, with their edges (left, top, right, bottom)."""
    a = np.asarray(a, dtype=np.float32)[:, None, :]
    b = np.asarray(b, dtype=np.float32)[None, :, :]
    return a, b, _edges(a), _edges(b)


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4) -> (N, M), AB's `box_iou`: 0 when the
    intersection or the union is 0 (also avoids PJ's division by zero, which only matters for empty boxes)."""
    a, b, (al, at, ar, ab_), (bl, bt, br, bb) = _pairs(a, b)
    with np.errstate(all="ignore"):        # an untrained net's inf/NaN boxes give NaN: compares False, as in C
        ow = np.minimum(ar, br) - np.maximum(al, bl)
        oh = np.minimum(ab_, bb) - np.maximum(at, bt)
        inter = np.where((ow < 0) | (oh < 0), np.float32(0), ow * oh)
        union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
        iou = inter / union
    return np.where((inter == 0) | (union == 0), np.float32(0), iou).astype(np.float32)


def box_diou_matrix(a: np.ndarray, b: np.ndarray, beta: float) -> np.ndarray:
    """AB's DIoU for NMS: IoU − (d²/c²)^beta, with d the centre distance and c the diagonal of the enclosing
    box; plain IoU when c = 0. ``beta`` = 0.6 is `box_diou` (greedynms), `beta_nms` is `box_diounms`."""
    iou = box_iou_matrix(a, b)
    a, b, (al, at, ar, ab_), (bl, bt, br, bb) = _pairs(a, b)
    with np.errstate(all="ignore"):
        cw = np.maximum(ar, br) - np.minimum(al, bl)
        ch = np.maximum(ab_, bb) - np.minimum(at, bt)
        c = cw * cw + ch * ch
        d = (a[..., 0] - b[..., 0]) ** 2 + (a[..., 1] - b[..., 1]) ** 2
        term = np.power(d / c, np.float32(beta), dtype=np.float32)
    return np.where(c == 0, iou, iou - term).astype(np.float32)


def box_iou(a, b) -> float:
    """IoU of two single boxes (x, y, w, h)."""
    return float(box_iou_matrix(np.reshape(a, (1, 4)), np.reshape(b, (1, 4)))[0, 0])


def correct_yolo_boxes(boxes: np.ndarray, im_w: int, im_h: int, net_w: int, net_h: int,
                       relative: bool, letter_box: bool) -> np.ndarray:
    """Map boxes relative to the network input back to the original image (§12.2).

    With ``letter_box`` the padding and scale of Darknet's letterbox are undone. Darknet undoes a padding of
    ``(net_w − new_w)/2`` (a real division) although `letterbox_image` pasted at the integer-divided offset;
    that half-pixel disagreement is Darknet's and is kept. ``relative=False`` gives pixel units."""
    boxes = np.asarray(boxes, dtype=np.float64)
    new_w, new_h = letterbox_size(im_w, im_h, net_w, net_h) if letter_box else (net_w, net_h)
    ratio_w, ratio_h = np.float32(new_w / net_w), np.float32(new_h / net_h)
    out = np.empty_like(boxes)
    out[:, 0] = (boxes[:, 0] - (net_w - new_w) / 2.0 / net_w) / ratio_w
    out[:, 1] = (boxes[:, 1] - (net_h - new_h) / 2.0 / net_h) / ratio_h
    out[:, 2] = boxes[:, 2] / ratio_w
    out[:, 3] = boxes[:, 3] / ratio_h
    if not relative:
        out *= np.array([im_w, im_h, im_w, im_h], dtype=np.float64)
    return out.astype(np.float32)
