"""The pictures `detector test` reads: its INPUT arguments (image files, directories, globs, `.txt` lists) or
Darknet's "Enter Image Path:" stdin loop, and AlexeyAB's `bad.list` of the images it could not read."""
from __future__ import annotations

import glob
import sys
from pathlib import Path
from typing import Iterator

import click

from ..data.labels import read_list
from ..errors import DataFileError, ImageError, warn

# What a directory or a glob contributes (OpenCV decodes these); a file named explicitly is tried whatever
# its name.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp"})
LIST_SUFFIX = ".txt"
BAD_LIST = "bad.list"   # AB appends every image it cannot load to this file in the working directory


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def expand_input(entry: str) -> list[str]:
    """The image paths one INPUT stands for: a directory's images sorted by name, a glob's matching images
    sorted, a `.txt` list's entries in order, else the path itself (an unreadable one is reported when
    read, like any image). A `.txt` list that is not there is an error: it names no image to report."""
    path = Path(entry)
    if path.is_dir():
        return [str(p) for p in sorted(path.iterdir(), key=lambda p: p.name) if p.is_file() and is_image_name(p)]
    if path.suffix.lower() == LIST_SUFFIX and not (path.exists() or glob.has_magic(entry)):
        raise DataFileError("list file not found", file=entry, hint="a .txt INPUT is a list of image paths")
    if path.is_file() and path.suffix.lower() == LIST_SUFFIX:
        return read_list(entry)
    if not path.exists() and glob.has_magic(entry):
        return [p for p in sorted(glob.glob(entry)) if Path(p).is_file() and is_image_name(Path(p))]
    return [entry]


def expand_inputs(entries: tuple[str, ...]) -> list[str]:
    """Every INPUT's images, in argument order. An INPUT that gives none (an empty directory, a glob that
    matches nothing) is a warning; all of them giving none is an error naming the first."""
    paths = []
    for entry in entries:
        found = expand_input(entry)
        if not found:
            warn(f"{entry}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found there")
        paths += found
    if not paths:
        raise ImageError("no images to detect in", file=entries[0],
                         hint="give image files, a directory of images, a glob or a .txt list")
    return paths


def stdin_image_paths() -> Iterator[str]:
    """Darknet's interactive loop: one path per line after an "Enter Image Path: " prompt, until EOF."""
    while True:
        click.echo("Enter Image Path: ", nl=False)
        line = sys.stdin.readline()
        if not line:
            return
        yield line.strip("\r\n")


def report_bad_image(error: ImageError) -> None:
    """AB's way with an image it cannot load: say so, append its path to `bad.list`, go on."""
    warn(f"{error}; skipped, appended to {BAD_LIST}")
    with open(BAD_LIST, "a", encoding="utf-8") as bad_list:
        bad_list.write(f"{error.file}\n")
