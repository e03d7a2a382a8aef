"""Lay an :class:`~.records.ImportedSet` out as a Darknet data set that `detector train` reads unchanged:

    OUT_DIR/JPEGImages/<name>      the pictures (copied, or symbolic links with --link)
    OUT_DIR/labels/<name>.txt      their boxes, `class x y w h` (both forks' label rule finds them)
    OUT_DIR/train.txt, valid.txt   absolute picture paths
    OUT_DIR/obj.names, obj.data    absolute paths: the .data file works from any working folder
    OUT_DIR/import.json            the class id map and the counted problems of the import

The set is assembled under a temporary sibling name and renamed to OUT_DIR when complete, so OUT_DIR is
either the whole set or absent (a killed import leaves only the temporary folder, swept by the next one)."""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic_write import process_alive
from ..errors import DataFileError, UsageError
from ..flavor import AB_EXTENSIONS, ab_label_path
from .records import ImageRecord, ImportedSet


@dataclass(frozen=True)
class WriteOptions:
    valid_fraction: float = 0.2
    seed: int = 0
    link: bool = False          # symbolic links to the source pictures instead of copies
    force: bool = False         # replace an existing non-empty OUT_DIR


@dataclass(frozen=True)
class Written:
    out_dir: Path
    data_file: Path
    train: int
    valid: int
    boxes: int


def write_darknet(imported: ImportedSet, out_dir: str | os.PathLike, options: WriteOptions,
                  say: Callable[[str], None] = print) -> Written:
    out = Path(out_dir).absolute()
    refuse_outputs_over_inputs(out, imported)
    _refuse_existing(out, options.force)
    records = _placeable(imported)
    if not records:
        raise DataFileError("no picture could be imported", file=str(imported.source),
                            hint="; ".join(imported.problems.lines()) or None)
    train, valid = _split(records, options)
    temp = out.parent / f".{out.name}.tmp{os.getpid()}"
    _sweep_stale(out)
    try:
        temp.mkdir(parents=True)
        boxes = _write_pictures(records, temp, out, options.link)
        data_file = _write_lists(imported, temp, out, train, valid)
        _replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _report(imported, out, len(train), len(valid), boxes, say)
    return Written(out, data_file, len(train), len(valid), boxes)


def refuse_outputs_over_inputs(out: Path, imported: ImportedSet) -> None:
    """OUT_DIR must not be, or hold, the annotation source or a folder of source pictures: --force replaces
    OUT_DIR, and no command writes over its own inputs."""
    real_out = Path(os.path.realpath(out))
    for source in (imported.source, *imported.image_roots):
        real = Path(os.path.realpath(source))
        if real == real_out or real_out in real.parents:
            raise UsageError(f"OUT_DIR holds this import's input {source}: it would be written over",
                             file=str(out), hint="choose an OUT_DIR outside the source data set")


def _refuse_existing(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError("OUT_DIR exists and is not a folder", file=str(out))
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError("OUT_DIR exists and is not empty", file=str(out), hint="pass --force to replace it")


def _placeable(imported: ImportedSet) -> list[ImageRecord]:
    """Records Darknet can label (its label rule knows the extension), one per name inside JPEGImages/."""
    problems, seen, kept = imported.problems, {}, []
    for record in imported.records:
        if not record.name.endswith(AB_EXTENSIONS):
            problems.add("picture type Darknet derives no label file for", str(record.path))
        elif record.name in seen:
            problems.add("duplicate file name: skipped", f"{record.path} (first: {seen[record.name]})")
        else:
            seen[record.name] = record.path
            kept.append(record)
    return kept


def _split(records: list[ImageRecord], options: WriteOptions) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """The source's own split where it has one, else a seeded random share for `valid`."""
    if any(r.split is not None for r in records):
        return [r for r in records if r.split != "valid"], [r for r in records if r.split == "valid"]
    if not 0 <= options.valid_fraction < 1:
        raise UsageError("--valid-fraction must be at least 0 and below 1", value=str(options.valid_fraction))
    order = np.random.default_rng(options.seed).permutation(len(records))
    count = min(int(round(len(records) * options.valid_fraction)), len(records) - 1)
    chosen = set(order[:count].tolist())
    return ([r for k, r in enumerate(records) if k not in chosen], [r for k, r in enumerate(records) if k in chosen])


def _write_pictures(records: list[ImageRecord], temp: Path, out: Path, link: bool) -> int:
    """Each picture (or a link to it) under JPEGImages/ and its label file under labels/. Paths are built as
    strings: at 100k pictures pathlib's objects cost more than the files' system calls."""
    from tqdm import tqdm

    folders: set[str] = set()
    boxes = 0
    for record in tqdm(records, desc="import", unit="img", disable=None, file=sys.stderr, leave=False):
        label_name = _label_name(record.name)
        final = f"{out}/JPEGImages/{record.name}"
        if ab_label_path(final) != f"{out}/labels/{label_name}":
            raise DataFileError("Darknet's label rule would not find the labels of this picture (its path "
                                "names JPEGImages or an images/train2017-like folder twice)", file=final,
                                hint="choose another OUT_DIR or rename the source folder")
        image, label = f"{temp}/JPEGImages/{record.name}", f"{temp}/labels/{label_name}"
        for folder in (os.path.dirname(image), os.path.dirname(label)):
            if folder not in folders:
                os.makedirs(folder, exist_ok=True)
                folders.add(folder)
        if link:
            os.symlink(os.path.abspath(record.path), image)
        else:
            shutil.copyfile(record.path, image)
        with open(label, "w") as f:
            f.write("".join(box.label_line() for box in record.boxes))
        boxes += len(record.boxes)
    return boxes


def _label_name(name: str) -> str:
    return os.path.splitext(name)[0] + ".txt"


def _write_lists(imported: ImportedSet, temp: Path, out: Path, train: list, valid: list) -> Path:
    for role, records in (("train", train), ("valid", valid or train)):
        (temp / f"{role}.txt").write_text("".join(f"{out / 'JPEGImages' / r.name}\n" for r in records))
    (temp / "obj.names").write_text("".join(f"{name}\n" for name in imported.names))
    (temp / "backup").mkdir()
    (temp / "obj.data").write_text(f"classes = {len(imported.names)}\ntrain = {out / 'train.txt'}\n"
                                   f"valid = {out / 'valid.txt'}\nnames = {out / 'obj.names'}\n"
                                   f"backup = {out / 'backup'}/\n")
    (temp / "import.json").write_text(json.dumps({
        "format": imported.format, "source": str(imported.source), "names": list(imported.names),
        "class_map": imported.class_map, "train": len(train), "valid": len(valid),
        "problems": imported.problems.as_dict()}, indent=1) + "\n")
    return out / "obj.data"


def _replace(temp: Path, out: Path) -> None:
    """temp becomes out in one rename; an existing out (empty, or --force) is moved aside first."""
    if not out.exists():
        os.replace(temp, out)
        return
    old = out.parent / f".{out.name}.old{os.getpid()}"
    os.replace(out, old)
    os.replace(temp, out)
    shutil.rmtree(old, ignore_errors=True)


def _sweep_stale(out: Path) -> None:
    """Temporary folders of imports into the same OUT_DIR whose process is gone (killed mid-import)."""
    for marker in (".tmp", ".old"):
        prefix = f".{out.name}{marker}"
        for stale in out.parent.glob(f"{prefix}*"):
            pid = stale.name[len(prefix):]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)


def _report(imported: ImportedSet, out: Path, train: int, valid: int, boxes: int, say) -> None:
    say(f"{out}: {train} train and {valid} valid pictures, {boxes} boxes, {len(imported.names)} classes"
        + ("" if valid else " (no valid pictures: valid.txt lists the train pictures)"))
    say("class ids (Darknet id: name <- source class):")
    back = {v: k for k, v in imported.class_map.items()}
    for k, name in enumerate(imported.names):
        say(f"  {k}: {name} <- {back.get(k, name)}")
    for line in imported.problems.lines():
        say(f"problem: {line}")
    say(f"train with: darknet_py detector train {out / 'obj.data'} CFG   (make CFG with: darknet_py cfg custom)")

