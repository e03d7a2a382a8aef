"""Bad input to the evaluation commands: one DarknetError naming the file (and value), never a traceback."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from darknet_py.cli import cli, main
from darknet_py.errors import DarknetError, ImageError, LabelError, UsageError
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = str(EVAL / "synth" / "cfg" / "tiny3.cfg")
WEIGHTS = str(EVAL / "tiny3" / "trained.weights")


@pytest.fixture
def small_set(tmp_path, monkeypatch) -> Path:
    """Two synth images with their labels under tmp_path/JPEGImages and tmp_path/labels."""
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("00000", "00001"):
        shutil.copy(EVAL / "synth" / "JPEGImages" / "valid" / f"{name}.jpg", tmp_path / "JPEGImages")
        shutil.copy(EVAL / "synth" / "labels" / "valid" / f"{name}.txt", tmp_path / "labels")
    (tmp_path / "valid.txt").write_text(f"{tmp_path}/JPEGImages/00000.jpg\n{tmp_path}/JPEGImages/00001.jpg\n")
    (tmp_path / "obj.data").write_text(f"classes=3\nvalid=valid.txt\nnames={EVAL}/synth/obj.names\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(args) -> Exception:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, DarknetError), result.exception
    return result.exception


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
    with pytest.warns(UserWarning, match="ignores -letter_box"):
        result = CliRunner().invoke(cli, ["detector", "map", "obj.data", CFG, WEIGHTS, "-letter_box"],
                                    catch_exceptions=False)
    assert result.exit_code == 0
    assert "mean average precision (mAP@0.50)" in result.output


def test_cli_prints_one_line_and_exits_1(small_set, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["detector", "test", "obj.data", CFG, WEIGHTS, "missing.jpg"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "missing.jpg" in err and "Traceback" not in err
