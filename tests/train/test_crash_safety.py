"""Training safety through the real CLI (`python -m darknet_py detector train`):

* SIGKILL while a backup (`_last.weights` or its state file) is being written: every time the newest
  `_last.weights` loads and the next run resumes from the iteration it holds;
* a stop by signal (during training or start-up) ends with one line and exit status 128 + signal, never 0;
* one run per backup folder (a second one stops before touching it; a stale lock is taken over);
* a full disk on the log or the state file is one error, and the `.weights` stay intact;
* a network that cannot fit (even under `ulimit -v`) is refused from the cfg with the estimate;
* a NaN (weights holding one, a learning rate that diverges) stops training with a diagnosis that names the
  iteration, the [yolo] layer and the images (and the weights file on the first iteration after loading),
  and leaves only finite backups behind;
* a label with a huge width is refused before training, naming the label file and line.

Processes are parked at exact moments by the test-only pause points of darknet_py/faults.py (the process
prints a line on stderr and waits on its stdin): no test races a clock or sleeps.
"""
from __future__ import annotations

import os
import random
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from darknet_py.network import load_network
from darknet_py.weights import save_weights
from helpers.cli import run_cli
from helpers.datasets import add_picture, write_data_file, write_list, write_names
from helpers.train_runs import finish, kill, release, start_paused, train_env, wait_for_pause

BATCH = 2
ITERATION_LINE = re.compile(r"^\s*(\d+): [-+\w.]+, ", re.MULTILINE)


def make_training_setup(root: Path, side_outputs: int = 8, learning_rate: float = 0.001) -> tuple[Path, Path]:
    """Three 48x40 noise images with one box each, a 1-class .data saving `_last` every iteration, and a tiny
    cfg. Its unused [connected] side branch (``side_outputs`` x 1024 weights) makes every backup big enough
    that a kill can land in the middle of writing it."""
    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        picture = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        cv2.rectangle(picture, (10, 8), (30, 28), (255, 0, 0), -1)
        images.append(add_picture(root, f"{i}.jpg", picture, "0 0.4167 0.45 0.4167 0.5\n"))
    write_list(root / "train.txt", images)
    write_names(root / "obj.names", ["box"])
    data = write_data_file(root / "obj.data", classes=1, train=root / "train.txt", names=root / "obj.names",
                           backup=root / "backup", savelast=1, saveweights=100000)
    cfg = root / "tiny.cfg"
    cfg.write_text(f"""[net]
batch={BATCH}
subdivisions=1
width=32
height=32
channels=3
momentum=0.9
decay=0.0005
learning_rate={learning_rate}
burn_in=0
max_batches=100000
policy=constant

[convolutional]
batch_normalize=1
filters=4
size=3
stride=2
pad=1
activation=leaky

[connected]
output={side_outputs}
activation=linear

[route]
layers=-2

[convolutional]
size=1
stride=1
pad=1
filters=12
activation=linear

[yolo]
mask=0,1
anchors=8,8, 16,16
classes=1
num=2
""")
    return data, cfg


def train_args(data: Path, cfg: Path, *extra: str, max_batches: int = 100000) -> list[str]:
    return ["detector", "train", str(data), str(cfg), *extra, "--max-batches", str(max_batches), "--device", "cpu",
            "--workers", "0", "--no-progress"]


def train_command(data: Path, cfg: Path, *extra: str, max_batches: int = 100000) -> list[str]:
    return [sys.executable, "-m", "darknet_py", *train_args(data, cfg, *extra, max_batches=max_batches)]


def _seen(weights: Path) -> int:
    major, minor, _ = struct.unpack_from("<3i", weights.read_bytes())
    assert major * 10 + minor >= 2
    return struct.unpack_from("<Q", weights.read_bytes(), 12)[0]


def _saving(backup: Path) -> bool:
    """A backup is being written: a writer's temp file exists."""
    return any(".tmp" in name for name in os.listdir(backup)) if backup.is_dir() else False


@pytest.mark.slow
def test_sigkill_while_a_backup_is_written_always_leaves_a_resumable_last_weights(tmp_path):
    """Each round parks the writer between writing a temp file and renaming it, after 0-2 earlier saves,
    and kills it there: odd rounds while `_last.weights` is written, even rounds while its state file is
    (the weights are renamed, the state is not: it must not be applied to them)."""
    data, cfg = make_training_setup(tmp_path, side_outputs=1024)
    backup, last = tmp_path / "backup", tmp_path / "backup" / "tiny_last.weights"
    rng = random.Random(7)
    expected_first = 1
    for round_ in range(8):
        weights = [str(last)] if last.exists() else []
        target = "tiny_last.weights" if round_ % 2 else "tiny_last.state.pt"
        log = tmp_path / f"round{round_}.txt"
        with open(log, "w") as out:
            process = start_paused(train_command(data, cfg, *weights, "--seed", str(round_), max_batches=100),
                                   f"write:{target}", out)
            try:
                for _ in range(rng.randrange(3)):
                    wait_for_pause(process)
                    release(process)
                wait_for_pause(process)
                assert _saving(backup), "parked between the temp file and the rename"
                process.send_signal(signal.SIGKILL)
                process.wait()
            finally:
                kill(process)
        assert process.returncode == -signal.SIGKILL
        first = [int(n) for n in ITERATION_LINE.findall(log.read_text())]
        assert first and first[0] == expected_first, (round_, first[:3], log.read_text()[-2000:])
        network = load_network(str(cfg), str(last), batch=1)   # complete: loads with no error
        assert all(torch.isfinite(p).all() for p in network.parameters())
        assert network.seen == _seen(last) and network.seen % BATCH == 0
        expected_first = network.seen // BATCH + 1
    # The last kill too: a final run resumes from it, finishes, and removes the killed writers' temp files.
    done = subprocess.run(train_command(data, cfg, str(last), max_batches=expected_first), capture_output=True,
                          text=True, env=train_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [int(n) for n in ITERATION_LINE.findall(done.stdout)] == [expected_first]
    assert (backup / "tiny_final.weights").exists()
    assert not _saving(backup), os.listdir(backup)


# -- stops by signal: one line, exit 128 + signal, never 0 -------------------------------------------------------

def test_sigterm_during_training_saves_last_and_exits_143(tmp_path):
    data, cfg = make_training_setup(tmp_path)
    with open(tmp_path / "out.txt", "w") as out:
        process = start_paused(train_command(data, cfg, max_batches=5), "write:tiny_last.weights", out)
        try:
            wait_for_pause(process)                      # iteration 1 is being saved
            process.send_signal(signal.SIGTERM)
            err = finish(process)
        finally:
            kill(process)
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "Traceback" not in err
    last = tmp_path / "backup" / "tiny_last.weights"
    assert f"darknet_py: stopped by SIGTERM at iteration 1; resume from {last}" in err
    assert _seen(last) == BATCH and not (tmp_path / "backup" / "tiny_final.weights").exists()


@pytest.mark.parametrize("point, sig", [("startup", signal.SIGINT), ("startup", signal.SIGTERM),
                                        ("train-start", signal.SIGINT), ("train-start", signal.SIGTERM)])
def test_a_signal_during_start_up_ends_with_one_line(tmp_path, point, sig):
    """`startup`: while the commands (torch, OpenCV) are imported; `train-start`: the backup folder is locked,
    nothing trained yet. Either way: one line, exit 128 + signal, and the lock is released."""
    data, cfg = make_training_setup(tmp_path)
    with open(tmp_path / "out.txt", "w") as out:
        process = start_paused(train_command(data, cfg, max_batches=2), point, out)
        try:
            wait_for_pause(process)
            process.send_signal(sig)
            err = finish(process)
        finally:
            kill(process)
    assert process.returncode == 128 + sig, err[-2000:]
    assert "Traceback" not in err and f"darknet_py: error: stopped by {sig.name}\n" in err, err[-2000:]
    backup = tmp_path / "backup"                       # at most the (empty) log of the run: no lock, no weights
    assert not backup.exists() or set(os.listdir(backup)) <= {"tiny_train.jsonl"}, os.listdir(backup)


def test_before_the_startup_pause_nothing_slow_is_imported():
    """`python -m darknet_py` imports the package, then `__main__` (where signals are handled from the first
    line): neither may import torch or OpenCV first, or a Ctrl-C in that second would be a traceback."""
    probe = subprocess.run([sys.executable, "-c", "import sys, darknet_py, darknet_py.__main__; "
                            "print(sorted({'torch', 'cv2', 'numpy', 'click'} & set(sys.modules)))"],
                           capture_output=True, text=True, env=train_env(), timeout=120)
    assert probe.returncode == 0 and probe.stdout.strip() == "[]", probe.stdout + probe.stderr[-2000:]


# -- one run per backup folder ------------------------------------------------------------------------------------

def test_a_second_run_on_the_same_backup_folder_stops_before_touching_it(tmp_path):
    data, cfg = make_training_setup(tmp_path)
    backup = tmp_path / "backup"
    with open(tmp_path / "out.txt", "w") as out:
        first = start_paused(train_command(data, cfg, max_batches=1), "train-start", out)
        try:
            wait_for_pause(first)                        # the first run holds the folder
            before = {p.name: p.read_bytes() for p in backup.iterdir()}
            code, _, err, _ = run_cli(*train_args(data, cfg, max_batches=1))
            assert code == 1 and err.count("darknet_py: error: ") == 1, err[-2000:]
            assert f"darknet_py: error: {backup}: another training run (pid {first.pid} on " in err
            assert {p.name: p.read_bytes() for p in backup.iterdir()} == before     # nothing touched
            rest = finish(first)
        finally:
            kill(first)
    assert first.returncode == 0, rest[-2000:]
    assert sorted(p.name for p in backup.iterdir()) == ["tiny_final.weights", "tiny_last.state.pt",
                                                       "tiny_last.weights", "tiny_train.jsonl"]


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path):
    data, cfg = make_training_setup(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "backup").mkdir()
    lock = tmp_path / "backup" / ".darknet_py_train.lock"
    lock.write_text(f"{gone.stdout.strip()} {socket.gethostname()} 2026-01-01T00:00:00+0000\n")
    code, out, err, _ = run_cli(*train_args(data, cfg, max_batches=1))
    assert code == 0, err[-2000:]
    assert f"Taking over the stale lock {lock} (pid {gone.stdout.strip()} on {socket.gethostname()} is gone)" in out
    assert not lock.exists() and (tmp_path / "backup" / "tiny_final.weights").exists()


# -- sizes that cannot fit: one message with the estimate, even under `ulimit -v` ------------------------------------

ADDRESS_SPACE = 3 << 30      # `ulimit -v`: python + torch + OpenCV map about 1 GiB of it


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.parametrize("size", [4000, 100000])
def test_a_size_that_cannot_fit_is_refused_with_the_estimate_under_ulimit_v(tmp_path, size):
    """4000x4000 fits a machine's memory but not 3 GiB of address space; 100000x100000 fits nowhere (the
    corpus has it on the detector commands, with a cfg that gets as far as the estimate)."""
    data, cfg = make_training_setup(tmp_path)
    cfg.write_text(cfg.read_text().replace("width=32", f"width={size}").replace("height=32", f"height={size}"))
    done = subprocess.run(train_command(data, cfg, max_batches=1), capture_output=True, text=True, env=train_env(),
                          timeout=300, preexec_fn=_limit_address_space)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.count("darknet_py: error: ") == 1
    if size == 100000:        # its [connected] side branch is refused first (more weights than Darknet counts)
        return
    assert re.search(rf"darknet_py: error: {re.escape(str(cfg))}: the network needs at least [\d.]+ [GTP]iB of "
                     rf"memory for training at {size}x{size} .* cpu has [\d.]+ [KMG]iB free", done.stderr), \
        done.stderr[-3000:]
    assert not (tmp_path / "backup").exists() or not list((tmp_path / "backup").glob("*.weights"))


# -- a full disk on any file the trainer writes -------------------------------------------------------------------

def test_a_full_disk_while_writing_the_log_is_one_error(tmp_path):
    data, cfg = make_training_setup(tmp_path)
    code, _, err, _ = run_cli(*train_args(data, cfg, "--log", "/dev/full", max_batches=1))
    assert code == 1 and "Traceback" not in err
    assert "darknet_py: error: /dev/full: cannot write the training log: No space left on device" in err


def test_a_full_disk_while_writing_the_state_file_is_one_error(tmp_path, monkeypatch):
    """torch.save reports a full disk as a RuntimeError; the .weights written just before stay intact."""
    data, cfg = make_training_setup(tmp_path)

    def full_disk(payload, path):
        Path(path).write_bytes(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")
    monkeypatch.setattr("darknet_py.weights.torch.save", full_disk)
    code, _, err, _ = run_cli(*train_args(data, cfg, max_batches=3))
    state = tmp_path / "backup" / "tiny_last.state.pt"
    assert code == 1 and "Traceback" not in err
    assert f"darknet_py: error: {state}: cannot write file: [enforce fail" in err
    assert not state.exists() and not _saving(tmp_path / "backup")
    load_network(str(cfg), str(tmp_path / "backup" / "tiny_last.weights"), batch=1)


def _nan_weights(cfg: Path, path: Path) -> None:
    """Weights of the cfg with the first conv layer's first weight set to NaN (file layout of spec §6.2)."""
    network = load_network(str(cfg))
    with torch.no_grad():
        network.layers[0].conv.weight.view(-1)[0] = float("nan")
    save_weights(network, path)


def test_nan_in_the_weights_stops_training_with_a_diagnosis(tmp_path):
    data, cfg = make_training_setup(tmp_path)
    weights = tmp_path / "nan.weights"
    _nan_weights(cfg, weights)
    code, out, err, _ = run_cli(*train_args(data, cfg, str(weights), max_batches=5))
    assert code == 1, out[-2000:] + err[-2000:]
    error = err[err.index("darknet_py: error:"):]
    assert error.startswith(f"darknet_py: error: {cfg}: iteration 1: the loss is nan")
    assert "[yolo] layer 4" in error and str(tmp_path / "JPEGImages") in error
    # the first iteration after loading: the weights file, not the labels, is named as the likely cause
    assert f"the first iteration after loading {weights}: the weights file is the likely cause" in error
    assert "layer 0 [convolutional] holds NaN/Inf values" in out
    assert not list((tmp_path / "backup").glob("*.weights")), "nothing may be saved after a NaN"


@pytest.mark.parametrize("learning_rate, diagnosis", [
    # The first update leaves finite but huge weights: the next loss is not finite.
    (1e30, r"darknet_py: error: \S*tiny\.cfg: iteration 2: the loss is (nan|inf|-inf), from \[yolo\] layer 4; "
           r"images of this batch: \S*JPEGImages"),
    # The first update itself overflows: the backup after it is refused, the loss never sees it.
    (1e38, r"darknet_py: error: \S*tiny_last\.weights: not saved: layer \d+ \[\w+\] holds non-finite "
           r"parameters after the update that reached seen=2"),
])
def test_a_diverging_learning_rate_is_caught_and_backups_stay_finite(tmp_path, learning_rate, diagnosis):
    data, cfg = make_training_setup(tmp_path, learning_rate=learning_rate)
    code, out, err, _ = run_cli(*train_args(data, cfg, max_batches=50))
    assert code == 1, out[-2000:] + err[-2000:]
    assert re.search(diagnosis, err), err[-2000:]
    for backup in (tmp_path / "backup").glob("*.weights"):
        values = np.frombuffer(backup.read_bytes()[20:], dtype="<f4")
        assert np.isfinite(values).all(), f"{backup} holds non-finite values"


def test_a_huge_label_width_is_refused_before_training(tmp_path):
    data, cfg = make_training_setup(tmp_path)
    label = tmp_path / "labels" / "1.txt"
    label.write_text("0 0.4167 0.45 1e30 0.5\n")
    code, _, err, _ = run_cli(*train_args(data, cfg, max_batches=5))
    assert code == 1 and f"{label}:1: coordinates must be in (0, 1]" in err
    assert f"darknet_py: error: {data}: the data set check found 1 error(s)" in err
    assert not (tmp_path / "backup").exists()
