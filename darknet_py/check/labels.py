"""Label files line by line (spec §1.5) and the boxes Darknet's `fill_truth_detection` would drop (§11.2).

Darknet reads a label file as a stream of `%d %f %f %f %f` records and silently stops at the first one that
does not parse, so one bad line loses every box after it. Each problem is reported with its file and line.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..config.reader import decode_text
from ..data.labels import BoxTransform, correct_boxes
from ..errors import LabelError
from ..flavor import Flavor
from .report import ERROR, WARNING, CheckReport

_INT = re.compile(r"[+-]?\d+")
# What C's strtod accepts in a label (decimal, exponent, inf/nan); Python's float() also takes '1_0'.
_FLOAT = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)", re.IGNORECASE)
_DECIMAL = r"\s+([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
_RECORD = re.compile(r"\s*([+-]?\d+)" + _DECIMAL * 4 + r"\s*")
_FIELDS = "'class x_center y_center width height'"


@dataclass
class BoxTable:
    """Every in-range box of the data set, column-wise, with the label file and line it came from."""
    files: list[str] = field(default_factory=list)
    rows: list[tuple[int, int, int, float, float, float, float]] = field(default_factory=list)

    def add_file(self, path: str) -> int:
        self.files.append(path)
        return len(self.files) - 1

    def columns(self) -> tuple[np.ndarray, ...]:
        """(file index, line, class) as int64 and (x, y, w, h) as float32 arrays."""
        table = np.asarray(self.rows, dtype=np.float64).reshape(-1, 7)
        ints = tuple(table[:, k].astype(np.int64) for k in range(3))
        return ints + tuple(table[:, k].astype(np.float32) for k in range(3, 7))


def read_label_bytes(path: str) -> bytes | OSError:
    """The file's bytes, or the error reading it (returned, so a thread pool can read ahead)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        return exc


def check_label_file(path: str, raw: bytes | OSError, classes: int, max_boxes: int, table: BoxTable,
                     report: CheckReport) -> int:
    """Check one label file's lines (``raw``: from :func:`read_label_bytes`); its in-range boxes go into
    ``table``. Returns the number of records."""
    if isinstance(raw, OSError):
        report.add("label-missing", ERROR, f"label file cannot be read: {raw.strerror or raw}", LabelError,
                   file=path)
        return 0
    text = decode_text(raw)
    index = table.add_file(path)
    seen: dict[tuple, int] = {}
    count = 0
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        simple = _RECORD.fullmatch(line)
        if simple:   # the usual one-record line, parsed without the general path's per-field checks
            records = [(int(simple[1]), *(float(v) for v in simple.group(2, 3, 4, 5)))]
        elif not line.split():
            continue
        else:
            records = _parse_line(line.split())
        if isinstance(records, str):
            later = sum(1 for rest in lines[number:] if rest.strip())
            lost = f"; the {later} line(s) after it are lost too" if later else ""
            report.add("label-parse", ERROR, f"label line does not parse: {records}", LabelError, file=path,
                       line=number, value=" ".join(line.split())[:80],
                       hint=f"Darknet stops reading the label file at this line{lost}")
            return count
        for record in records:
            count += 1
            first = seen.setdefault(record, number)
            if first != number:
                report.add("label-duplicate", WARNING, f"duplicate of line {first}: the object is counted twice "
                           "in the loss", LabelError, file=path, line=number, value=line.strip())
            elif _plainly_in_range(record, classes) or _in_range(record, classes, path, number, line, report):
                table.rows.append((index, number, *record))
    if count > max_boxes:
        report.add("label-dropped", WARNING, f"{count} boxes, but the last [yolo] layer keeps at most max="
                   f"{max_boxes} per image: each draw trains on a random {max_boxes} of them", LabelError,
                   file=path, hint="raise 'max' in every [yolo] section")
    return count


def _parse_line(fields: list[str]) -> list[tuple] | str:
    """The `(class, x, y, w, h)` records of one line, or why Darknet's reader stops at it."""
    if len(fields) % 5:
        return f"{len(fields)} fields, expected 5: {_FIELDS}"
    if not all(_INT.fullmatch(f) for f in fields[0::5]):
        return "the class id must be an integer"
    if not all(_FLOAT.fullmatch(f) for k, f in enumerate(fields) if k % 5):
        return "x, y, w, h must be numbers"
    return [(int(fields[k]), *(float(v) for v in fields[k + 1:k + 5])) for k in range(0, len(fields), 5)]


def _plainly_in_range(record: tuple, classes: int) -> bool:
    cls, x, y, w, h = record
    return 0 <= cls < classes and 0 < x <= 1 and 0 < y <= 1 and 0 < w <= 1 and 0 < h <= 1


def _in_range(record: tuple, classes: int, path: str, number: int, line: str, report: CheckReport) -> bool:
    cls, x, y, w, h = record
    value = line.strip()[:80]
    if not 0 <= cls < classes:
        report.add("label-class", ERROR, f"class id {cls} is outside 0..{classes - 1} (classes={classes})",
                   LabelError, file=path, line=number, value=value,
                   hint="AlexeyAB drops the box with a message; pjreddie writes past its class array")
        return False
    coords = (x, y, w, h)
    if not all(math.isfinite(v) for v in coords):
        report.add("label-range", ERROR, "a coordinate is not finite", LabelError, file=path, line=number,
                   value=value, hint="a NaN or inf label makes the loss NaN")
        return False
    if all(0 < v <= 1 for v in coords):
        return True
    hint = ("values above 1 look like pixel coordinates: Darknet wants x, y, w, h divided by the image width "
            "and height" if any(v > 1 for v in coords) else
            "x and y are the box centre, w and h its size, all relative to the image, in (0, 1]")
    report.add("label-range", ERROR, "coordinates must be in (0, 1] (x, y centre; w, h > 0)", LabelError,
               file=path, line=number, value=value, hint=hint)
    return False


def check_dropped(table: BoxTable, flavor: Flavor, net_size: Optional[tuple[int, int]], report: CheckReport
                  ) -> np.ndarray:
    """Report the in-range boxes Darknet's label filter drops even without augmentation; returns the mask
    of kept boxes. AlexeyAB drops boxes under one network-input pixel (needs the cfg's size); pjreddie drops
    w or h < 0.001."""
    index, line, cls, x, y, w, h = table.columns()
    new_x, new_y, new_w, new_h = correct_boxes(np.stack([x, y, w, h], axis=1), flavor, BoxTransform())
    if flavor.pjreddie:
        limit_w = limit_h = np.float32(0.001)
        rule = "pjreddie drops boxes with w or h < 0.001"
    elif net_size is not None:
        limit_w, limit_h = np.float32(1) / np.float32(net_size[0]), np.float32(1) / np.float32(net_size[1])
        rule = f"AlexeyAB drops boxes smaller than one pixel of the {net_size[0]}x{net_size[1]} network input"
    else:
        report.skip("label-dropped", "AB's one-pixel rule needs the CFG")
        return np.ones(len(x), bool)
    dropped = (new_w < limit_w) | (new_h < limit_h)
    for k in np.flatnonzero(dropped):
        report.add("label-dropped", WARNING, f"box too small: Darknet drops it ({rule})", LabelError,
                   file=table.files[index[k]], line=int(line[k]),
                   value=f"{cls[k]} {x[k]:g} {y[k]:g} {w[k]:g} {h[k]:g}")
    return ~dropped


EMPTY_SHARE_WARNING = 0.5     # more train pictures than this without boxes is warned about


def check_label_presence(list_file: str, images: int, without_boxes: int, first_label: Optional[str],
                         allow_empty: bool, report: CheckReport) -> None:
    """The train list's pictures against their label files: none with a box is an error (Darknet would
    train on background only and exit 0) unless ``allow_empty``; more than half without boxes is a warning.
    ``without_boxes`` counts pictures whose label file is missing or holds no record."""
    if not images:
        return
    if without_boxes == images:
        severity = WARNING if allow_empty else ERROR
        report.add("labels-empty", severity, f"none of the {images} pictures of the list has a label file with a "
                   f"box (looked for e.g. {first_label})", LabelError, file=list_file,
                   hint="Darknet would train on background only and report success; labels go beside the "
                        "pictures by the label rule (JPEGImages/ -> labels/, .jpg -> .txt); "
                        "--allow-empty-labels trains anyway")
    elif without_boxes > EMPTY_SHARE_WARNING * images:
        report.add("labels-empty", WARNING, f"{without_boxes} of the {images} pictures of the list "
                   f"({without_boxes / images:.0%}) have no box (no label file, or an empty one)", LabelError,
                   file=list_file, hint="they train as background; check the label paths if that is not meant")
