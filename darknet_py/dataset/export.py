"""A Darknet data set (a `.data` file's `train` and `valid` lists and their label files) -> one COCO JSON,
for pycocotools and for labelling tools.

Categories get ids 1..N in Darknet class order (COCO's convention starts at 1; importing the JSON maps them
back to 0..N-1). `file_name` is each picture's path relative to the pictures' common folder, which is
returned (and printed by the command) so that `dataset import coco OUT.json --images FOLDER` finds them."""
from __future__ import annotations

import os
from pathlib import Path

from ..config.data import DataConfig
from ..data.labels import label_path, read_list, read_labels
from ..errors import DataFileError, ImageError
from ..json_text import json_dumps
from .image_size import image_size

LISTS = {"train": ("train",), "valid": ("valid",), "both": ("train", "valid")}


def coco_document(data: DataConfig, lists: str = "both") -> tuple[dict, Path]:
    """(the COCO document, the folder its file names are relative to)."""
    names = data.read_names()
    paths = _pictures(data, LISTS[lists])
    if not paths:
        raise DataFileError("the lists name no pictures", file=data.file)
    root = Path(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths]))
    images, annotations = [], []
    for image_id, path in enumerate(paths, start=1):
        size = image_size(Path(path))
        if size is None:
            raise ImageError("cannot read the picture's size (missing, or not a picture)", file=path)
        width, height = size
        images.append({"id": image_id, "file_name": os.path.relpath(os.path.abspath(path), root),
                       "width": width, "height": height})
        for class_id, x, y, w, h in read_labels(label_path(path)).astype(float).tolist():
            if not 0 <= class_id < len(names):
                raise DataFileError(f"class id {int(class_id)} is not below the {len(names)} names",
                                    file=label_path(path))
            box = [(x - w / 2) * width, (y - h / 2) * height, w * width, h * height]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(class_id) + 1,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(names)]
    return {"images": images, "annotations": annotations, "categories": categories}, root


def coco_json(document: dict) -> bytes:
    return (json_dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _pictures(data: DataConfig, keys: tuple[str, ...]) -> list[str]:
    seen, paths = set(), []
    for key in keys:
        if key == "valid" and "valid" not in data.lines:
            continue
        for path in read_list(data.resolve(key)):
            if path not in seen:
                seen.add(path)
                paths.append(path)
    return paths
