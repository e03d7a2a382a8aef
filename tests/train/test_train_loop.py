"""`darknet_py detector train` end to end on a tiny generated data set (CPU, subprocesses).

Golden behaviour comes from the spec (§7.3 console lines, §7.7 backup names/headers, §6.6 seen/iteration) and,
in the slow test, from the real Debian (pjreddie) darknet, which must load our `_final.weights` and detect
what we detect."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import run_cli
from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.train_runs import log_records, run_train, run_train_here, weights_arrays

AB_LINE = re.compile(r"^ (\d+): (\S+), (\S+) avg loss, (\S+) rate, (\S+) seconds, (\d+) images, (\S+) hours left$")
PJ_LINE = re.compile(r"^(\d+): (\S+), (\S+) avg, (\S+) rate, (\S+) seconds, (\d+) images$")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    make_dataset(root)
    return root


@pytest.mark.slow
def test_ab_run_prints_darknet_lines_and_writes_ab_backups(dataset, tmp_path):
    data = write_tiny_data(tmp_path, dataset, saveweights=50, savelast=20)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=100))
    done = run_train(tmp_path, data, "tiny.cfg", "--seed", "3", "-map")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [AB_LINE.match(line) for line in done.stdout.splitlines()]
    lines = [m for m in lines if m]
    assert [int(m[1]) for m in lines] == list(range(1, 101))
    assert [int(m[6]) for m in lines] == [8 * i for i in range(1, 101)]           # iteration · B images
    assert lines[0][7] == "-1.000000"                                             # AB: estimate comes after
    # rate(1) with burn_in=10, power 4: 0.01 · (1/10)^4; rate(10..) = 0.01 (spec §8)
    assert float(lines[0][4]) == pytest.approx(1e-6, abs=1e-6) and float(lines[20][4]) == 0.01
    loss = [float(m[2]) for m in lines]
    avg = loss[0]
    for value, m in zip(loss, lines):                                             # avg = .9 avg + .1 loss
        avg = 0.9 * avg + 0.1 * value
        assert float(m[3]) == pytest.approx(avg, rel=1e-5, abs=1e-5)
    assert "Loaded: " in done.stdout and "total_loss = " in done.stdout
    assert sum(loss[-10:]) < 0.5 * sum(loss[:10])                                 # it learns
    # -map: every max(4 epochs of 12 images / 8, 100) = 100 iterations (here: at the end) -> _best
    assert " (next mAP calculation at 100 iterations) " in done.stdout
    assert re.search(r"mean_average_precision \(mAP@0\.50\) = \d\.\d{6} \nNew best mAP!", done.stdout)
    # AB: _<N> every saveweights (50), _last every savelast (20) when saveweights > savelast, _final
    backup = tmp_path / "backup"
    assert sorted(p.name for p in backup.glob("*.weights")) == [
        "tiny_100.weights", "tiny_50.weights", "tiny_best.weights", "tiny_final.weights", "tiny_last.weights"]
    assert sorted(p.name for p in backup.iterdir() if not p.name.endswith(".weights")) == [
        "tiny_last.state.pt", "tiny_train.jsonl"]                                  # darknet_py's extras
    saves = [Path(r["path"]).name for r in log_records(backup / "tiny_train.jsonl", "save")]
    # the regular backups of iteration 100 come before its mAP pass (and the _best it writes)
    assert saves == ["tiny_last.weights"] * 2 + ["tiny_50.weights"] + ["tiny_last.weights"] * 2 + [
        "tiny_100.weights", "tiny_last.weights", "tiny_best.weights", "tiny_final.weights"]
    assert len(log_records(backup / "tiny_train.jsonl", "map")) == 1
    header, values = weights_arrays(backup / "tiny_final.weights")
    assert (header.major, header.minor, header.revision, header.seen) == (0, 2, 5, 100 * 8)
    assert np.isfinite(values).all()
    assert weights_arrays(backup / "tiny_50.weights")[0].seen == 400
    assert (tmp_path / "chart.png").is_file() and (tmp_path / "chart_tiny.png").is_file()


def test_clear_and_resume_iteration_from_seen(dataset, tmp_path):
    data = write_tiny_data(tmp_path, dataset)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=4))
    assert run_train_here(tmp_path, data, "tiny.cfg").returncode == 0
    final = tmp_path / "backup" / "tiny_final.weights"
    start = tmp_path / "start.weights"
    start.write_bytes(final.read_bytes())                            # seen = 32: iteration 4 with B = 8
    log = tmp_path / "backup" / "tiny_train.jsonl"
    log.unlink()
    done = run_train_here(tmp_path, data, "tiny.cfg", start, "--max-batches", "6")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["iteration"] for r in log_records(log, "iteration")] == [5, 6]
    assert weights_arrays(final)[0].seen == 48
    log.unlink()
    done = run_train_here(tmp_path, data, "tiny.cfg", start, "-clear", "--max-batches", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["iteration"] for r in log_records(log, "iteration")] == [1, 2]
    assert weights_arrays(final)[0].seen == 16


def test_partial_backbone_starts_at_zero(dataset, tmp_path):
    data = write_tiny_data(tmp_path, dataset)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=3))
    assert run_train_here(tmp_path, data, "tiny.cfg").returncode == 0
    conv = tmp_path / "tiny.conv.4"
    assert run_cli("partial", tmp_path / "tiny.cfg", tmp_path / "backup" / "tiny_final.weights", conv, 4).code == 0
    (tmp_path / "backup" / "tiny_train.jsonl").unlink()
    done = run_train_here(tmp_path, data, "tiny.cfg", conv)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded 2 of 5 layers" in done.stdout
    assert [r["iteration"] for r in log_records(tmp_path / "backup" / "tiny_train.jsonl", "iteration")] == [1, 2, 3]


def test_non_finite_loss_stops_with_diagnosis_and_keeps_last_good_weights(dataset, tmp_path):
    data = write_tiny_data(tmp_path, dataset, saveweights=1000, savelast=1)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=50, learning_rate=1e4, burn_in=0))
    done = run_train_here(tmp_path, data, "tiny.cfg")
    assert done.returncode == 1
    message = done.stderr.strip().splitlines()
    error = next(line for line in message if line.startswith("darknet_py: error:"))
    assert re.search(r"tiny\.cfg: iteration \d+: the loss is (nan|inf)", error)
    assert "[yolo] layer 8" in error and "JPEGImages/train/" in error
    assert "Traceback" not in done.stderr
    backup = tmp_path / "backup"
    assert not (backup / "tiny_final.weights").exists()
    stopped_at = int(re.search(r"iteration (\d+)", error)[1])
    last = weights_arrays(backup / "tiny_last.weights")
    if stopped_at > 1:
        assert last[0].seen == (stopped_at - 1) * 8 and np.isfinite(last[1]).all()


def test_bad_usage_is_one_clear_error(dataset, tmp_path):
    data = write_tiny_data(tmp_path, dataset)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(batch=1, subdivisions=1))
    done = run_train_here(tmp_path, data, "tiny.cfg")
    assert done.returncode == 1 and "batch=1 cannot train" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "tiny.cfg").write_text("[net]\nbatch=8\nwidth=32\nheight=32\nchannels=3\nmax_batches=5\n"
                                       "[convolutional]\nfilters=4\nsize=3\nactivation=leaky\n")
    done = run_train_here(tmp_path, data, "tiny.cfg", "--no-check")
    assert done.returncode == 1 and "tiny.cfg: the cfg has no [yolo] layer" in done.stderr
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=-3))
    done = run_train_here(tmp_path, data, "tiny.cfg", "--no-check")
    assert done.returncode == 1 and "tiny.cfg: max_batches is -3: nothing to train" in done.stderr
    (tmp_path / "tiny.cfg").write_text(tiny_cfg())
    done = run_train_here(tmp_path, data, "tiny.cfg", "missing.weights")
    assert done.returncode == 1 and "missing.weights" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_pj_cli_run_is_loadable_by_debian_darknet_with_equal_detections(dataset, tmp_path, darknet_binary):
    """200 iterations with flavor pj; then the real pjreddie darknet (Debian) runs `detector valid` on our
    `_final.weights` and must list the detections darknet_py's `detector valid --flavor pj` lists."""
    data = write_tiny_data(tmp_path, dataset)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=200))
    done = run_train(tmp_path, data, "tiny.cfg", "--flavor", "pj", "--seed", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [m for m in map(PJ_LINE.match, done.stdout.splitlines()) if m]
    assert [int(m[1]) for m in lines] == list(range(1, 201))
    loss = [float(m[2]) for m in lines]
    assert sum(loss[-20:]) < 0.2 * sum(loss[:20]), (loss[:20], loss[-20:])
    # PJ: <base>.backup every 100, <base>_<i>.weights every 100 below 1000, <base>_final at the end
    backup = tmp_path / "backup"
    assert sorted(p.name for p in backup.iterdir()) == [
        "tiny.backup", "tiny.state.pt", "tiny_100.weights", "tiny_200.weights", "tiny_final.weights",
        "tiny_train.jsonl"]
    header, _ = weights_arrays(backup / "tiny_final.weights")
    assert (header.major, header.minor, header.revision, header.seen) == (0, 2, 0, 1600)

    results = tmp_path / "results"
    results.mkdir()
    darknet = subprocess.run([darknet_binary, "detector", "valid", str(data), "tiny.cfg",
                              "backup/tiny_final.weights", "-out", "dn_"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
    assert darknet.returncode == 0, darknet.stderr[-2000:]
    assert run_cli("detector", "valid", data, tmp_path / "tiny.cfg", backup / "tiny_final.weights",
                   "-out", results / "py_", "--flavor", "pj").code == 0
    for name in ("rect", "ellipse"):
        theirs = _valid_lines(results / f"dn_{name}.txt")
        mine = _valid_lines(results / f"py_{name}.txt")
        assert len(theirs) == len(mine) > 0
        for image, prob, box in theirs:
            close = [m for m in mine if m[0] == image and abs(m[1] - prob) <= 1e-4
                     and np.abs(m[2] - box).max() <= 0.01]
            assert close, (name, image, prob, box)


def _valid_lines(path: Path) -> list[tuple[str, float, np.ndarray]]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(r[0], float(r[1]), np.array([float(v) for v in r[2:6]])) for r in rows]


def test_amp_trains_close_to_float32(dataset, tmp_path):
    data = write_tiny_data(tmp_path, dataset)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=3))
    losses = {}
    for flag in ((), ("--amp",)):
        (tmp_path / "backup").mkdir(exist_ok=True)
        for old in (tmp_path / "backup").iterdir():
            old.unlink()
        done = run_train_here(tmp_path, data, "tiny.cfg", "--seed", "4", *flag)
        assert done.returncode == 0, done.stderr[-3000:]
        losses[flag] = [r["loss"] for r in log_records(tmp_path / "backup" / "tiny_train.jsonl", "iteration")]
    assert losses[()] != losses[("--amp",)]
    assert np.allclose(losses[()], losses[("--amp",)], rtol=0.02)


def test_cuda_arithmetic_flags_reach_torch(dataset, tmp_path):
    """--tf32 and --cudnn-benchmark are opt-in: a run without them turns both off (set by an earlier run in
    the same process or not), a run with them turns them on (they change nothing on the CPU)."""
    import torch

    data = write_tiny_data(tmp_path, dataset)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=1))
    before = torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        for flags, expected in (((), False), (("--tf32", "--cudnn-benchmark"), True), ((), False)):
            for old in (tmp_path / "backup").glob("*"):
                old.unlink()
            done = run_train_here(tmp_path, data, "tiny.cfg", *flags)
            assert done.returncode == 0, done.stderr[-3000:]
            assert torch.backends.cudnn.benchmark is expected, flags
            assert torch.backends.cudnn.allow_tf32 is expected and torch.backends.cuda.matmul.allow_tf32 is expected
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_map_inputs_checked_before_training(dataset, tmp_path):
    names = tmp_path / "three.names"
    names.write_text("a\nb\nc\n")
    data = write_tiny_data(tmp_path, dataset, names=names)
    (tmp_path / "tiny.cfg").write_text(tiny_cfg())
    done = run_train_here(tmp_path, data, "tiny.cfg", "-map")
    assert done.returncode == 1 and "three.n" in done.stderr                    # the dataset checker's words
    done = run_train_here(tmp_path, data, "tiny.cfg", "-map", "--no-check")
    assert done.returncode == 1 and "three.names: has 3 names but the cfg has classes=2" in done.stderr
    assert not (tmp_path / "backup").exists()
