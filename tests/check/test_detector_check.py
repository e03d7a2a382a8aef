"""`detector check` on a copy of the embedded shapes data set: the clean copy passes, and a deliberately broken
copy gets every planted problem reported with its file (and line)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from darknet_py.check import ERROR, WARNING, check_dataset
from darknet_py.errors import CfgError, DataFileError, ImageError, LabelError
from helpers.cli import run_cli
from helpers.datasets import add_picture, write_data_file, write_list, write_names
from helpers.paths import ROOT

REPO = ROOT
SHAPES = REPO / "data" / "shapes"
SHAPES_CFG = REPO / "cfg" / "shapes-tiny.cfg"
N_IMAGES = 12


def shapes_dataset(root: Path, n: int = N_IMAGES) -> Path:
    """A Darknet tree (JPEGImages/ + labels/) with the first ``n`` shapes images; returns the .data path."""
    listed = [add_picture(root, source.name, source, SHAPES / "labels" / "train" / f"{source.stem}.txt", "train")
              for source in sorted((SHAPES / "JPEGImages" / "train").glob("*.jpg"))[:n]]
    write_list(root / "train.txt", listed)
    write_names(root / "obj.names", ["rect", "ellipse", "triangle"])
    shutil.copy(SHAPES_CFG, root / "obj.cfg")
    return write_data_file(root / "obj.data", " = ", classes=3, train=root / "train.txt", names=root / "obj.names",
                           backup=root / "backup")


@pytest.fixture
def dataset(tmp_path) -> Path:
    if not SHAPES.is_dir():
        pytest.skip("the embedded data/shapes data set is not in this checkout")
    return shapes_dataset(tmp_path / "ds")


def _image(data: Path, k: int) -> Path:
    return sorted((data.parent / "JPEGImages" / "train").glob("*.jpg"))[k]


def _label(data: Path, k: int) -> Path:
    return data.parent / "labels" / "train" / (_image(data, k).stem + ".txt")


def _append(path: Path, text: str) -> int:
    """Append lines; returns the line number of the first one appended."""
    before = path.read_text()
    if before and not before.endswith("\n"):
        before += "\n"
    path.write_text(before + text)
    return before.count("\n") + 1


def test_clean_copy_passes(dataset):
    report = check_dataset(dataset, dataset.parent / "obj.cfg")
    assert report.ok and report.findings == [], report.format()
    result = run_cli("detector", "check", dataset, dataset.parent / "obj.cfg")
    assert result.code == 0, result.err
    out = result.out
    assert "check passed: 0 error(s), 0 warning(s)" in out
    assert f"{N_IMAGES} listed, {N_IMAGES} found, {N_IMAGES} with label files" in out


def _plant_problems(data: Path) -> dict:
    """Break the copy in every way the checker knows; returns code -> (severity, file, line, error type)."""
    root = data.parent
    train = root / "train.txt"
    planted = {}
    missing = root / "JPEGImages" / "train" / "gone.jpg"
    line = _append(train, f"{missing}\n")
    planted["image-missing"] = (ERROR, train, line, ImageError)
    line = _append(train, f"{_image(data, 0)}\n")
    planted["list-duplicate"] = (WARNING, train, line, DataFileError)
    _image(data, 1).write_bytes(b"this is not a jpeg" * 10)
    planted["image-unreadable"] = (ERROR, _image(data, 1), None, ImageError)
    _label(data, 2).unlink()
    planted["label-missing"] = (WARNING, _image(data, 2), None, LabelError)
    line = _append(_label(data, 3), "1 0.5 0.5 0.2\n0 0.5 0.5 0.2 0.2\n")
    planted["label-parse"] = (ERROR, _label(data, 3), line, LabelError)
    line = _append(_label(data, 4), "3 0.5 0.5 0.2 0.2\n")
    planted["label-class"] = (ERROR, _label(data, 4), line, LabelError)
    line = _append(_label(data, 5), "0 64 48 20 30\n")
    planted["label-range"] = (ERROR, _label(data, 5), line, LabelError)
    line = _append(_label(data, 6), "0 0.5 0.5 0.004 0.2\n")       # 0.5 px of the 128-px network input
    planted["label-dropped"] = (WARNING, _label(data, 6), line, LabelError)
    first = _label(data, 7).read_text().splitlines()[0]
    line = _append(_label(data, 7), first + "\n")
    planted["label-duplicate"] = (WARNING, _label(data, 7), line, LabelError)
    (root / "obj.names").write_text("rect\nellipse\n")
    planted["names"] = (ERROR, root / "obj.names", None, DataFileError)
    cfg = root / "obj.cfg"
    text = cfg.read_text().splitlines()
    yolo_line = text.index("[yolo]") + 1                            # first [yolo]: classes=4, conv filters 24
    text[text.index("classes=3")] = "classes=4"
    conv_line = max(i for i, t in enumerate(text[:yolo_line - 1]) if t == "[convolutional]") + 1
    cfg.write_text("\n".join(text) + "\n")
    planted["cfg-classes"] = (ERROR, cfg, yolo_line, CfgError)
    planted["cfg-filters"] = (ERROR, cfg, conv_line, CfgError)
    return planted


def test_broken_copy_reports_every_planted_problem(dataset):
    planted = _plant_problems(dataset)
    report = check_dataset(dataset, dataset.parent / "obj.cfg")
    for code, (severity, file, line, error_type) in planted.items():
        found = [f for f in report.by_code(code) if Path(f.file) == file and (line is None or f.line == line)]
        assert found, f"{code} not reported for {file}:{line}\n{report.format(10)}"
        assert found[0].severity == severity and found[0].error_type is error_type, found[0]
    assert not report.ok
    captured = run_cli("detector", "check", dataset, dataset.parent / "obj.cfg")
    assert captured.code == 1
    assert "check FAILED" in captured.out and "Traceback" not in captured.err
    assert captured.err.startswith(f"darknet_py: error: {dataset}: the data set check found")
    for code, (_, file, line, _) in planted.items():
        where = f"{file}:{line}:" if line else f"{file}:"
        assert where in captured.out, (code, where)


def test_label_parse_says_what_is_lost(dataset):
    label = _label(dataset, 0)
    label.write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n1 0.3 0.3 0.1 0.1\n2 0.7 0.7 0.1 0.1\n")
    [finding] = check_dataset(dataset, fast=True).by_code("label-parse")
    assert finding.line == 2 and "4 fields" in finding.message and "2 line(s) after it are lost" in finding.hint


def test_fast_mode_skips_decoding_but_not_labels(dataset):
    _image(dataset, 1).write_bytes(b"garbage")
    _append(_label(dataset, 0), "5 0.5 0.5 0.1 0.1\n")
    report = check_dataset(dataset, fast=True)
    assert report.by_code("image-unreadable") == [] and "image-unreadable" in report.skipped
    assert len(report.by_code("label-class")) == 1


def test_empty_image_is_caught_in_fast_mode(dataset):
    _image(dataset, 0).write_bytes(b"")
    [finding] = check_dataset(dataset, fast=True).by_code("image-unreadable")
    assert finding.file == str(_image(dataset, 0)) and "empty" in finding.message


def test_missing_label_is_an_error_for_pj_and_names_the_path_tried(dataset):
    _label(dataset, 0).unlink()
    [finding] = check_dataset(dataset, fast=True, flavor="pj").by_code("label-missing")
    assert finding.severity == ERROR and str(_label(dataset, 0)) in finding.message
    assert "pjreddie rule" in finding.hint


def test_labels_laid_out_for_the_other_fork(tmp_path):
    """`images/` -> `labels/` is a pjreddie rule only: AB reads the .txt beside the image; the hint says so."""
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    shutil.copy(sorted((SHAPES / "JPEGImages" / "train").glob("*.jpg"))[0], root / "images" / "a.jpg")
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "train.txt").write_text(f"{root / 'images' / 'a.jpg'}\n")
    (root / "obj.names").write_text("a\n")
    (root / "obj.data").write_text(f"classes=1\ntrain={root / 'train.txt'}\nnames={root / 'obj.names'}\n")
    assert check_dataset(root / "obj.data", flavor="pj", fast=True).findings == []
    [finding] = check_dataset(root / "obj.data", flavor="ab", fast=True).by_code("label-missing")
    assert finding.severity == WARNING and str(root / "images" / "a.txt") in finding.message
    assert str(root / "labels" / "a.txt") in finding.hint and "--flavor pj" in finding.hint


def test_unmapped_image_extension(dataset):
    image = _image(dataset, 0)
    gif = image.with_suffix(".gif")
    image.rename(gif)
    train = dataset.parent / "train.txt"
    train.write_text(train.read_text().replace(str(image), str(gif)))
    [finding] = check_dataset(dataset, fast=True).by_code("label-missing")
    assert finding.severity == ERROR and finding.file == str(gif) and "extension" in finding.message


def test_non_finite_and_zero_size_boxes(dataset):
    label = _label(dataset, 0)
    first = _append(label, "0 nan 0.5 0.1 0.1\n0 0.5 0.5 0 0.1\n")
    lines = sorted(f.line for f in check_dataset(dataset, fast=True).by_code("label-range"))
    assert lines == [first, first + 1]


def test_pj_drop_rule_is_a_thousandth(dataset):
    """pjreddie drops w or h < 0.001 whatever the network size; AB's rule needs the cfg's size."""
    line = _append(_label(dataset, 0), "0 0.5 0.5 0.0005 0.2\n")
    assert [f.line for f in check_dataset(dataset, flavor="pj", fast=True).by_code("label-dropped")] == [line]
    report = check_dataset(dataset, flavor="ab", fast=True)
    assert report.by_code("label-dropped") == [] and "label-dropped" in report.skipped


def test_unused_class_and_anchor_coverage(dataset):
    for k in range(N_IMAGES):      # relabel every box as class 0 or 1: class 2 never appears
        label = _label(dataset, k)
        label.write_text(label.read_text().replace("2 0.", "1 0."))
    cfg = dataset.parent / "obj.cfg"
    cfg.write_text(cfg.read_text().replace("mask=3,4,5", "mask=4,5").replace("filters=24\n", "filters=TMP\n", 1)
                   .replace("filters=TMP", "filters=16"))
    report = check_dataset(dataset, cfg, fast=True)
    [unused] = report.by_code("class-unused")
    assert "2 'triangle'" in unused.message and unused.file == str(dataset)
    coverage = [f for f in report.by_code("anchors") if "no [yolo] mask uses" in f.message]
    assert coverage and coverage[0].severity == WARNING and coverage[0].line is not None
    assert report.ok, report.format()      # warnings only


def test_average_iou_is_the_calc_anchors_measure(dataset):
    """Independent check: one box 32x32 px and one anchor 16x64 px: IoU = 16*32 / (32*32 + 16*64 - 16*32)."""
    for k in range(N_IMAGES):
        _label(dataset, k).write_text("0 0.5 0.5 0.25 0.25\n")   # 32x32 px at 128x128
    cfg = dataset.parent / "obj.cfg"
    text = cfg.read_text().replace("anchors=26,23,  51,18,  18,50,  48,32,  32,50,  54,52",
                                   "anchors=16,64, 16,64, 16,64, 16,64, 16,64, 16,64")
    cfg.write_text(text)
    report = check_dataset(dataset, cfg, fast=True)
    expected = 16 * 32 / (32 * 32 + 16 * 64 - 16 * 32)
    assert f"average best IoU {expected:.2%}" in report.stats["anchors"]
    [low] = [f for f in report.by_code("anchors") if "poorly" in f.message]
    assert "calc_anchors" in low.hint


def test_data_file_problems(tmp_path, dataset):
    data = dataset.read_text().replace(str(dataset.parent / "train.txt"), str(tmp_path / "nowhere.txt"))
    dataset.write_text(data)
    report = check_dataset(dataset, fast=True)
    [finding] = report.by_code("list")
    assert finding.file == str(dataset) and finding.line == 2 and "nowhere.txt" in finding.message


def test_fast_check_before_training(dataset, capsys):
    from darknet_py.commands.check import fast_check_before_training
    fast_check_before_training(str(dataset), str(dataset.parent / "obj.cfg"), "ab")   # clean: silent
    assert capsys.readouterr().err == ""
    _append(_label(dataset, 0), "7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataFileError) as info:
        fast_check_before_training(str(dataset), str(dataset.parent / "obj.cfg"), "ab")
    assert "--no-check" in info.value.hint
    assert "class id 7 is outside 0..2" in capsys.readouterr().err
