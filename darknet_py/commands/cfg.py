"""`darknet_py cfg custom BASE.cfg OUT.cfg --classes N ...`: a detection cfg made ready for your classes by
AlexeyAB's README rules (see :mod:`darknet_py.config.custom`)."""
from __future__ import annotations

from typing import Optional

import click


@click.group()
def cfg() -> None:
    """Make cfg files."""


@cfg.command("custom")
@click.argument("base", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--classes", type=int, required=True, help="Number of classes to detect.")
@click.option("--width", type=click.IntRange(min=1), default=None, help="[net] width (a multiple of 32).")
@click.option("--height", type=click.IntRange(min=1), default=None, help="[net] height (a multiple of 32).")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="[net] batch.")
@click.option("--subdivisions", type=click.IntRange(min=1), default=None, help="[net] subdivisions.")
@click.option("--max-batches", type=click.IntRange(min=1), default=None,
              help="[net] max_batches (default: max(2000*classes, training images, 6000)).")
@click.option("--data", "data_file", type=click.Path(), default=None,
              help="The .data file to train on: its train list's length enters the max_batches rule.")
@click.option("--anchors-from", "anchors_from", type=click.Path(), default=None,
              help="Recompute every layer's anchors with calc_anchors on this .data file's train labels.")
def custom(base: str, out: str, classes: int, width: Optional[int], height: Optional[int], batch: Optional[int],
           subdivisions: Optional[int], max_batches: Optional[int], data_file: Optional[str],
           anchors_from: Optional[str]) -> None:
    """Write OUT: BASE with classes, filters, max_batches, steps (and size, batch, anchors) set for CLASSES
    classes; every changed line is printed as `OUT:line old -> new`."""
    from ..atomic_write import write_atomically
    from ..config.custom import CustomOptions, custom_cfg
    from ..config.reader import read_file
    from ..errors import CfgError
    from ..outputs import refuse_overwriting_inputs

    refuse_overwriting_inputs("cfg custom", {"base cfg": base, "--data file": data_file,
                                             "--anchors-from file": anchors_from}, {"output": out})
    data_file = data_file or anchors_from
    train_images = _train_images(data_file) if data_file else None
    anchors = _anchor_maker(anchors_from) if anchors_from else None
    opts = CustomOptions(classes, width, height, batch, subdivisions, max_batches, train_images, anchors)
    text, changes, notes = custom_cfg(read_file(base), base, opts)
    write_atomically(out, text, CfgError)
    for change in changes:
        click.echo(f"{out}:{change.line} {change.old if change.old is not None else '(added)'} -> {change.new}")
    for note in notes:
        click.echo(note)


def _train_images(data_file: str) -> int:
    from ..config.data import parse_data
    from ..data.labels import list_entries

    return len(list_entries(parse_data(data_file).resolve("train")))


def _anchor_maker(data_file: str):
    """(count, width, height) -> anchors text, by calc_anchors on the train labels (seeded: repeatable)."""
    from ..config.data import parse_data
    from ..eval.anchors import calc_anchors

    data, made = parse_data(data_file), {}

    def anchors(count: int, width: int, height: int) -> str:
        if (count, width, height) not in made:
            made[(count, width, height)] = calc_anchors(data, count, width, height, seed=1).anchors_text()
        return made[(count, width, height)]

    return anchors
