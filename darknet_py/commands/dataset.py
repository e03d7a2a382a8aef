"""`darknet_py dataset import FORMAT SOURCE OUT_DIR` (COCO JSON, Pascal VOC folder, Ultralytics data.yaml ->
a Darknet data set) and `darknet_py dataset export coco DATA OUT.json`."""
from __future__ import annotations

from typing import Optional

import click

from ..errors import UsageError


@click.group()
def dataset() -> None:
    """Bring annotations in other formats into Darknet's layout, and back out."""


@dataset.command("import")
@click.argument("format", type=click.Choice(["coco", "voc", "yolo"]))
@click.argument("source", type=click.Path())
@click.argument("out_dir", type=click.Path())
@click.option("--valid-fraction", type=float, default=0.2, show_default=True,
              help="Share of the pictures for valid.txt when the source has no split of its own.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of that random split.")
@click.option("--link/--copy", default=False, show_default=True,
              help="Symbolic links to the source pictures instead of copies.")
@click.option("--images", "images_dir", type=click.Path(), default=None,
              help="coco: folder the JSON's file_name values are relative to (default: the JSON's folder).")
@click.option("--names", "names_file", type=click.Path(), default=None,
              help="voc: a .names file fixing the classes and their order (default: the names found, sorted).")
@click.option("--keep-crowd", is_flag=True, help="coco: keep iscrowd annotations (skipped by default).")
@click.option("--keep-difficult", is_flag=True, help="voc: keep difficult objects (skipped by default).")
@click.option("--force", is_flag=True, help="Replace OUT_DIR when it exists and is not empty.")
def import_command(format: str, source: str, out_dir: str, valid_fraction: float, seed: int, link: bool,
                   images_dir: Optional[str], names_file: Optional[str], keep_crowd: bool, keep_difficult: bool,
                   force: bool) -> None:
    """Write the Darknet data set (JPEGImages/, labels/, train.txt, valid.txt, obj.names, obj.data) of
    SOURCE: a COCO .json, a VOC folder or an Ultralytics data.yaml."""
    from ..dataset.writer import WriteOptions, write_darknet

    if not 0 <= valid_fraction < 1:
        raise UsageError("--valid-fraction must be at least 0 and below 1", value=str(valid_fraction))
    _refuse_foreign_flags(format, images=images_dir, names=names_file, keep_crowd=keep_crowd,
                          keep_difficult=keep_difficult)
    imported = _read(format, source, images_dir, names_file, keep_crowd, keep_difficult)
    write_darknet(imported, out_dir, WriteOptions(valid_fraction, seed, link, force), say=click.echo)


_FLAG_FORMAT = {"images": "coco", "keep_crowd": "coco", "names": "voc", "keep_difficult": "voc"}


def _refuse_foreign_flags(format: str, **given) -> None:
    for key, value in given.items():
        if value and _FLAG_FORMAT[key] != format:
            raise UsageError(f"--{key.replace('_', '-')} applies to {_FLAG_FORMAT[key]} imports, not {format}")


def _read(format: str, source: str, images_dir, names_file, keep_crowd: bool, keep_difficult: bool):
    if format == "coco":
        from ..dataset.coco import read_coco
        return read_coco(source, images_dir, keep_crowd)
    if format == "voc":
        from ..dataset.voc import read_voc
        return read_voc(source, names_file, keep_difficult)
    from ..dataset.yolo import read_yolo
    return read_yolo(source)


@dataset.command("export")
@click.argument("format", type=click.Choice(["coco"]))
@click.argument("data", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--lists", type=click.Choice(["both", "train", "valid"]), default="both", show_default=True,
              help="Which list files' pictures to export.")
def export_command(format: str, data: str, out: str, lists: str) -> None:
    """Write the pictures and boxes of DATA's lists as a COCO annotation file OUT (.json)."""
    from ..atomic_write import write_atomically
    from ..config.data import parse_data
    from ..dataset.export import coco_document, coco_json
    from ..errors import DataFileError
    from ..outputs import refuse_overwriting_inputs

    config = parse_data(data)
    refuse_overwriting_inputs("dataset export", {"data file": data, **{
        f"{key} file": str(config.resolve(key, must_exist=False)) for key in ("names", "train", "valid")
        if key in config.lines}}, {"output": out})
    document, root = coco_document(config, lists)
    write_atomically(out, coco_json(document), DataFileError)
    click.echo(f"{out}: {len(document['images'])} pictures, {len(document['annotations'])} boxes, "
               f"{len(document['categories'])} categories; file names relative to {root}")
    click.echo(f"import back with: darknet_py dataset import coco {out} OUT_DIR --images {root}")

