"""Multi-process training (torchrun, gloo on CPU). With `--global-batch` it makes the single-process update for
the same global batch; by default (`-gpus` as Darknet) each process trains a batch of its own.

See darknet_py/train/distributed.py for how the B images of an iteration are split over the ranks. Without
batch norm every parameter must match a one-process run (<= 1e-5 relative, per tensor) in both split modes.
With batch norm and whole micro-batches per rank the learned parameters still match (each micro-batch is
normalised over the same images); the running statistics do not, by design: they are averaged over ranks
instead of being a sequential EMA over the micro-batches."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from darknet_py.network import parse_cfg
from darknet_py.network import Network
from darknet_py.weights import load_weights
from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.train_runs import run_train, train_command, train_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    make_dataset(root)
    return root


def _torchrun(root: Path, *args: str) -> subprocess.CompletedProcess:
    launcher = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m",
                                                                           "torch.distributed.run"]
    command = launcher + ["--standalone", "--nproc_per_node", "2"] + train_command(*args)[1:]
    return subprocess.run(command, cwd=root, env=train_env(), capture_output=True, text=True, timeout=600)


def _final(root: Path) -> dict[str, torch.Tensor]:
    network = Network(parse_cfg(root / "tiny.cfg"))
    load_weights(network, root / "backup" / "tiny_final.weights")
    return network.state_dict()


def _train_both(dataset: Path, root: Path, **cfg) -> tuple[dict, dict, str]:
    outputs = {}
    for name in ("one", "two"):
        data = write_tiny_data(root / name, dataset)
        (root / name / "tiny.cfg").write_text(tiny_cfg(max_batches=3, burn_in=0, **cfg))
        run = run_train(root / name, data, "tiny.cfg", "--seed", "2") if name == "one" else \
            _torchrun(root / name, data, "tiny.cfg", "--seed", "2", "--global-batch")
        assert run.returncode == 0, run.stderr[-3000:]
        outputs[name] = run.stdout
    assert sorted(p.name for p in (root / "two" / "backup").iterdir()) == sorted(
        p.name for p in (root / "one" / "backup").iterdir())                       # rank 0 alone writes
    return _final(root / "one"), _final(root / "two"), outputs["two"]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm().clamp_min(1e-12))


@pytest.mark.parametrize("subdivisions", [2, 1], ids=["whole-micro-batches", "split-micro-batches"])
def test_two_processes_make_the_single_process_update(dataset, tmp_path, subdivisions):
    one, two, out = _train_both(dataset, tmp_path, subdivisions=subdivisions, batch_normalize=False)
    for name, tensor in one.items():
        assert _relative(tensor, two[name]) <= 1e-5, name
    assert out.count(" avg loss, ") == 3                                           # one console: rank 0


def test_batchnorm_learned_parameters_match_running_statistics_are_averaged(dataset, tmp_path):
    one, two, _ = _train_both(dataset, tmp_path, subdivisions=2, batch_normalize=True)
    learned = [n for n in one if not n.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert any(n.endswith("bn.weight") for n in learned)
    for name in learned:
        assert _relative(one[name], two[name]) <= 1e-5, name
    running = [n for n in one if n.endswith("running_var")]
    assert any(_relative(one[n], two[n]) > 1e-5 for n in running)


def test_gpus_as_darknet_each_rank_trains_a_batch_lr_times_n(dataset, tmp_path):
    """`-gpus 0,1` (on CPU for the test): each update trains 2 batches of B=4 (rank r: images r·4..r·4+3 of the
    8 loaded), lr x 2, and counts 2 iterations (Darknet's train_networks), so max_batches=6 takes 3 updates.
    Independent formula: with gradients averaged over the ranks, that is one process training batch=8
    (the same 8 images, subdivisions doubled) at twice the learning rate for 3 iterations:
    w -= 2·lr · (g_0 + g_1) / 8 = lr · (g_0 + g_1) / 4."""
    one, two = tmp_path / "one", tmp_path / "two"
    data_one, data_two = write_tiny_data(one, dataset), write_tiny_data(two, dataset)
    (one / "tiny.cfg").write_text(tiny_cfg(max_batches=3, burn_in=0, batch=8, subdivisions=4, learning_rate=0.02,
                                           batch_normalize=False))
    (two / "tiny.cfg").write_text(tiny_cfg(max_batches=6, burn_in=0, batch=4, subdivisions=2, learning_rate=0.01,
                                           batch_normalize=False))
    single = run_train(one, data_one, "tiny.cfg", "--seed", "2")
    assert single.returncode == 0, single.stderr[-3000:]
    gpus = run_train(two, data_two, "tiny.cfg", "--seed", "2", "-gpus", "0,1")
    assert gpus.returncode == 0, gpus.stderr[-3000:]
    assert "Learning Rate: 0.02, " in gpus.stdout
    iterations = [line.split(":")[0].strip() for line in gpus.stdout.splitlines() if " avg loss, " in line]
    assert iterations == ["2", "4", "6"]
    a, b = _final(one), _final(two)
    for name, tensor in a.items():
        assert _relative(tensor, b[name]) <= 1e-5, name
    from helpers.train_runs import weights_arrays
    assert weights_arrays(one / "backup" / "tiny_final.weights")[0].seen == \
        weights_arrays(two / "backup" / "tiny_final.weights")[0].seen == 24
