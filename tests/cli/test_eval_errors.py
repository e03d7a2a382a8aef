"""Bad input to the evaluation commands: one DarknetError naming the file (and value), never a traceback."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from darknet_py.errors import DarknetError, ImageError, LabelError, UsageError
from helpers.cli import run_cli
from helpers.datasets import add_picture, write_data_file, write_list
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = str(EVAL / "synth" / "cfg" / "tiny3.cfg")
WEIGHTS = str(EVAL / "tiny3" / "trained.weights")


@pytest.fixture
def small_set(tmp_path, monkeypatch) -> Path:
    """Two synth images with their labels under tmp_path/JPEGImages and tmp_path/labels."""
    pictures = [add_picture(tmp_path, f"{name}.jpg", EVAL / "synth" / "JPEGImages" / "valid" / f"{name}.jpg",
                            EVAL / "synth" / "labels" / "valid" / f"{name}.txt")
                for name in ("00000", "00001")]
    write_list(tmp_path / "valid.txt", pictures)
    write_data_file(tmp_path / "obj.data", classes=3, valid="valid.txt", names=f"{EVAL}/synth/obj.names")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(args) -> Exception:
    with pytest.raises(DarknetError) as error:      # --debug: the error itself instead of its one line
        run_cli("--debug", *args)
    return error.value


def test_label_class_outside_the_model(small_set):
    (small_set / "labels" / "00001.txt").write_text("7 0.5 0.5 0.2 0.2\n")
    error = _error(["detector", "map", "obj.data", CFG, WEIGHTS])
    assert isinstance(error, LabelError) and error.file.endswith("labels/00001.txt") and error.value == "7"


def test_unreadable_image_in_the_list(small_set):
    (small_set / "JPEGImages" / "00001.jpg").write_bytes(b"not a jpeg")
    error = _error(["detector", "valid", "obj.data", CFG, WEIGHTS])
    assert isinstance(error, ImageError) and error.file.endswith("00001.jpg")


def test_map_needs_as_many_names_as_classes(small_set):
    (small_set / "four.names").write_text("a\nb\nc\nd\n")
    (small_set / "obj.data").write_text("classes=3\nvalid=valid.txt\nnames=four.names\n")
    error = _error(["detector", "map", "obj.data", CFG, WEIGHTS])
    assert error.file.endswith("four.names") and "classes=3" in str(error)


def test_points_must_be_0_or_at_least_2(small_set):
    assert isinstance(_error(["detector", "map", "obj.data", CFG, WEIGHTS, "-points", "1"]), UsageError)


def test_map_warns_that_letter_box_flag_is_ignored(small_set):
    result = run_cli("detector", "map", "obj.data", CFG, WEIGHTS, "-letter_box")
    assert re.search(r"^warning: .*ignores -letter_box", result.err, re.M), result.err    # the CLI's warning line
    assert result.code == 0
    assert "mean average precision (mAP@0.50)" in result.output


def test_cli_prints_one_line_and_exits_1(small_set):
    result = run_cli("detector", "test", "obj.data", CFG, WEIGHTS, "missing.jpg")
    assert result.code == 1
    err = result.err
    assert "missing.jpg" in err and "Traceback" not in err
