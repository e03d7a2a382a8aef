"""COCO annotation files (`instances_*.json`, and what CVAT, Label Studio, Roboflow export as COCO) -> an
:class:`~.records.ImportedSet`.

Categories become Darknet classes in the order of their ids. A box `[x, y, w, h]` is in pixels from the
picture's top-left corner (continuous coordinates), so its edges are x and x + w. `iscrowd` annotations
(a region of many objects) are skipped unless asked for. Image sizes come from the JSON's `width`/`height`
when present (no picture is opened), else from the picture's header."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from ..errors import DataFileError
from .image_size import image_size
from .records import Box, ImageRecord, ImportedSet, Problems, edges_to_box


def read_coco(json_path: str | os.PathLike, images_dir: str | os.PathLike | None = None,
              keep_crowd: bool = False) -> ImportedSet:
    json_path = Path(json_path)
    root = Path(images_dir) if images_dir is not None else json_path.resolve().parent
    document = _load(json_path)
    names, class_map = _categories(document, json_path)
    images = _images(document, json_path)
    problems = Problems()
    boxes = _annotations(document, json_path, images, class_map, keep_crowd, problems)
    records = []
    for image_id, entry in images.items():
        record = _record(entry, root, boxes.get(image_id, ()), problems)
        if record is not None:
            records.append(record)
    return ImportedSet("coco", json_path, names, records, problems, {str(k): v for k, v in class_map.items()},
                       (root,))


def _load(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            document = json.load(f)
    except FileNotFoundError:
        raise DataFileError("COCO annotation file not found", file=str(path)) from None
    except OSError as exc:
        raise DataFileError(f"cannot read COCO annotation file: {exc.strerror}", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise DataFileError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=str(path),
                            line=exc.lineno) from None
    except UnicodeDecodeError:
        raise DataFileError("not valid JSON: not UTF-8 text", file=str(path)) from None
    if not isinstance(document, dict):
        raise DataFileError("a COCO file is a JSON object with 'images', 'annotations' and 'categories'",
                            file=str(path))
    return document


def _list(document: dict, key: str, path: Path) -> list:
    value = document.get(key, [] if key == "annotations" else None)
    if not isinstance(value, list):
        raise DataFileError(f"'{key}' is missing or not a list", file=str(path),
                            hint="a COCO file holds 'images', 'annotations' and 'categories' lists")
    return value


def _field(entry: Any, key: str, kind, path: Path, where: str):
    if not isinstance(entry, dict) or key not in entry:
        raise DataFileError(f"{where}: no '{key}'", file=str(path), value=_short(entry))
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataFileError(f"{where}: '{key}' has the wrong type", file=str(path), value=_short(entry))
    return value


def _short(entry: Any) -> str:
    text = json.dumps(entry)
    return text if len(text) <= 120 else text[:117] + "..."


def _categories(document: dict, path: Path) -> tuple[tuple[str, ...], dict[int, int]]:
    """Names in category-id order and the map category id -> Darknet class id."""
    found: dict[int, str] = {}
    for k, entry in enumerate(_list(document, "categories", path)):
        where = f"categories[{k}]"
        category_id = _field(entry, "id", int, path, where)
        name = _field(entry, "name", str, path, where)
        if category_id in found:
            raise DataFileError(f"{where}: category id {category_id} is listed twice", file=str(path),
                                value=_short(entry))
        found[category_id] = name
    if not found:
        raise DataFileError("'categories' is empty: no classes to train", file=str(path))
    order = sorted(found)
    return tuple(found[c] for c in order), {c: k for k, c in enumerate(order)}


def _images(document: dict, path: Path) -> dict[int, dict]:
    images: dict[int, dict] = {}
    where_of: dict[int, int] = {}
    first_by_name: dict[str, int] = {}
    for k, entry in enumerate(_list(document, "images", path)):
        where = f"images[{k}]"
        image_id = _field(entry, "id", int, path, where)
        file_name = _field(entry, "file_name", str, path, where)
        if image_id in images:
            raise DataFileError(f"{where}: image id {image_id} is listed twice (first: images[{where_of[image_id]}])",
                                file=str(path), value=_short(entry))
        if file_name in first_by_name:
            raise DataFileError(f"{where}: image '{file_name}' is listed twice (first: images"
                                f"[{first_by_name[file_name]}])", file=str(path), value=_short(entry))
        images[image_id], where_of[image_id], first_by_name[file_name] = entry, k, k
    return images


def _annotations(document: dict, path: Path, images: dict[int, dict], class_map: dict[int, int],
                 keep_crowd: bool, problems: Problems) -> dict[int, list[Box]]:
    boxes: dict[int, list[Box]] = {}
    sizes = {image_id: _json_size(entry) for image_id, entry in images.items()}
    annotations = _list(document, "annotations", path)
    for k, entry in enumerate(annotations):
        annotations[k] = None       # each entry's dict is freed once converted: the boxes replace, not add to, it
        image_id, category_id, bbox = _annotation_fields(entry, k, path, images, class_map)
        if entry.get("iscrowd", 0) and not keep_crowd:
            problems.add("crowd annotation skipped (--keep-crowd keeps them)", f"annotations[{k}] of image {image_id}")
            continue
        size = sizes[image_id]
        if size is None:            # read from the picture later; keep pixels until then
            boxes.setdefault(image_id, []).append((class_map[category_id], *bbox, f"annotations[{k}]"))
            continue
        x, y, w, h = bbox
        box = edges_to_box(class_map[category_id], x, y, x + w, y + h, size[0], size[1],
                           f"annotations[{k}] of image {image_id}", problems)
        if box is not None:
            boxes.setdefault(image_id, []).append(box)
    return boxes


_NUMBERS = {int, float}


def _annotation_fields(entry: Any, k: int, path: Path, images: dict, class_map: dict) -> tuple[int, int, list]:
    """(image_id, category_id, bbox) of ``annotations[k]``, each checked (a 1M-box file passes here once
    per box: the common case is three dict lookups and type tests)."""
    try:
        image_id, category_id, bbox = entry["image_id"], entry["category_id"], entry["bbox"]
        plain = (type(image_id) is int and type(category_id) is int and type(bbox) is list and len(bbox) == 4
                 and set(map(type, bbox)) <= _NUMBERS)
    except (KeyError, TypeError):
        plain = False
    where = f"annotations[{k}]"
    if not plain:
        image_id = _field(entry, "image_id", int, path, where)
        category_id = _field(entry, "category_id", int, path, where)
        bbox = _field(entry, "bbox", list, path, where)
        raise DataFileError(f"{where}: 'bbox' must be 4 numbers [x, y, width, height]", file=str(path),
                            value=_short(entry))
    if image_id not in images:
        raise DataFileError(f"{where}: image_id {image_id} is not in 'images'", file=str(path),
                            value=_short(entry))
    if category_id not in class_map:
        raise DataFileError(f"{where}: category_id {category_id} is not in 'categories'", file=str(path),
                            value=_short(entry), hint=f"known ids: {sorted(class_map)}")
    return image_id, category_id, bbox


def _json_size(entry: dict) -> Optional[tuple[float, float]]:
    width, height = entry.get("width"), entry.get("height")
    if isinstance(width, (int, float)) and isinstance(height, (int, float)) and width > 0 and height > 0:
        return float(width), float(height)
    return None


def _record(entry: dict, root: Path, boxes, problems: Problems) -> Optional[ImageRecord]:
    file_name = entry["file_name"]
    path = os.path.join(root, file_name)
    if not os.path.isfile(path):
        problems.add("missing image", path)
        return None
    size = _json_size(entry)
    if size is None:
        read = image_size(path)
        if read is None:
            problems.add("unreadable image", str(path))
            return None
        size = (float(read[0]), float(read[1]))
        boxes = [b for b in (_pixel_box(item, size, entry["id"], problems) for item in boxes) if b is not None]
    return ImageRecord(path, _inner_name(file_name), int(size[0]), int(size[1]), tuple(boxes))


def _pixel_box(item, size, image_id: int, problems: Problems) -> Optional[Box]:
    class_id, x, y, w, h, where = item
    return edges_to_box(class_id, x, y, x + w, y + h, size[0], size[1], f"{where} of image {image_id}", problems)


def _inner_name(file_name: str) -> str:
    """Where the picture goes under `JPEGImages/`: its relative path as the JSON names it (sub-folders kept,
    so equal base names in two folders stay apart); an absolute or upward path keeps only its base name."""
    if "/" not in file_name and "\\" not in file_name and file_name not in (".", ".."):
        return file_name            # the usual case, without pathlib's cost
    parts = Path(file_name.replace("\\", "/")).parts
    if Path(file_name).is_absolute() or ".." in parts:
        return parts[-1]
    return "/".join(p for p in parts if p != ".")
