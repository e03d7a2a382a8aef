"""`dataset import` end to end: a COCO JSON, a Pascal VOC folder and an Ultralytics data.yaml made from the
same generated pictures give the same Darknet labels (to 1e-6, against the ground truth computed by the
generator) and names; each imported set passes `detector check`, trains 2 iterations with a cfg made by
`cfg custom`, and `detector map` reads the result."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.annotation_sets import NAMES, expected_labels, make_pictures, write_coco, write_voc, write_yolo
from helpers.cli import run_cli
from helpers.paths import ROOT
from helpers.train_runs import run_train_here


def sources(root: Path, pictures) -> dict[str, list]:
    """format -> the `dataset import` arguments after FORMAT, without OUT_DIR's position filled."""
    coco = write_coco(root / "coco", pictures)
    return {"coco": [coco, "--images", root / "coco" / "images"], "voc": [write_voc(root / "voc", pictures)],
            "yolo": [write_yolo(root / "yolo", pictures)]}


def imported(root: Path, fmt: str, args: list, *extra) -> Path:
    out = root / f"out_{fmt}"
    result = run_cli("dataset", "import", fmt, args[0], out, *args[1:], *extra)
    assert result.code == 0, result.output
    return out


def labels_by_stem(out: Path) -> dict[str, np.ndarray]:
    found = {}
    for path in (out / "labels").rglob("*.txt"):
        found[path.stem] = np.loadtxt(path, ndmin=2).reshape(-1, 5)
    return found


@pytest.fixture(scope="module")
def three_imports(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    pictures = make_pictures()
    return pictures, {fmt: imported(root, fmt, args) for fmt, args in sources(root, pictures).items()}


def test_three_formats_give_the_ground_truth_labels_and_names(three_imports):
    pictures, outs = three_imports
    for fmt, out in outs.items():
        labels = labels_by_stem(out)
        assert sorted(labels) == sorted(Path(p["name"]).stem for p in pictures), fmt
        for picture in pictures:
            got = labels[Path(picture["name"]).stem]
            want = expected_labels(picture)
            assert got.shape == want.shape, (fmt, picture["name"])
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{fmt} {picture['name']}")
        assert (out / "obj.names").read_text().splitlines() == list(NAMES), fmt
        train = (out / "train.txt").read_text().splitlines()
        valid = (out / "valid.txt").read_text().splitlines()
        assert len(train) + len(valid) == len(pictures) and all(Path(p).is_absolute() and Path(p).exists()
                                                                 for p in train + valid), fmt


def test_source_splits_are_kept_and_coco_is_split_by_seed(three_imports):
    pictures, outs = three_imports
    want_valid = sorted(Path(p["name"]).stem for p in pictures if p["split"] == "valid")
    for fmt in ("voc", "yolo"):
        assert sorted(Path(p).stem for p in (outs[fmt] / "valid.txt").read_text().split()) == want_valid, fmt
    assert len((outs["coco"] / "valid.txt").read_text().split()) == round(0.2 * len(pictures))


def test_each_import_checks_trains_with_a_custom_cfg_and_maps(three_imports, tmp_path):
    _, outs = three_imports
    for fmt, out in outs.items():
        data = out / "obj.data"
        check = run_cli("detector", "check", data)
        assert check.code == 0 and "check passed" in check.out, check.output
        cfg = tmp_path / f"{fmt}.cfg"
        made = run_cli("cfg", "custom", ROOT / "cfg" / "shapes-tiny.cfg", cfg, "--classes", len(NAMES),
                       "--width", 64, "--height", 64, "--batch", 4, "--subdivisions", 1, "--max-batches", 2,
                       "--data", data)
        assert made.code == 0, made.output
        trained = run_train_here(tmp_path, data, cfg)
        assert trained.returncode == 0, trained.stdout + trained.stderr
        weights = out / "backup" / f"{fmt}_final.weights"
        assert weights.is_file()
        mapped = run_cli("detector", "map", data, cfg, weights, "--device", "cpu", "--workers", 0)
        assert mapped.code == 0 and "mean average precision (mAP@0.50)" in mapped.out, mapped.output


def test_round_trip_darknet_labels_to_coco_and_back(three_imports, tmp_path):
    pictures, outs = three_imports
    out = outs["voc"]
    exported = tmp_path / "export.json"
    result = run_cli("dataset", "export", "coco", out / "obj.data", exported)
    assert result.code == 0, result.output
    again = tmp_path / "again"
    result = run_cli("dataset", "import", "coco", exported, again, "--images", out / "JPEGImages")
    assert result.code == 0, result.output
    before, after = labels_by_stem(out), labels_by_stem(again)
    assert sorted(before) == sorted(after)
    for stem in before:
        np.testing.assert_allclose(after[stem], before[stem], rtol=0, atol=1e-6, err_msg=stem)
    assert (again / "obj.names").read_text() == (out / "obj.names").read_text()


def test_link_makes_symbolic_links_to_the_sources(tmp_path):
    pictures = make_pictures(count=3, valid=1)
    args = sources(tmp_path, pictures)["voc"]
    out = imported(tmp_path, "voc", args, "--link")
    image = out / "JPEGImages" / pictures[0]["name"]
    assert image.is_symlink() and image.resolve() == (tmp_path / "voc" / "JPEGImages" / pictures[0]["name"]).resolve()


def test_round_trip_from_a_darknet_set_made_by_the_test_builder(tmp_path):
    """Labels written by the tests' own builder (PNG pictures of varying height) -> COCO -> import."""
    from helpers.datasets import make_dataset

    data = make_dataset(tmp_path / "set", count=6, valid=2)
    exported = tmp_path / "set.json"
    assert run_cli("dataset", "export", "coco", data, exported).code == 0
    again = tmp_path / "again"
    result = run_cli("dataset", "import", "coco", exported, again, "--images", tmp_path / "set" / "JPEGImages")
    assert result.code == 0, result.output
    for split in ("train", "valid"):
        for label in (tmp_path / "set" / "labels" / split).iterdir():
            np.testing.assert_allclose(np.loadtxt(again / "labels" / split / label.name, ndmin=2),
                                       np.loadtxt(label, ndmin=2), rtol=0, atol=1e-6, err_msg=str(label))
