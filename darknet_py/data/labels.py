"""Train/valid list files, label paths and label files (spec §1.4, §1.5) and `fill_truth_detection` (§11.2).

Public API (used by the loader, the training loop, `detector map` and the dataset checker):

* ``read_list(path) -> list[str]`` — image paths of a `train`/`valid` list file.
* ``label_path(image_path, flavor) -> str`` — the one label file Darknet reads for an image.
* ``label_path_candidates(image_path, flavor) -> list[str]`` — that path first, then what the *other* fork
  would read when it differs (for messages: a tree laid out for one fork often fails in the other).
* ``read_labels(path, flavor) -> np.ndarray`` — records ``(N, 5)`` float32 ``[class, x, y, w, h]``.
* ``fill_truth_detection(records, rng, spec, transform, label_file) -> np.ndarray`` — the truth rows
  ``(max_boxes, 5 | 6)`` a `[yolo]` layer sees: ``[x, y, w, h, class]`` (pj) ``+ [track_id]`` (ab).

Box arithmetic is float32, as in Darknet's C."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..config.data import read_lines
from ..config.reader import decode_text
from ..errors import DataFileError, LabelError, warn
from ..flavor import AB, Flavor, flavor_of

INVALID = np.float32(999999)        # Darknet's marker for a box it refuses in correct_boxes
TRACK_HASH_SLOTS = 4000             # AB read_boxes: track_id = index + (hash(path) % 4000) * 4000
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


# -- list files -------------------------------------------------------------------------------------
def read_list(path: str | Path) -> list[str]:
    """Image paths of a list file, one per line (see :func:`list_entries`).

    A relative entry is used as written when it exists relative to the current directory (Darknet's only
    rule); otherwise, when it exists relative to the list file's directory, that path is used instead.
    Entries found in neither place are kept as written and reported in one warning naming both paths tried
    (the loader then skips them when drawn)."""
    path = str(path)
    paths, missing, moved = [], [], []
    for _, entry in list_entries(path):
        tried = image_path_candidates(entry, path)
        found = next((p for p in tried if Path(p).exists()), None)
        if found is None:
            missing.append(tried)
        elif found != entry:
            moved.append(entry)
        paths.append(found or entry)
    if moved:
        warn(f"{path}: {len(moved)} listed images were found relative to the list file's directory, not the "
             f"current directory (e.g. {moved[0]!r}); Darknet itself would not find them")
    if missing:
        warn(f"{path}: {len(missing)} of {len(paths)} listed images do not exist "
             f"(first: tried {' and '.join(missing[0])})")
    return paths


def list_entries(path: str | Path) -> list[tuple[int, str]]:
    """(line number, entry) of every non-blank line of a list file: the one rule training, evaluation and
    `detector check` share. Spaces and tabs around an entry are removed (an editor's trailing blank would
    otherwise make the image unreadable), and CR/LF and a byte order mark."""
    entries = [(number, line.strip(" \t")) for number, line in enumerate(read_lines(path, "list file"), start=1)
               if line.strip(" \t")]
    if not entries:
        raise DataFileError("list file names no images", file=str(path))
    return entries


def image_path_candidates(entry: str, list_file: str) -> list[str]:
    """Where a list entry may live: as written (cwd, Darknet's rule), then beside the list file."""
    if Path(entry).is_absolute():
        return [entry]
    return [entry, str(Path(list_file).resolve().parent / entry)]


# -- label paths ------------------------------------------------------------------------------------
def label_path(image_path: str, flavor: Flavor | str = AB) -> str:
    """The label file Darknet derives from an image path (spec §1.5)."""
    return flavor_of(flavor).label_path(image_path)


def label_path_candidates(image_path: str, flavor: Flavor | str = AB) -> list[str]:
    """The flavour's label path (the only one read), then the other fork's when it differs."""
    flavor = flavor_of(flavor)
    own, other = flavor.label_path(image_path), flavor.other.label_path(image_path)
    return [own] if other == own else [own, other]


# -- label files ------------------------------------------------------------------------------------
def read_labels(path: str, flavor: Flavor | str = AB) -> np.ndarray:
    """Records of a label file as float32 ``(N, 5)``: ``[class, x, y, w, h]`` (file order).

    Each line holds whole `class x y w h` records. A line that does not parse, has a negative class or a
    non-finite number is warned about (file:line) and skipped — Darknet's `fscanf` loop would silently stop
    reading the file there. A label file that cannot be opened means "no objects" for AlexeyAB (with a
    warning, as AB prints one); pjreddie aborts, so flavor pj raises :class:`LabelError`. A path that is not
    a `.txt` (the image extension had no rule) is treated the same way."""
    raw, problem = _read_label_file(path)
    if problem is not None:
        if flavor_of(flavor).missing_label_file_is_error:
            raise LabelError(f"label file {problem}", file=path,
                             hint="pjreddie's Darknet stops here too; use --flavor ab to train on images "
                                  "without label files")
        warn(f"{path}: label file {problem}; the image is used with no objects (as AlexeyAB's Darknet does)")
        return np.zeros((0, 5), np.float32)
    records = []
    for number, line in enumerate(decode_text(raw).split("\n"), start=1):
        parsed = _parse_records(line.split())
        if parsed is None:
            warn(f"{path}:{number}: bad label line skipped (expected 'class x y w h' with an integer class "
                 f">= 0 and finite numbers; Darknet stops reading the file here): {line.strip()[:80]!r}")
            continue
        records.extend(parsed)
    return np.asarray(records, np.float32).reshape(-1, 5)


def _read_label_file(path: str) -> tuple[bytes, Optional[str]]:
    """The file's bytes, or why it cannot serve as a label file."""
    if not path.endswith(".txt"):
        return b"", "path could not be derived (the image extension is not one Darknet maps to .txt)"
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return b"", "not found"
    except OSError as exc:
        return b"", f"cannot be read ({exc.strerror or exc})"
    if b"\x00" in raw:
        return b"", "looks like a binary file"
    return raw, None


def _parse_records(fields: list[str]) -> Optional[list[tuple[float, ...]]]:
    if len(fields) % 5:
        return None
    records = []
    for start in range(0, len(fields), 5):
        cls, *coords = fields[start:start + 5]
        if not _INT.fullmatch(cls) or int(cls) < 0 or not all(_FLOAT.fullmatch(c) for c in coords):
            return None
        values = [float(c) for c in coords]
        if not all(np.isfinite(np.float32(v)) for v in values):
            return None
        records.append((float(int(cls)), *values))
    return records


# -- truth ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TruthSpec:
    """What `fill_truth_detection` needs from the cfg: the last detection layer's `classes`/`max`, the
    current network size (AB's one-pixel filter) and the flavour (row width and filter rules)."""
    flavor: Flavor
    classes: int
    max_boxes: int
    net_w: int
    net_h: int

    def __post_init__(self):
        object.__setattr__(self, "flavor", flavor_of(self.flavor))   # callers may name the fork

    @property
    def truth_size(self) -> int:
        return self.flavor.truth_size


@dataclass(frozen=True)
class BoxTransform:
    """`correct_boxes(dx, dy, sx, sy, flip)`: new edge = old edge · s − d, then mirrored if flipped."""
    dx: float = 0.0
    dy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0
    flip: bool = False


def fill_truth_detection(records: np.ndarray, rng: np.random.Generator, spec: TruthSpec,
                         transform: BoxTransform, label_file: str = "") -> np.ndarray:
    """Darknet's `fill_truth_detection` (§11.2): shuffle, `correct_boxes`, keep the first `max_boxes`,
    drop per flavour, write rows. Returns ``(max_boxes, truth_size)`` float32, zero-padded."""
    boxes = randomize_boxes(records, rng)
    x, y, w, h = correct_boxes(boxes[:, 1:5], spec.flavor, transform)
    first = slice(0, spec.max_boxes)             # Darknet truncates before it filters
    boxes, x, y, w, h = boxes[first], x[first], y[first], w[first], h[first]
    keep = _keep_mask(boxes[:, 0], x, y, w, h, spec, label_file)
    truth = np.zeros((spec.max_boxes, spec.truth_size), np.float32)
    n = int(keep.sum())
    truth[:n, 0], truth[:n, 1], truth[:n, 2], truth[:n, 3] = x[keep], y[keep], w[keep], h[keep]
    truth[:n, 4] = boxes[keep, 0]
    if spec.truth_size == 6:
        truth[:n, 5] = boxes[keep, 5] + _track_hash(label_file)
    return truth


def randomize_boxes(records: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darknet's biased shuffle: for each i in order swap record i with a uniformly random record. The file
    index is appended as column 5 (AB's per-file track id)."""
    boxes = np.concatenate([records, np.arange(len(records), dtype=np.float32)[:, None]], axis=1)
    for i in range(len(boxes)):
        j = int(rng.integers(len(boxes)))
        boxes[[i, j]] = boxes[[j, i]]
    return boxes


def correct_boxes(xywh: np.ndarray, flavor: Flavor, t: BoxTransform):
    """Darknet's `correct_boxes` on float32 ``(N, 4)`` `x y w h`; returns the new x, y, w, h (each (N,)).
    Boxes Darknet marks invalid come back as 999999 in every field."""
    f = np.float32
    x, y, w, h = (xywh[:, k].astype(f) for k in range(4))
    half_w, half_h = w / f(2), h / f(2)
    invalid = (x == 0) & (y == 0)
    if flavor.alexeyab:   # AB also refuses boxes lying wholly outside the original image
        invalid |= (x + half_w < 0) | (y + half_h < 0) | (x - half_w > 1) | (y - half_h > 1)
    sx, sy, dx, dy = f(t.sx), f(t.sy), f(t.dx), f(t.dy)
    left, right = (x - half_w) * sx - dx, (x + half_w) * sx - dx
    top, bottom = (y - half_h) * sy - dy, (y + half_h) * sy - dy
    if t.flip:
        left, right = f(1) - right, f(1) - left
    left, right, top, bottom = (np.clip(v, f(0), f(1)) for v in (left, right, top, bottom))
    new = [(left + right) / f(2), (top + bottom) / f(2),
           np.clip(right - left, f(0), f(1)), np.clip(bottom - top, f(0), f(1))]
    return tuple(np.where(invalid, INVALID, v).astype(f) for v in new)


def _keep_mask(cls, x, y, w, h, spec: TruthSpec, label_file: str) -> np.ndarray:
    where = label_file or "label file"
    bad_class = cls >= spec.classes
    if bad_class.any():
        # Darknet pj keeps such boxes and indexes past the class array; both flavours drop them here.
        warn(f"{where}: wrong annotation: class_id = {int(cls[bad_class][0])}, but class_id should be from "
             f"0 to {spec.classes - 1}; box dropped")
    invalid = x == INVALID   # pj would train on these 999999 boxes; dropped here (spec §11.2)
    if spec.flavor.pjreddie:
        return ~bad_class & ~invalid & (w.astype(np.float64) >= 0.001) & (h.astype(np.float64) >= 0.001)
    tiny = (w < np.float32(1.0) / np.float32(spec.net_w)) | (h < np.float32(1.0) / np.float32(spec.net_h))
    outside = ~invalid & ((x <= 0) | (x > 1) | (y <= 0) | (y > 1))
    for mask, what in ((invalid & ~bad_class & ~tiny, "x = 0 and y = 0, or the box lies outside the image"),
                       (outside & ~bad_class & ~tiny, "box centre outside (0, 1]")):
        if mask.any():
            warn(f"{where}: wrong annotation: {what}; box dropped")
    return ~bad_class & ~tiny & ~invalid & ~outside


def _track_hash(label_file: str) -> np.float32:
    """AB's per-image track-id offset: djb2 of the label path (C `char` is signed) mod 4000, times 4000."""
    value = 5381
    for byte in label_file.encode("utf-8"):
        value = (value * 33 + (byte - 256 if byte >= 128 else byte)) % (1 << 64)
    return np.float32((value % TRACK_HASH_SLOTS) * TRACK_HASH_SLOTS)


def count_boxes(truth: np.ndarray) -> int:
    """Rows before the first with x == 0: Darknet's end-of-truth marker."""
    zero = np.flatnonzero(truth[:, 0] == 0)
    return int(zero[0]) if zero.size else len(truth)
