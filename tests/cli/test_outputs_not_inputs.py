"""No command writes over one of its own inputs (darknet_py/outputs.py): an output that is an input by path,
symlink or hard link, or a file a command would write into a folder that is an input there, is refused
before any work with one message naming both, exit 1, and the input is left as it was."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from darknet_py.errors import UsageError
from darknet_py.outputs import refuse_overwriting_inputs
from helpers.cli import run_cli
from helpers.paths import FIXTURES

TINY3 = FIXTURES / "tiny3"


# -- the rule ---------------------------------------------------------------------------------------------------

def test_the_same_path_however_spelled_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    weights = tmp_path / "x.weights"
    weights.write_bytes(b"w")
    with pytest.raises(UsageError) as error:
        refuse_overwriting_inputs("export", {"weights file": str(weights)},
                                  {"output": str(tmp_path / "sub" / ".." / "x.weights")})
    assert str(error.value).startswith(f"export: output '{tmp_path}/sub/../x.weights' is the input weights "
                                       f"file '{weights}'")


def test_a_missing_output_that_resolves_to_an_input_is_refused(tmp_path, monkeypatch):
    """Nothing exists yet: the resolved names alone decide (a cfg given as ./a.cfg, the output as a.cfg)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="is the input cfg file"):
        refuse_overwriting_inputs("x", {"cfg file": "./a.cfg"}, {"output": "a.cfg"})


@pytest.mark.parametrize("link_side", ["output", "input"])
def test_a_symlink_on_either_side_is_refused(tmp_path, link_side):
    real, link = tmp_path / "real.avi", tmp_path / "link.avi"
    real.write_bytes(b"video")
    link.symlink_to(real)
    given_in, given_out = (real, link) if link_side == "output" else (link, real)
    with pytest.raises(UsageError, match="is the input video"):
        refuse_overwriting_inputs("detector demo", {"video": given_in}, {"-out_filename": given_out})


def test_a_hard_link_is_refused(tmp_path):
    real, link = tmp_path / "a.json", tmp_path / "b.json"
    real.write_text("{}")
    os.link(real, link)
    with pytest.raises(UsageError, match="is the input names file"):
        refuse_overwriting_inputs("x", {"names file": [tmp_path / "other", real]}, {"-out": link})


def test_a_file_written_into_an_output_folder_that_is_an_input_is_refused(tmp_path):
    (tmp_path / "dog.jpg").write_bytes(b"jpeg")
    (tmp_path / "cat.png").write_bytes(b"png")
    with pytest.raises(UsageError, match=r"'.*dog\.jpg' is the input image '.*dog\.jpg'"):
        refuse_overwriting_inputs("detector test", {"image": [tmp_path / "cat.png", tmp_path / "dog.jpg"]}, {},
                                  output_dirs={"--save-dir picture": (tmp_path, ["cat.jpg", "dog.jpg"])})


def test_different_files_and_absent_outputs_pass(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("a")                    # same content, another file
    refuse_overwriting_inputs("x", {"input": [a], "list": None}, {"output": b, "-out": None, "-json": ""})
    refuse_overwriting_inputs("x", {"image": tmp_path / "cat.png"}, {},
                              output_dirs={"--save-dir picture": (tmp_path, ["cat.jpg"])})


# -- export, convert, partial -----------------------------------------------------------------------------------

@pytest.fixture
def model(tmp_path) -> tuple[Path, Path]:
    cfg, weights = tmp_path / "tiny3.cfg", tmp_path / "tiny3.weights"
    shutil.copy(TINY3 / "tiny3.cfg", cfg)
    shutil.copy(TINY3 / "trained.weights", weights)
    return cfg, weights


def refused(args: list, kept: Path, *says: str) -> None:
    """The command exits 1 with one message that says all of ``says``, and ``kept`` is unchanged."""
    before = kept.read_bytes()
    result = run_cli(*args)
    assert result.code == 1, result
    assert "Traceback" not in result.output and result.err.count("darknet_py: error:") == 1, result.err
    for text in says:
        assert text in result.err, (text, result.err)
    assert kept.read_bytes() == before


def hard_link(path: Path) -> Path:
    link = path.with_name("hard_" + path.name)
    os.link(path, link)
    return link


def sym_link(path: Path) -> Path:
    link = path.with_name("sym_" + path.name)
    link.symlink_to(path)
    return link


@pytest.mark.parametrize("victim", ["weights", "cfg", "weights hard link", "cfg symlink"])
def test_export_refuses_to_write_over_its_cfg_or_weights(model, victim):
    cfg, weights = model
    target = {"weights": weights, "cfg": cfg, "weights hard link": hard_link(weights),
              "cfg symlink": sym_link(cfg)}[victim]
    kind = "cfg" if "cfg" in victim else "weights"
    refused(["export", cfg, weights, target], model[kind == "weights"],
            f"export: output '{target}' is the input {kind} file")


@pytest.mark.parametrize("victim", ["weights", "cfg", "hard link"])
def test_convert_refuses_to_write_over_its_cfg_or_weights(model, victim):
    cfg, weights = model
    pt = weights.with_suffix(".pt")
    assert run_cli("convert", cfg, weights, pt).code == 0
    target = {"weights": pt, "cfg": cfg, "hard link": hard_link(pt)}[victim]
    refused(["convert", cfg, pt, target], cfg if victim == "cfg" else pt,
            f"convert: output '{target}' is the input {'cfg' if victim == 'cfg' else 'weights'} file")


@pytest.mark.parametrize("victim", ["weights", "cfg", "symlink"])
def test_partial_refuses_to_write_over_its_cfg_or_weights(model, victim):
    cfg, weights = model
    target = {"weights": weights, "cfg": cfg, "symlink": sym_link(weights)}[victim]
    refused(["partial", cfg, weights, target, "3"], cfg if victim == "cfg" else weights,
            f"partial: output '{target}' is the input")
