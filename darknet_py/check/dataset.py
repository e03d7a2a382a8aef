"""`check_dataset`: everything `detector check` verifies about a `.data` file, its lists, images and labels,
and (with a cfg) the model's agreement with the data.

Fast mode (what `detector train` runs first) only looks at file existence and label files, so it keeps up
with 100k-image lists; full mode also decodes every image."""
from __future__ import annotations

import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ..config.cfg import CfgModel
from ..config.data import DataConfig, parse_data
from ..data.labels import label_path, label_path_candidates, list_entries
from ..data.image import decode_image_file
from ..errors import DarknetError, DataFileError, ImageError, LabelError
from ..flavor import AB, Flavor, flavor_of
from .labels import BoxTable, check_dropped, check_label_file, check_label_presence, read_label_bytes
from .model import check_anchors, check_model, load_model
from .report import ERROR, WARNING, CheckReport

DECODERS = 8   # threads decoding images (cv2 releases the GIL)


def check_dataset(data_config: DataConfig | str | os.PathLike, cfg: CfgModel | str | os.PathLike | None = None,
                  flavor: Flavor | str = AB, fast: bool = False, allow_empty_labels: bool = False) -> CheckReport:
    """Check a data set before training. ``data_config`` is a parsed `.data` or its path; ``cfg`` (a path or
    a parsed cfg) adds the model checks; ``allow_empty_labels`` makes a train list without any box a warning
    (Darknet's behaviour) instead of an error. A `.data` file that cannot be parsed raises its
    :class:`~darknet_py.errors.DataFileError`; every other problem becomes a finding in the report."""
    flavor = flavor_of(flavor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the report says everything the readers would warn about
        data = data_config if isinstance(data_config, DataConfig) else parse_data(data_config, flavor)
        report = CheckReport(data.file, flavor, fast)
        model = load_model(cfg, flavor, report)
        report.model = model
        _check_names(data, report)
        _check_backup(data, report)
        max_boxes = _max_boxes(model, flavor)
        table = BoxTable()
        for key in _list_keys(data):
            _check_list(data, key, flavor, fast, max_boxes, table, report, allow_empty_labels)
            if key == "train":
                train = np.arange(len(table.rows))   # anchors and class counts describe what trains
        kept = check_dropped(table, flavor, (model.net.width, model.net.height) if model else None, report)
        kept_train = train[kept[train]]
        _check_class_use(data, table, kept_train, report)
        if model is not None:
            check_model(model, data.classes, report)
            check_anchors(model, table, kept_train, report)
        else:
            for code in ("cfg", "cfg-classes", "cfg-filters", "anchors"):
                report.skip(code, "no CFG given")
    if fast:
        report.skip("image-unreadable", "fast mode: existence only")
    return report


def _max_boxes(model: Optional[CfgModel], flavor: Flavor) -> int:
    """The trainer's `max` (from its detection layer); without a cfg or such a layer the flavour's default."""
    last = flavor.trainer_layer(model.layers) if model else None
    return last.options.max_boxes if last is not None else flavor.max_boxes_default


def _check_names(data: DataConfig, report: CheckReport) -> None:
    try:
        names = data.read_names()
    except DarknetError as exc:
        report.add_exception("data", exc)
        report.skip("names", "names file unreadable")
        return
    report.stats["names"] = f"{len(names)} in {data.resolve('names')}"
    if len(names) != data.classes:
        report.add("names", ERROR, f"{len(names)} names, but classes={data.classes}", DataFileError,
                   file=str(data.resolve("names")),
                   hint=f"one class name per line; {data.file} says classes={data.classes}")


def _check_backup(data: DataConfig, report: CheckReport) -> None:
    """Darknet only finds out that `backup` is unusable when it first saves, hours into training."""
    backup = Path(data.backup)
    existing = next(p for p in (backup, *backup.absolute().parents) if p.exists())
    problem = (f"{existing} is a file, not a directory" if not existing.is_dir() else
               f"{existing} is not writable" if not os.access(existing, os.W_OK | os.X_OK) else None)
    if problem:
        report.add("backup", ERROR, f"the backup directory {data.backup} cannot be used: {problem}", DataFileError,
                   file=data.file, line=data.lines.get("backup"), value=data.backup,
                   hint="training would fail at its first save")


def _list_keys(data: DataConfig) -> list[str]:
    """`train`, and `valid` when the `.data` file sets it to another list."""
    keys = ["train"]
    if "valid" in data.lines and data.valid != data.train:
        keys.append("valid")
    return keys


def _check_list(data: DataConfig, key: str, flavor: Flavor, fast: bool, max_boxes: int, table: BoxTable,
                report: CheckReport, allow_empty_labels: bool = False) -> None:
    try:
        list_file = str(data.resolve(key))
        entries = list_entries(list_file)
    except DarknetError as exc:
        report.add_exception("list" if key in data.lines else "data", exc)
        return
    first_box = len(table.rows)
    images = _existing_images(entries, list_file, report)
    if not fast:
        _check_decoding(images, report)
    labels = [label for label in (_find_label(image, flavor, report) for image in images) if label is not None]
    empty = sum(check_label_file(label, read_label_bytes(label), data.classes, max_boxes, table, report) == 0
                for label in labels)
    if key == "train":
        check_label_presence(list_file, len(images), len(images) - len(labels) + empty,
                             label_path(images[0], flavor) if images else None, allow_empty_labels, report)
    report.stats[key] = (f"{list_file}: {len(entries)} listed, {len(images)} found, {len(labels)} with label "
                         f"files ({empty} empty), {len(table.rows) - first_box} boxes")


def _existing_images(entries: list[tuple[int, str]], list_file: str, report: CheckReport) -> list[str]:
    images, first_line = [], {}
    list_dir = os.path.dirname(os.path.abspath(list_file))
    for number, entry in entries:
        first = first_line.setdefault(entry, number)
        if first != number:
            report.add("list-duplicate", WARNING, f"listed again (first on line {first}): Darknet draws it "
                       "twice as often", DataFileError, file=list_file, line=number, value=entry)
            continue
        # Darknet's rule (as written, from the current directory), then beside the list file (darknet_py).
        tried = [entry] if os.path.isabs(entry) else [entry, os.path.join(list_dir, entry)]
        found = next((p for p in tried if os.path.isfile(p)), None)
        if found is None:
            report.add("image-missing", ERROR, f"image not found (tried {' and '.join(tried)})", ImageError,
                       file=list_file, line=number, value=entry)
        elif os.path.getsize(found) == 0:
            report.add("image-unreadable", ERROR, "image file is empty", ImageError, file=found)
        else:
            images.append(found)
    return images


def _check_decoding(images: list[str], report: CheckReport) -> None:
    with ThreadPoolExecutor(max_workers=DECODERS) as pool:
        for image, (severity, problem) in zip(images, pool.map(_decode_problem, images)):
            if problem:
                report.add("image-unreadable", severity, problem, ImageError, file=image)


def _decode_problem(path: str) -> tuple[str, Optional[str]]:
    """(severity, problem) of decoding ``path`` as training does (:func:`decode_image_file`)."""
    try:
        # a reduced decode still parses the whole stream but skips most of the pixel work
        _, complaint = decode_image_file(path, cv2.IMREAD_REDUCED_GRAYSCALE_4)
    except ImageError as exc:
        return ERROR, exc.message
    except OSError as exc:
        return ERROR, f"cannot read image: {exc.strerror or exc}"
    return WARNING, complaint     # a truncated JPEG: Darknet and training decode what is there


def _find_label(image: str, flavor: Flavor, report: CheckReport) -> Optional[str]:
    """The label file Darknet reads for ``image``, or None (reported) when it is missing."""
    own = label_path(image, flavor)
    if os.path.isfile(own) and own.endswith(".txt"):
        return own
    others = label_path_candidates(image, flavor)[1:]
    if not own.endswith(".txt"):
        report.add("label-missing", ERROR, "Darknet cannot name a label file for this image: its extension "
                   "is not one it maps to .txt", LabelError, file=image, hint=flavor.label_rule_text)
        return None
    other_fork = flavor.other
    existing = [p for p in others if os.path.isfile(p)]
    if existing:
        hint = (f"a label file exists at {existing[0]}, where the {other_fork} flavour looks; "
                f"use --flavor {other_fork} or move the labels (JPEGImages/ -> labels/ works for both)")
    else:
        hint = f"tried {own} ({flavor.label_rule_text})"
    if flavor.missing_label_file_is_error:
        report.add("label-missing", ERROR, f"no label file {own}: pjreddie's Darknet aborts", LabelError,
                   file=image, hint=hint)
    else:
        report.add("label-missing", WARNING, f"no label file {own}: AlexeyAB trains on the image as "
                   "background (no objects)", LabelError, file=image, hint=hint)
    return None


def _check_class_use(data: DataConfig, table: BoxTable, rows: np.ndarray, report: CheckReport) -> None:
    """Box counts per class over ``rows`` of the table (the kept train boxes)."""
    counts = Counter(table.rows[k][2] for k in rows)
    try:
        names = data.read_names()
    except DarknetError:
        names = ()
    label = (lambda c: f"{c} '{names[c]}'") if len(names) >= data.classes else str
    report.stats["boxes per class (train)"] = ", ".join(f"{label(c)}: {counts[c]}" for c in range(data.classes))
    for c in range(data.classes):
        if counts[c] == 0 and len(rows):
            report.add("class-unused", WARNING, f"class {label(c)} has no boxes in the train list",
                       LabelError, file=data.file, line=data.lines.get("classes"), value=str(data.classes),
                       hint="Darknet never learns a class without boxes; check classes= and the class ids")
