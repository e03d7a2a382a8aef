"""Pascal VOC folders (`Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/*.txt`) -> an
:class:`~.records.ImportedSet`.

VOC's `xmin..xmax` are 1-based pixel indices and both ends are inside the object, so the box covers the
pixels' extent from the left edge of pixel `xmin` to the right edge of pixel `xmax`: in continuous
coordinates from `xmin - 1` to `xmax` (width `xmax - xmin + 1`). Darknet's own `scripts/voc_label.py` uses
centre `(xmin + xmax) / 2 - 1` and width `xmax - xmin` instead: up to one pixel apart (docs/custom-data.md).
`difficult` objects are skipped unless asked for, as `voc_label.py` does. Classes are the names found, in
alphabetical order, unless a names file fixes them."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Optional

from ..config.data import read_names
from ..errors import DataFileError
from .records import ImageRecord, ImportedSet, Problems, edges_to_box

SPLITS = (("train", "val"), ("trainval", "test"))     # ImageSets/Main lists used when present, in this order


def read_voc(root: str | os.PathLike, names_file: Optional[str] = None, keep_difficult: bool = False) -> ImportedSet:
    root = Path(root)
    annotations = root / "Annotations"
    if not annotations.is_dir():
        raise DataFileError("not a Pascal VOC folder: it has no Annotations/ folder", file=str(root))
    xml_files = sorted(annotations.glob("*.xml"))
    if not xml_files:
        raise DataFileError("Annotations/ holds no .xml file", file=str(annotations))
    problems = Problems()
    parsed = [_parse(path) for path in xml_files]
    names = read_names(names_file) if names_file else tuple(sorted({o[0] for _, _, objects in parsed for o in objects}))
    class_map = {name: k for k, name in enumerate(names)}
    splits = _splits(root, problems, {p.stem for p in xml_files})
    records = []
    for xml_path, (file_name, size), objects in zip(xml_files, (p[:2] for p in parsed), (p[2] for p in parsed)):
        split = splits.get(xml_path.stem) if splits is not None else None
        if splits is not None and split is None:
            problems.add("not in the ImageSets/Main lists: skipped", str(xml_path))
            continue
        record = _record(root, xml_path, file_name, size, objects, class_map, keep_difficult, split, problems)
        if record is not None:
            records.append(record)
    return ImportedSet("voc", root, names, records, problems, dict(class_map), (root / "JPEGImages",))


def _parse(path: Path):
    """(file name, (width, height), [(name, difficult, (xmin, ymin, xmax, ymax), object index)])."""
    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError as exc:
        raise DataFileError(f"not valid XML: {exc}", file=str(path), line=exc.position[0]) from None
    except OSError as exc:
        raise DataFileError(f"cannot read: {exc.strerror}", file=str(path)) from None
    top = tree.getroot()
    size = top.find("size")
    if size is None:
        raise DataFileError("no <size>: the picture's width and height are needed to normalise the boxes",
                            file=str(path))
    width, height = (_number(size, key, path, "<size>") for key in ("width", "height"))
    if width <= 0 or height <= 0:
        raise DataFileError(f"<size> is {width:g}x{height:g}: width and height must be positive", file=str(path))
    objects = []
    for k, obj in enumerate(top.iter("object")):
        where = f"<object> {k + 1}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DataFileError(f"{where} has no <name>", file=str(path))
        box = obj.find("bndbox")
        if box is None:
            raise DataFileError(f"{where} ('{name}') has no <bndbox>", file=str(path))
        edges = tuple(_number(box, key, path, where) for key in ("xmin", "ymin", "xmax", "ymax"))
        difficult = (obj.findtext("difficult") or "0").strip() not in ("0", "")
        objects.append((name, difficult, edges, k + 1))
    file_name = (top.findtext("filename") or "").strip()
    return file_name, (width, height), objects


def _number(element, key: str, path: Path, where: str) -> float:
    text = element.findtext(key)
    try:
        return float(text)
    except (TypeError, ValueError):
        raise DataFileError(f"{where}: <{key}> is missing or not a number", file=str(path), value=text) from None


def _splits(root: Path, problems: Problems, stems: set[str]) -> Optional[dict[str, str]]:
    """Image id -> "train"/"valid" from ImageSets/Main, or None when it has no usable pair of lists."""
    main = root / "ImageSets" / "Main"
    for train, valid in SPLITS:
        if (main / f"{train}.txt").is_file() and (main / f"{valid}.txt").is_file():
            split = {}
            for name, role in ((train, "train"), (valid, "valid")):
                for line in (main / f"{name}.txt").read_text(errors="replace").split():
                    if line not in stems:
                        problems.add("listed in ImageSets/Main without an annotation", f"{main / name}.txt: {line}")
                    split.setdefault(line, role)
            return split
    return None


def _record(root: Path, xml_path: Path, file_name: str, size, objects, class_map: dict[str, int],
            keep_difficult: bool, split: Optional[str], problems: Problems) -> Optional[ImageRecord]:
    image = _image_path(root, xml_path, file_name)
    if image is None:
        problems.add("missing image", f"{xml_path}: {file_name or xml_path.stem + '.jpg'}")
        return None
    width, height = size
    boxes = []
    for name, difficult, (xmin, ymin, xmax, ymax), k in objects:
        where = f"{xml_path}: <object> {k}"
        if name not in class_map:
            problems.add("unknown category", f"{where} '{name}'")
            continue
        if difficult and not keep_difficult:
            problems.add("difficult object skipped (--keep-difficult keeps them)", where)
            continue
        box = edges_to_box(class_map[name], xmin - 1, ymin - 1, xmax, ymax, width, height, where, problems)
        if box is not None:
            boxes.append(box)
    return ImageRecord(str(image), image.name, int(width), int(height), tuple(boxes), split)


def _image_path(root: Path, xml_path: Path, file_name: str) -> Optional[Path]:
    """JPEGImages/<filename> as the XML says, else JPEGImages/<xml name>.jpg (what voc_label.py assumes)."""
    for name in (file_name, xml_path.stem + ".jpg"):
        if name and (root / "JPEGImages" / name).is_file():
            return root / "JPEGImages" / name
    return None
