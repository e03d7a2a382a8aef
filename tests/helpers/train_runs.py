"""Running `darknet_py detector train` in a subprocess for the training-loop tests, and reading what it wrote.

Subprocesses because signals are part of what is tested, and because every run of a comparison must use the
same torch thread count (OMP_NUM_THREADS=1 here) for CPU results to be bit-identical."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

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


def start_train(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(train_command(*args), cwd=cwd, env=train_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def log_records(path: Path, event: Optional[str] = None) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:      # the line being written while a test polls the log
            break
    return [r for r in records if event is None or r["event"] == event]


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"training ended early ({process.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
        if time.time() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the training run")
        time.sleep(0.05)


def weights_arrays(path: Path) -> tuple[object, np.ndarray]:
    raw = path.read_bytes()
    header = parse_header(raw, str(path))
    return header, np.frombuffer(raw, dtype="<f4", offset=header.nbytes)
