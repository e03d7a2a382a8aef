"""What `darknet detector test` prints and writes about its detections (spec §12.4): AB's per-box lines
(with `-ext_output` pixel boxes), PJ's per-class lines, AB's `-out` JSON and `-save_labels` label lines."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..flavor import Flavor, flavor_of
from ..json_text import json_number, json_string
from .detections import DetectionArrays

HIDDEN_PREFIX = "dont_show"   # AB never shows classes whose name starts with this


def c_round(value: float) -> float:
    """C `round`: halves go away from zero (Python's `round` goes to even); inf and NaN pass through."""
    return math.copysign(float(np.floor(abs(value) + 0.5)), value)


def percent(prob: np.float32) -> str:
    """`%.0f%%` of `prob*100` computed in float32 as Darknet does."""
    return f"{float(np.float32(prob) * np.float32(100)):.0f}%"


def shown(names: tuple[str, ...]) -> np.ndarray:
    return np.array([not name.startswith(HIDDEN_PREFIX) for name in names], dtype=bool)


def best_classes(dets: DetectionArrays, thresh: float, names: tuple[str, ...]) -> np.ndarray:
    """AB `get_actual_detections`: per detection the first class with the highest prob > thresh among the
    shown classes, or -1."""
    if len(dets) == 0:
        return np.zeros(0, dtype=np.int64)
    probs = np.where(shown(names)[None, :dets.probs.shape[1]], dets.probs, -np.inf)
    best = np.argmax(probs, axis=1)
    return np.where(probs[np.arange(len(dets)), best] > thresh, best, -1)


def ext_box(box: np.ndarray, im_w: int, im_h: int) -> str:
    x, y, w, h = (float(v) for v in box)
    left, top = c_round((x - w / 2) * im_w), c_round((y - h / 2) * im_h)
    return (f"\t(left_x: {left:4.0f}   top_y: {top:4.0f}   width: {c_round(w * im_w):4.0f}   "
            f"height: {c_round(h * im_h):4.0f})")


def ab_printed(dets: DetectionArrays, names: tuple[str, ...], thresh: float) -> list[tuple[int, int]]:
    """(detection, class) of each line AB `draw_detections_v3` prints: boxes whose best class is > thresh,
    ordered by left edge; per box the best class first, then its other classes > thresh in class order."""
    best = best_classes(dets, thresh, names)
    selected = np.flatnonzero(best >= 0)
    left = dets.boxes[selected, 0] - dets.boxes[selected, 2] / np.float32(2)
    selected = selected[np.argsort(left, kind="stable")]
    pairs = []
    for i in selected:
        others = [j for j in range(dets.probs.shape[1]) if dets.probs[i, j] > thresh and j != best[i]]
        pairs += [(int(i), int(j)) for j in [int(best[i])] + others]
    return pairs


def pj_printed(dets: DetectionArrays, thresh: float) -> list[tuple[int, int]]:
    """(detection, class) of each line PJ `draw_detections` prints: every pair with prob > thresh, in array
    order."""
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(dets.probs > thresh))]


def ab_detection_lines(dets: DetectionArrays, names: tuple[str, ...], thresh: float, im_w: int, im_h: int,
                       ext_output: bool) -> list[str]:
    """AB's text lines (see :func:`ab_printed`), with `-ext_output` each box in pixels."""
    return [f"{names[j]}: {percent(dets.probs[i, j])}" + (ext_box(dets.boxes[i], im_w, im_h) if ext_output else "")
            for i, j in ab_printed(dets, names, thresh)]


def pj_detection_lines(dets: DetectionArrays, names: tuple[str, ...], thresh: float) -> list[str]:
    """PJ's text lines (see :func:`pj_printed`)."""
    return [f"{names[j]}: {percent(dets.probs[i, j])}" for i, j in pj_printed(dets, thresh)]


def detection_lines(dets: DetectionArrays, names: tuple[str, ...], thresh: float, im_w: int, im_h: int,
                    flavor: Flavor | str, ext_output: bool = False) -> list[str]:
    """What `detector test` prints about one image's detections in the flavour's format."""
    if flavor_of(flavor).pjreddie:
        return pj_detection_lines(dets, names, thresh)
    return ab_detection_lines(dets, names, thresh, im_w, im_h, ext_output)


JSON_THRESH = 0.005   # AB `detection_to_json` lists every class above this (dets are already thresholded)


def detection_to_json(dets: DetectionArrays, names: tuple[str, ...], frame_id: int,
                      filename: Optional[str] = None) -> str:
    """AB's JSON block for one image, byte for byte (`%f` numbers, its spacing and line breaks); a video
    frame has no filename line (AB's demo passes none). Unlike AB's, always valid JSON (json_text.py)."""
    visible = shown(names)
    objects = []
    for i in range(len(dets)):
        x, y, w, h = (json_number(v) for v in dets.boxes[i])
        for j in range(dets.probs.shape[1]):
            if dets.probs[i, j] > JSON_THRESH and visible[j]:
                objects.append(
                    f'  {{"class_id":{j}, "name":{json_string(names[j])}, "relative_coordinates":{{"center_x":{x}, '
                    f'"center_y":{y}, "width":{w}, "height":{h}}}, "confidence":{json_number(dets.probs[i, j])}}}')
    named = f' \n "filename":{json_string(filename)},' if filename is not None else ""
    return (f'{{\n "frame_id":{frame_id},{named} \n "objects": [ \n' + ", \n".join(objects) + "\n ] \n}")


# AB's `-out` (test) and `-json_file_output` (demo) files: the blocks between these.
JSON_OPEN, JSON_SEPARATOR, JSON_CLOSE = "[\n", ", \n", "\n]"


def json_document(blocks: list[str]) -> str:
    """AB's `-out` file: `[`, the image blocks joined by `, `, `]`."""
    return JSON_OPEN + JSON_SEPARATOR.join(blocks) + JSON_CLOSE


def label_lines(dets: DetectionArrays, thresh: float) -> list[str]:
    """AB `-save_labels`: per detection its best class > thresh as `class x y w h` (relative)."""
    lines = []
    for i in range(len(dets)):
        above = np.where(dets.probs[i] > thresh, dets.probs[i], 0)
        if above.max(initial=0) > 0:
            x, y, w, h = (float(v) for v in dets.boxes[i])
            lines.append(f"{int(np.argmax(above))} {x:2.4f} {y:2.4f} {w:2.4f} {h:2.4f}")
    return lines
