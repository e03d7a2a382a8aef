"""Fault corpus (issue 23 item 6): resuming from `_last` after the cfg changed, and side files
(`<cfg>_last.state.pt`) that do not belong to the weights, are torn, foreign or from an older darknet_py.

Darknet reads only the `.weights`: it continues any cfg from `seen` (iteration = seen / batch) with fresh
momentum. darknet_py does the same, with one warning saying what changed, whenever the saved state would
not mean the same thing any more (fork, batch, network size, classes); a changed `max_batches` or
`subdivisions` keeps the state and continues exactly. Weights that no longer fit the cfg (classes changed)
are one error whose hint says what changed. Never a traceback, never a silently wrong continuation.

Every case starts from the same saved run: 4 iterations of the tiny cfg (batch 2), `_last` at iteration 4."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.train_runs import kill, log_records, park_after_iteration, run_train, run_train_here, weights_arrays

SAVED = dict(batch=2, subdivisions=1, max_batches=4, steps=(3,))
LAST = "backup/tiny_last.weights"


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """A finished 4-iteration run whose `_last` (+ state) was written at iteration 4 (one process, one thread:
    the reference for the bit-identical case)."""
    root = tmp_path_factory.mktemp("saved")
    make_dataset(root / "set", count=4, valid=2)
    write_tiny_data(root, root / "set", savelast=2, saveweights=1000)
    (root / "tiny.cfg").write_text(tiny_cfg(**SAVED))
    done = run_train(root, root / "tiny.data", "tiny.cfg")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (root / "backup" / "tiny_last.state.pt").is_file()
    return root


def _resume_setup(saved_run: Path, tmp_path: Path, **cfg) -> Path:
    """The saved run copied to ``tmp_path`` (its `_final` removed) with the cfg changed to ``cfg``."""
    shutil.copytree(saved_run, tmp_path, dirs_exist_ok=True)
    (tmp_path / "backup" / "tiny_final.weights").unlink()
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(**{**SAVED, "max_batches": 8, **cfg}))
    return write_tiny_data(tmp_path, saved_run / "set", savelast=2, saveweights=1000)   # backups here


def _start(root: Path) -> dict:
    return log_records(root / "backup" / "tiny_train.jsonl", "start")[-1]


def _resumed_iterations(root: Path) -> list[dict]:
    """The iteration records the resumed run logged (after the saved run's, in the same log)."""
    records = log_records(root / "backup" / "tiny_train.jsonl")
    last_start = max(k for k, r in enumerate(records) if r["event"] == "start")
    return [r for r in records[last_start:] if r["event"] == "iteration"]


@pytest.mark.parametrize("change, warned, first_iteration, size", [
    (dict(batch=4), "batch 2 -> 4", 2, 64),                         # Darknet: iteration = seen 8 / batch 4
    (dict(size=96), "width 64 -> 96, height 64 -> 96", 4, 96),      # trains at the new size from the start
])
def test_a_changed_batch_or_size_resumes_from_seen_like_darknet_with_a_warning(saved_run, tmp_path, change,
                                                                              warned, first_iteration, size):
    data = _resume_setup(saved_run, tmp_path, **change)
    done = run_train_here(tmp_path, data, "tiny.cfg", LAST)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (f"warning: {LAST[:-8]}.state.pt: the run was saved with another cfg ({warned}); resuming from the "
            "weights alone, as Darknet does" in done.stderr)
    assert "Traceback" not in done.stderr
    start = _start(tmp_path)
    assert start["iteration"] == first_iteration and start["start"] == "from the weights"
    iterations = _resumed_iterations(tmp_path)
    assert iterations[0]["iteration"] == first_iteration + 1 and iterations[-1]["iteration"] == 8
    assert {(r["width"], r["height"]) for r in iterations} == {(size, size)}


def test_a_changed_flavour_resumes_from_seen_with_a_warning(saved_run, tmp_path):
    data = _resume_setup(saved_run, tmp_path)
    done = run_train_here(tmp_path, data, "tiny.cfg", LAST, "--flavor", "pj")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the run was saved with another cfg (flavor ab -> pj); resuming from the weights alone" in done.stderr
    assert _start(tmp_path)["start"] == "from the weights"


def test_changed_classes_are_one_error_saying_what_changed(saved_run, tmp_path):
    data = _resume_setup(saved_run, tmp_path)
    cfg = tiny_cfg(**{**SAVED, "max_batches": 8}).replace("classes=2", "classes=3").replace("filters=21", "filters=24")
    (tmp_path / "tiny.cfg").write_text(cfg)
    data.write_text(data.read_text().replace("classes=2", "classes=3"))
    (tmp_path / "three.names").write_text("rect\nellipse\nthird\n")
    data.write_text(data.read_text().replace(str(saved_run / "set" / "tiny.names"), str(tmp_path / "three.names")))
    done = run_train_here(tmp_path, data, "tiny.cfg", LAST, "--no-check")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"darknet_py: error: {LAST}: file ends inside layer 7 [convolutional]" in done.stderr
    assert "hint: the run that saved these weights trained another cfg: classes [2] -> [3]" in done.stderr


def test_a_longer_max_batches_continues_exactly(saved_run, tmp_path):
    """max_batches 4 -> 8: the state is kept, and the resumed run equals one that ran 8 iterations in one go."""
    data = _resume_setup(saved_run, tmp_path / "resumed")
    done = run_train(tmp_path / "resumed", data, "tiny.cfg", LAST)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "since the run was saved: max_batches 4 -> 8; continuing with the cfg's values" in done.stdout
    assert _start(tmp_path / "resumed")["start"] == "resumed exactly (full state)"
    reference = tmp_path / "reference"
    write_tiny_data(reference, saved_run / "set", savelast=2, saveweights=1000)
    (reference / "tiny.cfg").write_text(tiny_cfg(**{**SAVED, "max_batches": 8}))
    done = run_train(reference, reference / "tiny.data", "tiny.cfg")
    assert done.returncode == 0, done.stderr[-3000:]
    assert ((tmp_path / "resumed" / "backup" / "tiny_final.weights").read_bytes()
            == (reference / "backup" / "tiny_final.weights").read_bytes())


def test_changed_subdivisions_keep_the_state(saved_run, tmp_path):
    data = _resume_setup(saved_run, tmp_path, subdivisions=2)
    done = run_train_here(tmp_path, data, "tiny.cfg", LAST)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "subdivisions 1 -> 2" in done.stdout and "warning" not in done.stderr.replace("Warning: You set", "")
    assert _start(tmp_path)["start"] == "resumed exactly (full state)"
    assert _resumed_iterations(tmp_path)[0]["iteration"] == 5


def test_a_max_batches_already_reached_saves_final_without_training(saved_run, tmp_path):
    """Darknet's loop runs while iteration < max_batches: nothing to train, `_final` saved at once."""
    data = _resume_setup(saved_run, tmp_path, max_batches=3)
    done = run_train_here(tmp_path, data, "tiny.cfg", LAST)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _resumed_iterations(tmp_path) == [] and _start(tmp_path)["iteration"] == 4
    assert (tmp_path / "backup" / "tiny_final.weights").is_file()


def _rewrite_state(path: Path, edit) -> None:
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def _older(payload: dict) -> None:
    payload["format"] = "darknet_py/train-state/1"
    del payload["run"]


def _broken(payload: dict) -> None:
    del payload["loop"]["iteration"]


@pytest.mark.parametrize("spoil, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]), "unreadable training state"),
    (lambda p: p.write_bytes(b"not a state file\n"), "unreadable training state"),
    (lambda p: torch.save({"some": torch.zeros(3)}, p), "not a darknet_py training state"),
    (lambda p: _rewrite_state(p, _older), "written by an older darknet_py (darknet_py/train-state/1), which did "
                                          "not record the cfg it trained"),
    (lambda p: _rewrite_state(p, lambda d: d.update(weights_sha256="0" * 64)), "saved with other weights"),
], ids=["truncated", "garbage", "foreign", "older-version", "other-run"])
def test_a_state_file_that_cannot_be_used_is_ignored_with_a_warning(saved_run, tmp_path, spoil, message):
    data = _resume_setup(saved_run, tmp_path, max_batches=6)
    spoil(tmp_path / "backup" / "tiny_last.state.pt")
    done = run_train_here(tmp_path, data, "tiny.cfg", LAST)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"warning: backup/tiny_last.state.pt: {message}" in done.stderr
    assert "resuming from the weights alone" in done.stderr and "Traceback" not in done.stderr
    assert _start(tmp_path)["start"] == "from the weights" and _start(tmp_path)["iteration"] == 4


def test_a_state_from_another_run_of_the_same_cfg_is_ignored(saved_run, tmp_path):
    """The side file of a run stopped elsewhere, copied next to these weights: bound to other weights."""
    other = _resume_setup(saved_run, tmp_path / "other")
    assert run_train_here(tmp_path / "other", other, "tiny.cfg", LAST, "--seed", "3").returncode == 0
    data = _resume_setup(saved_run, tmp_path / "here")
    shutil.copy(tmp_path / "other" / "backup" / "tiny_last.state.pt", tmp_path / "here" / "backup")
    done = run_train_here(tmp_path / "here", data, "tiny.cfg", LAST)
    assert done.returncode == 0 and "saved with other weights than the ones loaded" in done.stderr


def test_a_state_whose_content_does_not_fit_is_one_error(saved_run, tmp_path):
    data = _resume_setup(saved_run, tmp_path)
    _rewrite_state(tmp_path / "backup" / "tiny_last.state.pt", _broken)
    done = run_train_here(tmp_path, data, "tiny.cfg", LAST)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert ("darknet_py: error: backup/tiny_last.state.pt: training state does not fit this run (KeyError: "
            "'iteration')" in done.stderr)
    assert "hint: delete it to resume from the weights alone" in done.stderr
    assert not (tmp_path / "backup" / "tiny_final.weights").exists()


@pytest.mark.slow
def test_an_ema_run_killed_and_resumed_writes_the_uninterrupted_runs_ema_weights(saved_run, tmp_path):
    """`ema_alpha`, max_batches 12 (averages from iteration 6), `_last` every 2 iterations: SIGKILL after
    iteration 9 (the last `_last`, and its averages, at 8), resume: the same `_ema.weights` and `_final` as
    one uninterrupted run (CPU, one thread, same seed)."""
    cfg = tiny_cfg(**{**SAVED, "max_batches": 12}).replace("[net]\n", "[net]\nema_alpha=0.9\n")
    finals = {}
    for name in ("reference", "killed"):
        root = tmp_path / name
        data = write_tiny_data(root, saved_run / "set", savelast=2, saveweights=1000)
        (root / "tiny.cfg").write_text(cfg)
        if name == "killed":
            kill(park_after_iteration(root, 9, subprocess.DEVNULL, data, "tiny.cfg"))
            assert weights_arrays(root / "backup" / "tiny_last.weights")[0].seen == 8 * 2
            assert (root / "backup" / "tiny_ema.weights").is_file()
        done = run_train(root, data, "tiny.cfg", *([LAST] if name == "killed" else []))
        assert done.returncode == 0, done.stderr[-3000:]
        finals[name] = [(root / "backup" / f"tiny_{kind}.weights").read_bytes() for kind in ("ema", "final")]
    assert _start(tmp_path / "killed")["start"] == "resumed exactly (full state)"
    assert finals["killed"] == finals["reference"]
    assert finals["reference"][0] != finals["reference"][1]         # the averages are not the weights
