"""Ultralytics YOLO data sets (a `data.yaml` naming `train`/`val` image folders or list files, and
`names`) -> an :class:`~.records.ImportedSet`.

Paths in the YAML are relative to its `path` key, which is relative to the YAML's folder (absent: the YAML's
folder). A picture's labels are found by Ultralytics' rule: the last `/images/` of its path becomes
`/labels/`, the extension `.txt`. Their boxes are already Darknet's normalised `class x y w h`; a polygon
(`class x1 y1 x2 y2 ...`, segmentation labels) becomes its bounding box. A picture without a label file is
a background picture, as in Ultralytics."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..errors import DataFileError
from .records import Box, ImageRecord, ImportedSet, Problems, normalised_to_box

# Ultralytics' picture extensions (IMG_FORMATS); the writer skips the ones Darknet cannot label
IMAGE_EXTENSIONS = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"}
SPLIT_KEYS = (("train", "train"), ("val", "valid"))


def read_yolo(yaml_path: str | os.PathLike) -> ImportedSet:
    yaml_path = Path(yaml_path)
    document = _load(yaml_path)
    names = _names(document, yaml_path)
    root = _root(document, yaml_path)
    problems = Problems()
    records, roots = [], []
    for key, role in SPLIT_KEYS:
        if document.get(key) in (None, "", []):
            if key == "train":
                raise DataFileError("no 'train' images given", file=str(yaml_path))
            continue
        for source in _as_list(document[key]):
            folder, images = _images(root, source, yaml_path, key)
            roots.append(folder)
            for image, inner in images:
                if not image.is_file():
                    problems.add("missing image", f"{source}: {image}")
                    continue
                boxes = _boxes(_label_path(image), len(names), problems)
                records.append(ImageRecord(str(image), f"{role}/{inner}", 0, 0, boxes, role))
    return ImportedSet("yolo", yaml_path, names, records, problems, {str(k): k for k in range(len(names))},
                       tuple(roots))


def _load(path: Path) -> dict:
    import yaml     # only this reader needs it

    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataFileError("YAML file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"cannot read YAML file: {getattr(exc, 'strerror', None) or exc}", file=str(path)) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFileError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", file=str(path),
                            line=None if mark is None else mark.line + 1) from None
    if not isinstance(document, dict):
        raise DataFileError("a data.yaml is a mapping with 'train', 'val' and 'names'", file=str(path))
    return document


def _names(document: dict, path: Path) -> tuple[str, ...]:
    names = document.get("names")
    if isinstance(names, dict):
        if sorted(names) != list(range(len(names))):
            raise DataFileError("'names' as a mapping must have the keys 0, 1, ... without gaps", file=str(path),
                                value=str(sorted(names))[:80])
        names = [names[k] for k in range(len(names))]
    if not isinstance(names, list) or not names:
        raise DataFileError("'names' is missing or empty (a list, or a mapping id: name)", file=str(path))
    nc = document.get("nc")
    if nc is not None and nc != len(names):
        raise DataFileError(f"'nc' is {nc} but 'names' has {len(names)} entries", file=str(path))
    return tuple(str(n) for n in names)


def _root(document: dict, path: Path) -> Path:
    base = path.resolve().parent
    value = document.get("path")
    return base if not value else base / str(value)


def _as_list(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _images(root: Path, source: str, yaml_path: Path, key: str) -> tuple[Path, list[tuple[Path, str]]]:
    """(the folder, [(picture, its path inside that folder)]) for a folder or a list file of the YAML."""
    location = root / source
    if location.is_dir():
        found = sorted(p for p in location.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        return location, [(p, p.relative_to(location).as_posix()) for p in found]
    if location.is_file() and location.suffix == ".txt":
        entries = [line.strip() for line in location.read_text(errors="replace").splitlines() if line.strip()]
        images = [Path(e) if Path(e).is_absolute() else root / e for e in entries]
        return location.parent, [(p, p.name) for p in images]
    raise DataFileError(f"'{key}': folder not found: {location}", file=str(yaml_path), value=source,
                        hint="paths are relative to the YAML's 'path' (default: the YAML's folder)")


def _label_path(image: Path) -> Path:
    text = image.as_posix()
    marker = "/images/"
    if marker in text:
        head, _, tail = text.rpartition(marker)
        text = f"{head}/labels/{tail}"
    return Path(text).with_suffix(".txt")


def _boxes(label: Path, classes: int, problems: Problems) -> tuple[Box, ...]:
    try:
        text = label.read_text(errors="replace")
    except FileNotFoundError:
        problems.add("picture without a label file (background)", str(label))
        return ()
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        box = _box(line.split(), classes, f"{label}:{number}", problems)
        if box is not None:
            boxes.append(box)
    return tuple(boxes)


def _box(fields: list[str], classes: int, where: str, problems: Problems) -> Optional[Box]:
    if not fields:
        return None
    try:
        class_id, values = int(fields[0]), [float(v) for v in fields[1:]]
    except ValueError:
        problems.add("label line that does not parse: skipped", where)
        return None
    if not 0 <= class_id < classes:
        problems.add("unknown category", f"{where} class {class_id}")
        return None
    if len(values) == 4:
        return normalised_to_box(class_id, *values, where, problems)
    if len(values) >= 6 and len(values) % 2 == 0:
        problems.add("polygon label converted to its bounding box", where)
        xs, ys = values[0::2], values[1::2]
        left, right, top, bottom = min(xs), max(xs), min(ys), max(ys)
        return normalised_to_box(class_id, (left + right) / 2, (top + bottom) / 2, right - left, bottom - top,
                                 where, problems)
    problems.add("label line that does not parse: skipped", where)
    return None
