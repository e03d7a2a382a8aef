"""`darknet_py export` checks what it is asked before allocating anything: a size the cfg cannot take is one
message naming --width/--height and the cfg's size rule (not the [route] that fails), a size that cannot
fit in memory is refused from the estimate (darknet_py/memory.py) instead of dying in the allocator, and
an empty, folder or folder-less output name is a usage error, never a traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from darknet_py.errors import UsageError
from helpers.cli import run_cli
from helpers.paths import FIXTURES

CFG = FIXTURES / "tiny3" / "tiny3.cfg"            # 128x128, five stride-2 max-pools: multiples of 32
WEIGHTS = FIXTURES / "tiny3" / "trained.weights"


def one_error(result) -> str:
    assert result.code == 1, result
    assert "Traceback" not in result.output and result.err.count("darknet_py: error:") == 1, result.err
    return result.err


@pytest.mark.parametrize("flags,size,hint", [(["--width", "100"], "100x128", "--width 96 --height 128"),
                                             (["--height", "33"], "128x33", "--width 128 --height 32"),
                                             (["--width", "16", "--height", "40"], "16x40", "--width 32 --height 32")])
def test_a_size_the_cfg_cannot_take_names_the_flags_and_the_rule(tmp_path, flags, size, hint):
    err = one_error(run_cli("export", CFG, WEIGHTS, tmp_path / "x.onnx", *flags))
    assert f"--width/--height {size}: the layers of {CFG} downsample the input by 32, so width and height must " \
           "be multiples of 32" in err, err
    assert f"hint: e.g. {hint}" in err and "[route]" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_a_size_that_fits_the_rule_exports(tmp_path, onnxruntime):
    result = run_cli("export", CFG, WEIGHTS, tmp_path / "x.onnx", "--width", "96", "--height", "64")
    assert result.code == 0, result.output
    assert "input images (1, 3, 64, 96)" in result.out


def test_a_size_that_cannot_fit_in_memory_is_refused_before_allocating(tmp_path):
    err = one_error(run_cli("export", CFG, WEIGHTS, tmp_path / "x.onnx", "--width", "160000", "--height", "160000"))
    assert "the network needs at least" in err and "of memory for inference at 160000x160000" in err, err
    assert "hint: lower --width/--height or --batch" in err


@pytest.mark.parametrize("out,says", [("", "the output file name is empty"),
                                      (" ", "the output file name is empty"),
                                      ("{tmp}", "the output is a folder, not a file name"),
                                      ("{tmp}/", "the output is a folder, not a file name"),
                                      ("{tmp}/missing/x.onnx", "the output's folder '{tmp}/missing' does not exist")])
def test_odd_output_names_are_usage_errors(tmp_path, out, says):
    out = out.format(tmp=tmp_path)
    err = one_error(run_cli("export", CFG, WEIGHTS, out))
    assert says.format(tmp=tmp_path) in err, err
    with pytest.raises(UsageError):
        run_cli("--debug", "export", CFG, WEIGHTS, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
