"""`detector train` reads and parses its cfg once (issue #14): the pre-training check's parse is the one
training uses, and the `-map` network is the trained cfg at batch 1, not a second read of the file."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import darknet_py.network as cfg_module
from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.train_runs import log_records, run_train_here


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """Every `parse_cfg` call, wherever a module imported it from."""
    calls: list[str] = []
    original = cfg_module.parse_cfg

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return original(path, *args, **kwargs)

    import darknet_py.cli  # noqa: F401  - load the command modules before patching their names
    import darknet_py.commands.train  # noqa: F401
    import darknet_py.train.loop  # noqa: F401
    for name, module in list(sys.modules.items()):
        if name.startswith("darknet_py") and getattr(module, "parse_cfg", None) is original:
            monkeypatch.setattr(module, "parse_cfg", counting)
    return calls


@pytest.mark.parametrize("check", [(), ("--no-check",)])
def test_a_short_run_with_map_parses_the_cfg_once(tmp_path: Path, parses, check):
    dataset = tmp_path / "tiny"
    make_dataset(dataset)
    data = write_tiny_data(tmp_path, dataset)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=2))
    done = run_train_here(tmp_path, data, "tiny.cfg", "-map", *check)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(log_records(tmp_path / "backup" / "tiny_train.jsonl", "map")) == 1      # the -map pass ran
    assert [Path(p).name for p in parses] == ["tiny.cfg"]
