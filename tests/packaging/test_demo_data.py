"""The embedded demo dataset (data/shapes*): reproducible from its script and laid out as both Darknet forks
expect (spec §1.4, §1.5).

The label-path rules are re-derived here from the spec, independently of darknet_py.data.labels."""
from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import cv2
import pytest

from darknet_py.config.data import parse_data, read_names
from helpers.paths import ROOT

DATA = ROOT / "data"
SPLITS = ("train", "valid")


def _make_shapes():
    spec = importlib.util.spec_from_file_location("make_shapes", DATA / "make_shapes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_shapes"] = module     # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def pj_label_path(image: str) -> str:
    """pjreddie: plain substring replacements, then the extension."""
    for old in ("images", "JPEGImages", "raw"):
        image = image.replace(old, "labels", 1)
    for ext in (".jpg", ".png", ".JPG", ".JPEG"):
        image = image.replace(ext, ".txt", 1)
    return image


def ab_label_path(image: str) -> str:
    """AlexeyAB: only the COCO `/images/<split>/` folders and `/JPEGImages/`; then the file extension."""
    for split in ("train2017", "val2017", "train2014", "val2014"):
        image = image.replace(f"/images/{split}/", f"/labels/{split}/", 1)
    image = image.replace("/JPEGImages/", "/labels/", 1)
    return re.sub(r"\.(jpg|JPG|jpeg|JPEG|png|PNG|bmp|BMP|ppm|PPM|tiff|TIFF)$", ".txt", image)


def listed_images(split: str) -> list[str]:
    lines = (DATA / "shapes" / f"{split}.txt").read_text().splitlines()
    assert lines and all(lines), f"{split}.txt must list images, one per line, no blank lines"
    return lines


@pytest.fixture(scope="module")
def data_config():
    cwd = os.getcwd()
    os.chdir(ROOT)            # Darknet resolves .data paths from the current directory
    try:
        yield parse_data("data/shapes.data")
    finally:
        os.chdir(cwd)


def test_data_file_names_three_classes(data_config):
    assert data_config.classes == 3
    assert data_config.train == "data/shapes/train.txt" and data_config.valid == "data/shapes/valid.txt"
    assert read_names(ROOT / data_config.names) == ("rect", "ellipse", "triangle")
    assert data_config.backup == "backup/"


@pytest.mark.parametrize("split", SPLITS)
def test_lists_are_repo_relative_and_complete(split):
    entries = listed_images(split)
    assert all(not Path(e).is_absolute() and e.startswith(f"data/shapes/JPEGImages/{split}/") for e in entries)
    assert len(set(entries)) == len(entries)
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in (DATA / "shapes" / "JPEGImages" / split).iterdir())
    assert sorted(entries) == on_disk, "every image is listed and every listed image exists"


@pytest.mark.parametrize("split", SPLITS)
def test_both_forks_find_every_label_file(split):
    entries = listed_images(split)
    for image in entries:
        assert pj_label_path(image) == ab_label_path(image), image
        assert (ROOT / ab_label_path(image)).is_file(), image
    labels = sorted((DATA / "shapes" / "labels" / split).iterdir())
    assert len(labels) == len(entries), "no label file without an image"


@pytest.mark.parametrize("split", SPLITS)
def test_labels_parse_and_fit_their_image(split):
    objects = 0
    for image in listed_images(split):
        height, width = cv2.imread(str(ROOT / image)).shape[:2]
        assert 96 <= width <= 160 and 96 <= height <= 160, image
        lines = (ROOT / ab_label_path(image)).read_text().splitlines()
        assert 1 <= len(lines) <= 4, image
        for line in lines:
            fields = line.split()
            assert len(fields) == 5 and re.fullmatch(r"[0-2]", fields[0]), f"{image}: {line!r}"
            x, y, w, h = map(float, fields[1:])
            assert 0 < x < 1 and 0 < y < 1 and 0 < w <= 1 and 0 < h <= 1, f"{image}: {line!r}"
            # pixel-exact edges: the generator draws shapes into integer rectangles
            assert abs((x - w / 2) * width - round((x - w / 2) * width)) < 1e-3
            assert (x - w / 2) > -1e-6 and (x + w / 2) < 1 + 1e-6 and (y - h / 2) > -1e-6 and (y + h / 2) < 1 + 1e-6
            assert w * width >= 14 - 1e-3 and h * height >= 14 - 1e-3
            objects += 1
    assert objects >= 2 * len(listed_images(split))


def test_every_class_occurs_in_both_splits():
    for split in SPLITS:
        classes = set()
        for image in listed_images(split):
            classes |= {line.split()[0] for line in (ROOT / ab_label_path(image)).read_text().splitlines()}
        assert classes == {"0", "1", "2"}, split


def test_script_regenerates_the_committed_dataset(tmp_path):
    """Same seed, same labels and image sizes (JPEG bytes may differ between encoder versions)."""
    make_shapes = _make_shapes()
    make_shapes.write_dataset(tmp_path)
    assert (tmp_path / "shapes.names").read_text() == (DATA / "shapes.names").read_text()
    for split in SPLITS:
        new_lists = (tmp_path / "shapes" / f"{split}.txt").read_text().splitlines()
        assert [Path(p).name for p in new_lists] == [Path(p).name for p in listed_images(split)]
        for image in listed_images(split):
            name = Path(image).stem
            new_label = tmp_path / "shapes" / "labels" / split / f"{name}.txt"
            assert new_label.read_text() == (ROOT / ab_label_path(image)).read_text(), image
            new_image = cv2.imread(str(tmp_path / "shapes" / "JPEGImages" / split / f"{name}.jpg"))
            assert new_image.shape == cv2.imread(str(ROOT / image)).shape, image
    data_text = (tmp_path / "shapes.data").read_text()
    assert re.sub(r"= .*/shapes", "= X/shapes", data_text) == \
        re.sub(r"= .*/shapes", "= X/shapes", (DATA / "shapes.data").read_text())


def test_darknet_py_label_rules_agree_when_available():
    labels = pytest.importorskip("darknet_py.data.labels", reason="data pipeline not merged yet")
    for image in listed_images("train")[:5] + listed_images("valid")[:5]:
        for flavor in ("ab", "pj"):
            assert Path(labels.label_path(image, flavor)).as_posix() == ab_label_path(image)
