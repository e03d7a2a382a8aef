"""`--device` / `-i` on the evaluation commands: one rule shared with `train`, and a clear one-line error when
CUDA is asked for on a machine without it."""
from __future__ import annotations


import pytest
import torch

from darknet_py.device import resolve_device
from darknet_py.errors import UsageError
from helpers.cli import run_cli
from helpers.datasets import write_data_file, write_list
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = EVAL / "synth" / "cfg" / "tiny3.cfg"
WEIGHTS = EVAL / "tiny3" / "trained.weights"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", ["test", "map", "valid", "recall"])
@pytest.mark.parametrize("flags", [["--device", "cuda"], ["--device", "cuda:1"]])
def test_cuda_without_cuda_is_one_clear_error(tmp_path, command, flags):
    data = write_data_file(tmp_path / "obj.data", classes=3, valid=tmp_path / "valid.txt",
                           names=EVAL / "synth" / "obj.names")
    write_list(tmp_path / "valid.txt", [])
    extra = [str(EVAL / "synth" / "JPEGImages" / "valid" / "missing.jpg")] if command == "test" else []
    result = run_cli("detector", command, data, CFG, WEIGHTS, *extra, *flags)
    assert result.code != 0
    assert "--device asks for CUDA but torch sees no CUDA device" in result.err
    assert "Traceback" not in result.err + result.out


def test_cpu_and_defaults():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("cpu", 3) == "cpu"            # -i only picks the GPU when running on CUDA
    if not torch.cuda.is_available():
        assert resolve_device(None) == "cpu"
        assert resolve_device(None, 1) == "cpu"          # AB's CPU build ignores -i too


def test_gpu_index_minus_one_is_the_cpu(capsys):
    """AlexeyAB's `-i -1` runs on the CPU even where CUDA exists; with a CUDA --device it contradicts."""
    assert resolve_device(None, -1) == "cpu"
    assert "ignored" not in capsys.readouterr().err
    with pytest.raises(UsageError, match="disagree"):
        resolve_device("cuda:0", -1) if torch.cuda.is_available() else _pretend_cuda_then("cuda:0", -1)


def _pretend_cuda_then(device, gpu_index):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: True)
        patch.setattr(torch.cuda, "device_count", lambda: 2)
        return resolve_device(device, gpu_index)


@pytest.mark.parametrize("bad", ["gpu", "mps", "cuda:x"])
def test_unknown_device_is_usage_error(bad):
    with pytest.raises(UsageError, match="--device must be cpu, cuda or cuda:N"):
        resolve_device(bad)


def test_gpu_index_rules_with_two_gpus(monkeypatch):
    """What -i and cuda:N resolve to, on a pretend machine with 2 GPUs (no CUDA call is made)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device(None) == "cuda:0"
    assert resolve_device("cuda", 1) == "cuda:1"
    assert resolve_device(None, 1) == "cuda:1"
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device("cuda:1", 1) == "cuda:1"
    with pytest.raises(UsageError, match="name different GPUs"):
        resolve_device("cuda:0", 1)
    with pytest.raises(UsageError, match="there is no GPU 2"):
        resolve_device("cuda", 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda") == "cuda:1"
