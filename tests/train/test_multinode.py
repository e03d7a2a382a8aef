"""Training across torchrun agents ("nodes"; here two agents on one host, loopback, gloo on the CPU): the same
run as one agent with two processes, a lost peer (killed, or hanging) stopping the survivor with one line and
a saved `_last`, and torchrun's `--max-restarts` resuming from it to the uninterrupted run's `_final` bytes.

Each agent runs one training process. The tests park rank 1 at an exact iteration with the test pause points
(darknet_py/faults.py) before killing or stopping it. With Darknet's `-gpus` semantics an update of two
processes counts two iterations: the run goes 2, 4, ... 12."""
from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from darknet_py.train.state import state_path
from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.torchrun import FRESH_STORE, Agents, c10d_agent, free_port, standalone
from helpers.train_runs import train_command, train_env, weights_arrays

pytestmark = pytest.mark.slow

ARGS = ("tiny.data", "tiny.cfg", "--seed", "2")
B = 8                                      # images per process and update (tiny_cfg's batch)
TORCHRUN_LOG = re.compile(r"^\[?[EWI]\d{4} ", re.M)    # torchrun's (and c10d's) own log lines


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    make_dataset(root)
    return root


def _folder(root: Path, dataset: Path) -> Path:
    write_tiny_data(root, dataset)
    (root / "tiny.cfg").write_text(tiny_cfg(max_batches=12, burn_in=0))
    return root


@pytest.fixture(scope="module")
def uninterrupted(dataset, tmp_path_factory) -> bytes:
    """`_final.weights` of one agent with two processes."""
    root = _folder(tmp_path_factory.mktemp("one-agent"), dataset)
    with Agents(root, [standalone(*ARGS)]) as agents:
        status = agents.finish(timeout=300)
    assert status == [0], agents.err[0][-3000:]
    return (root / "backup" / "tiny_final.weights").read_bytes()


def test_two_agents_train_as_one_agent_with_two_processes(dataset, tmp_path, uninterrupted):
    root = _folder(tmp_path, dataset)
    port = free_port()
    with Agents(root, [c10d_agent(port, *ARGS), c10d_agent(port, *ARGS)]) as agents:
        status = agents.finish(timeout=300)
    assert status == [0, 0], "\n".join(agents.err)[-3000:]
    assert (root / "backup" / "tiny_final.weights").read_bytes() == uninterrupted
    assert sum(agents.out(k).count(" avg loss, ") for k in range(2)) == 6      # rank 0 alone prints


def _survivor_stderr(text: str) -> str:
    """What the training process wrote, before its agent's own report of the failure."""
    found = TORCHRUN_LOG.search(text)
    return text[:found.start()] if found else text


def _saved_iteration(root: Path) -> int:
    last = root / "backup" / "tiny_last.weights"
    header, _ = weights_arrays(last)
    state = torch.load(state_path(last), weights_only=True)
    assert header.seen == state["loop"]["iteration"] * B
    return state["loop"]["iteration"]


@pytest.mark.parametrize("killed", [1, 0])
def test_killed_peer_stops_the_survivor_with_one_line_and_a_saved_last(dataset, tmp_path, killed):
    """A rank dies before its gradients of iteration 6 reach the other: the update of iteration 6 never
    happens. Rank 1 killed: rank 0's `_last` holds iteration 4 (the forward passes of iteration 6 undone).
    Rank 0 killed: nothing is written (only rank 0 writes), rank 1's line says so."""
    root = _folder(tmp_path, dataset)
    port = free_port()
    commands = [c10d_agent(port, *ARGS), c10d_agent(port, *ARGS)]
    with Agents(root, commands, pause=f"update:iteration=6;rank={killed};") as agents:
        parked, pid = agents.wait_for_pause()
        os.kill(pid, signal.SIGKILL)
        status = agents.finish(timeout=120)
    survivor = 1 - parked
    assert status[survivor] not in (0, None)
    printed = _survivor_stderr(agents.err[survivor])
    assert "Traceback" not in printed
    assert printed.strip().count("\n") == 0, printed
    assert printed.startswith(f"darknet_py: error: rank {1 - killed} of 2 lost rank {killed} in the all-reduce of "
                              "the gradients of iteration 6 ("), printed
    if killed == 1:
        assert "saved " in printed and "at iteration 4," in printed
        assert _saved_iteration(root) == 4
    else:
        assert printed.rstrip().endswith("only rank 0 writes, and it wrote no tiny_last.weights in this run")
        assert not (root / "backup" / "tiny_last.weights").exists()


def test_hanging_peer_is_noticed_after_the_collective_timeout(dataset, tmp_path):
    """Rank 1 stops (SIGSTOP) right after iteration 6: rank 0 waits --collective-timeout seconds in the
    end-of-iteration exchange, then saves iteration 6 and stops with one line."""
    root = _folder(tmp_path, dataset)
    port = free_port()
    args = (*ARGS, "--collective-timeout", "5")
    commands = [c10d_agent(port, *args), c10d_agent(port, *args)]
    with Agents(root, commands, pause="iteration:iteration=6;rank=1;") as agents:
        parked, pid = agents.wait_for_pause()
        os.kill(pid, signal.SIGSTOP)
        try:
            survivor = 1 - parked
            status = agents.finish_one(survivor, timeout=120)
        finally:
            os.kill(pid, signal.SIGKILL)
        agents.finish(timeout=120)
    assert status not in (0, None)
    printed = _survivor_stderr(agents.err[survivor])
    assert "Traceback" not in printed and printed.strip().count("\n") == 0, printed
    assert printed.startswith("darknet_py: error: rank 0 of 2 lost rank 1 in the end-of-iteration all-reduce of "
                              "iteration 6 (Timed out"), printed
    assert _saved_iteration(root) == 6


def test_torchrun_restart_resumes_from_last_to_the_uninterrupted_final(dataset, tmp_path, uninterrupted):
    """--max-restarts=1 on both agents; rank 1 killed before its update of iteration 6: rank 0 saves
    iteration 4, torchrun restarts both processes, they resume from that `_last` and end with the
    uninterrupted run's `_final` bytes."""
    root = _folder(tmp_path, dataset)
    port = free_port()
    commands = [c10d_agent(port, *ARGS, max_restarts=1), c10d_agent(port, *ARGS, max_restarts=1)]
    with Agents(root, commands, pause="update:iteration=6;rank=1;", env=FRESH_STORE) as agents:
        _, pid = agents.wait_for_pause()
        os.kill(pid, signal.SIGKILL)
        status = agents.finish(timeout=300)
    assert status == [0, 0], "\n".join(agents.err)[-4000:]
    printed = agents.out(0) + agents.out(1)
    assert "torchrun restart 1: resuming from " in printed
    assert "tiny_last.weights (iteration 4, saved by this run)" in printed
    assert (root / "backup" / "tiny_final.weights").read_bytes() == uninterrupted


def _as_torchrun_process(root: Path, restart: int, run_id: str, *args: str):
    """One training process with the environment torchrun gives a run of one process (no process group)."""
    env = dict(train_env(), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", TORCHELASTIC_RUN_ID=run_id,
               TORCHELASTIC_RESTART_COUNT=str(restart))
    return subprocess.run(train_command(*ARGS, *args), cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_restart_resumes_only_this_runs_last_with_the_same_number_of_processes(dataset, tmp_path):
    root = tmp_path
    write_tiny_data(root, dataset, savelast=2)
    (root / "tiny.cfg").write_text(tiny_cfg(max_batches=4, burn_in=0))
    first = _as_torchrun_process(root, 0, "job", "--max-batches", "4")
    assert first.returncode == 0, first.stderr[-3000:]
    assert _saved_iteration(root) == 4

    resumed = _as_torchrun_process(root, 1, "job", "--max-batches", "6")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "torchrun restart 1: resuming from " in resumed.stdout
    assert "tiny_last.weights (iteration 4, saved by this run)" in resumed.stdout
    assert [line.split(":")[0].strip() for line in resumed.stdout.splitlines() if " avg loss, " in line] == ["5", "6"]

    last = root / "backup" / "tiny_last.weights"
    state = torch.load(state_path(last), weights_only=True)
    assert state["launch"] == {"run_id": "job", "world_size": 1}
    state["launch"]["world_size"] = 2
    torch.save(state, state_path(last))
    refused = _as_torchrun_process(root, 1, "job", "--max-batches", "8")
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"darknet_py: error: {last}: torchrun restarted the run with 1 process(es) but "
                                     "this file was saved by it with 2: "), refused.stderr
    assert "Traceback" not in refused.stderr
    shared = _as_torchrun_process(root, 1, "job", "--max-batches", "8", "--global-batch")  # no -gpus semantics
    assert shared.returncode == 0, shared.stderr[-3000:]
    assert "tiny_last.weights (iteration 6, saved by this run)" in shared.stdout

    other = _as_torchrun_process(root, 1, "another-job", "--max-batches", "2")
    assert other.returncode == 0, other.stderr[-3000:]
    assert f"torchrun restart 1: {last} is not from this run" in other.stdout
    assert " 1: " in other.stdout                                               # from the cfg's initialisation


def test_collective_timeout_flag_defaults_to_the_training_default():
    """The command module cannot import torch (fast --help), so it repeats the number."""
    from darknet_py.commands.train import train
    from darknet_py.train.distributed import DEFAULT_COLLECTIVE_TIMEOUT

    option = next(p for p in train.params if p.name == "collective_timeout")
    assert option.default == DEFAULT_COLLECTIVE_TIMEOUT
