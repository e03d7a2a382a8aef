"""`detector valid`: detections of the `valid` list written in the `.data` file's `eval` format (spec §12.5).

Boxes are in pixels of the original image. Per fork: PJ letterboxes and detects at .005 with NMS .45; AB
stretches (letterbox with `[net] letter_box=1`) and detects at .001 with NMS .6 (or the last [yolo]'s
nms_kind). Lines come in Darknet's order: image by image, detections in post-NMS order, then classes."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..config.data import DataConfig
from ..atomic_write import write_atomically
from ..flavor import Flavor, flavor_of
from ..json_text import json_number
from ..outputs import refuse_overwriting_inputs
from .coco import COCO_IDS, coco_bbox
from .detect import detector_classes, uses_letter_box
from .detections import DetectionArrays
from .images import valid_list, valid_list_file
from .inference import detect_images

# (detection threshold, NMS threshold) of `validate_detector` per fork
DEFAULT_PREFIX = {"voc": "comp4_det_test_", "coco": "coco_results", "imagenet": "imagenet-detection"}
_ATOI = re.compile(r"\s*([+-]?\d+)")


def c_atoi(text: str) -> int:
    """C `atoi`: optional spaces and sign, then digits up to the first non-digit; 0 when there are none."""
    match = _ATOI.match(text)
    return int(match.group(1)) if match else 0


def basecfg(path: str) -> str:
    """Darknet's `basecfg`: the file name without directories, cut at its first '.'."""
    name = path.rsplit("/", 1)[-1]
    if "/" not in path:
        name = name.rsplit("\\", 1)[-1]
    return name.split(".", 1)[0]


def coco_image_id(path: str, flavor: Flavor | str) -> int:
    """PJ: the number after the last '_' (else after the last '/'), for `COCO_val2014_000000000042.jpg`;
    AB: `atoi` of the base name, for `000000000042.jpg`."""
    if flavor_of(flavor).pjreddie:
        cut = path.rfind("_")
        return c_atoi(path[(cut if cut >= 0 else path.rfind("/")) + 1:])
    return c_atoi(basecfg(path))


def _corners(dets: DetectionArrays, offset: float) -> tuple[np.ndarray, ...]:
    """xmin, ymin, xmax, ymax (+offset) of pixel boxes, computed in double and stored as float, as in C."""
    b = dets.boxes.astype(np.float64)
    return tuple(v.astype(np.float32) for v in (b[:, 0] - b[:, 2] / 2. + offset, b[:, 1] - b[:, 3] / 2. + offset,
                                                b[:, 0] + b[:, 2] / 2. + offset, b[:, 1] + b[:, 3] / 2. + offset))


def voc_lines(image_id: str, dets: DetectionArrays, im_w: int, im_h: int) -> dict[int, list[str]]:
    """Per class: `<id> <prob> <xmin> <ymin> <xmax> <ymax>` with 1-based corners clamped to [1, w/h]."""
    xmin, ymin, xmax, ymax = _corners(dets, 1.0)
    xmin, ymin = np.maximum(xmin, np.float32(1)), np.maximum(ymin, np.float32(1))
    xmax, ymax = np.minimum(xmax, np.float32(im_w)), np.minimum(ymax, np.float32(im_h))
    out: dict[int, list[str]] = {}
    for i, j in zip(*np.nonzero(dets.probs != 0)):
        out.setdefault(int(j), []).append(f"{image_id} {float(dets.probs[i, j]):f} {float(xmin[i]):f} "
                                          f"{float(ymin[i]):f} {float(xmax[i]):f} {float(ymax[i]):f}\n")
    return out


def coco_lines(image_id: int, dets: DetectionArrays, im_w: int, im_h: int, flavor: Flavor | str) -> list[str]:
    """`{"image_id":…, "category_id":coco_ids[class], "bbox":[x, y, w, h], "score":…},` lines (0-based,
    clipped); AB writes classes with prob > 0, PJ with prob != 0. A non-finite number is `null`
    (json_text.py), where Darknet writes `nan`."""
    boxes = coco_bbox(dets.boxes, im_w, im_h)
    chosen = dets.probs > 0 if flavor_of(flavor).alexeyab else dets.probs != 0
    lines = []
    for i, j in zip(*np.nonzero(chosen)):
        category = COCO_IDS[j] if j < len(COCO_IDS) else int(j)
        x, y, w, h = (json_number(v) for v in boxes[i])
        lines.append(f'{{"image_id":{image_id}, "category_id":{category}, "bbox":[{x}, {y}, {w}, {h}], '
                     f'"score":{json_number(dets.probs[i, j])}}},\n')
    return lines


def imagenet_lines(index: int, dets: DetectionArrays, im_w: int, im_h: int) -> list[str]:
    """`<image index (1-based)> <class+1> <prob> <xmin> <ymin> <xmax> <ymax>` (0-based, clipped)."""
    xmin, ymin, xmax, ymax = _corners(dets, 0.0)
    xmin, ymin = np.maximum(xmin, np.float32(0)), np.maximum(ymin, np.float32(0))
    xmax, ymax = np.minimum(xmax, np.float32(im_w)), np.minimum(ymax, np.float32(im_h))
    return [f"{index} {j + 1} {float(dets.probs[i, j]):f} {float(xmin[i]):f} {float(ymin[i]):f} "
            f"{float(xmax[i]):f} {float(ymax[i]):f}\n" for i, j in zip(*np.nonzero(dets.probs != 0))]


def coco_document(lines: list[str]) -> str:
    """Darknet writes `[`, the lines, then overwrites the last `,\\n` with `\\n]\\n`. (With no detection at
    all Darknet's file would be `\\n]\\n`; darknet_py writes a valid empty array instead.)"""
    if not lines:
        return "[\n]\n"
    return "[\n" + "".join(lines)[:-2] + "\n]\n"


@dataclass(frozen=True)
class ValidOutput:
    files: tuple[str, ...]
    images: int
    seconds: float


def validate_detector(network, data: DataConfig, names: tuple[str, ...], outfile: Optional[str] = None,
                      flavor: Flavor | str | None = None, batch: int = 1, workers: Optional[int] = 0) -> ValidOutput:
    """Run `detector valid` and write its result file(s) under the `.data` file's `results` directory
    (``batch``, ``workers``: speed only, see :mod:`~darknet_py.eval.inference`)."""
    flavor = flavor_of(flavor or network.net_options.flavor)
    thresh, nms = flavor.valid_thresh, flavor.valid_nms
    letter = uses_letter_box(network, False, "valid")
    classes = detector_classes(network)
    kind = data.eval
    files = result_files(data, names[:classes], outfile)
    per_class: dict[int, list[str]] = {c: [] for c in range(classes)}
    lines: list[str] = []
    start = time.time()
    paths = valid_list(data)
    refuse_overwriting_inputs("detector valid", {"image": paths, "valid list": valid_list_file(data)},
                              {"result file": files})
    Path(data.results).mkdir(parents=True, exist_ok=True)   # Darknet would crash on a missing directory
    for found in detect_images(network, paths, thresh, nms, letter, batch=batch, relative=False, workers=workers,
                               desc="detector valid"):
        index, path, dets, im_w, im_h = found.index, found.source, found.detections, found.width, found.height
        if kind == "coco":
            lines += coco_lines(coco_image_id(path, flavor), dets, im_w, im_h, flavor)
        elif kind == "imagenet":
            lines += imagenet_lines(index + 1, dets, im_w, im_h)
        else:
            for c, found in voc_lines(basecfg(path), dets, im_w, im_h).items():
                per_class[c] += found
    if kind == "voc":
        written = [_write(files[c], "".join(per_class[c])) for c in range(classes)]
    else:
        written = [_write(files[0], coco_document(lines) if kind == "coco" else "".join(lines))]
    return ValidOutput(tuple(written), len(paths), time.time() - start)


def result_files(data: DataConfig, names: tuple[str, ...], outfile: Optional[str] = None) -> list[Path]:
    """The files `valid` writes in the `results` directory: per class `<prefix><name>.txt` (voc), or one
    `<prefix>.json` (coco) or `<prefix>.txt` (imagenet)."""
    prefix, results = outfile or DEFAULT_PREFIX[data.eval], Path(data.results)
    if data.eval == "voc":
        return [results / f"{prefix}{name}.txt" for name in names]
    return [results / f"{prefix}{'.json' if data.eval == 'coco' else '.txt'}"]


def _write(path: Path, text: str) -> str:
    write_atomically(path, text.encode())
    return str(path)
