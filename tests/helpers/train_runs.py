"""Running `darknet_py detector train` in a subprocess for the training-loop tests, and reading what it wrote.

Subprocesses because signals are part of what is tested, and because every run of a comparison must use the
same torch thread count (OMP_NUM_THREADS=1 here) for CPU results to be bit-identical."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from darknet_py.faults import PAUSE_MESSAGE, PAUSE_VARIABLE
from darknet_py.weights import parse_header
from helpers.cli import run_cli


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "darknet_py", "detector", "train", *map(str, args), "--device", "cpu",
            "--no-progress", "--workers", "0"]


def train_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def run_train(cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(*args), cwd=cwd, env=train_env(), capture_output=True, text=True,
                          timeout=timeout)


def run_train_here(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The same command in this process (no interpreter start-up): for tests that need no signals and no
    bit-for-bit comparison with another process."""
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        result = run_cli(*train_command(*args)[3:])
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(args, result.code, result.out, result.err)


def log_records(path: Path, event: Optional[str] = None) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:      # a line cut short by a killed process
            break
    return [r for r in records if event is None or r["event"] == event]


# -- parking a training process at a pause point (darknet_py/faults.py): no race against a clock -------------

def start_paused(command: list[str], point: str, stdout, **popen) -> subprocess.Popen:
    """Start ``command`` so that it stops at ``point`` (``name[:text]``) until released."""
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            env=dict(train_env(), **{PAUSE_VARIABLE: point}), **popen)


def wait_for_pause(process: subprocess.Popen) -> str:
    """Read the process's stderr up to its pause line (it is parked there now); the text read before it."""
    lines = []
    for line in process.stderr:
        if line.startswith(PAUSE_MESSAGE):
            return "".join(lines)
        lines.append(line)
    process.wait()
    raise AssertionError(f"exited with {process.returncode} without reaching the pause point:\n"
                         + "".join(lines)[-3000:])


def release(process: subprocess.Popen) -> None:
    """Let a parked process go on to its next pause."""
    process.stdin.write("\n")
    process.stdin.flush()


def finish(process: subprocess.Popen) -> str:
    """Release a parked process for good (no more pauses) and wait for it; the rest of its stderr."""
    process.stdin.close()
    with process.stderr:
        err = process.stderr.read()
    process.wait()
    return err


def kill(process: subprocess.Popen) -> None:
    """Kill a started process if it still runs, wait for it and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait()
    for pipe in (process.stdin, process.stderr):
        if pipe is not None:
            pipe.close()


def park_after_iteration(cwd: Path, iteration: int, stdout, *args: str, **popen) -> subprocess.Popen:
    """Start `detector train` and return once it is parked right after ``iteration`` (logged, its backups
    written, before it looks for a stop signal)."""
    process = start_paused(train_command(*args), f"iteration:iteration={iteration};", stdout, cwd=cwd, **popen)
    wait_for_pause(process)
    return process


def weights_arrays(path: Path) -> tuple[object, np.ndarray]:
    raw = path.read_bytes()
    header = parse_header(raw, str(path))
    return header, np.frombuffer(raw, dtype="<f4", offset=header.nbytes)
