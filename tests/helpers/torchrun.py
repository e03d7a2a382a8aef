"""torchrun agents for the multi-process training tests, on the loopback interface only: a free port, the
agents' command lines, and :class:`Agents`, which starts several agents at once (each one "node"), can wait
until one of their training processes is parked at a pause point (darknet_py/faults.py; no race against a
clock), and always stops them: every agent runs in a process group of its own, killed on the way out."""
from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Optional

from darknet_py.faults import PAUSE_MESSAGE, PAUSE_VARIABLE
from helpers.train_runs import train_command, train_env

LOOPBACK = "127.0.0.1"
# torchrun's shared rendezvous store keeps the keys of a failed attempt, which a restarted process group may
# read (README, Multi-node training): each attempt gets a store of its own
FRESH_STORE = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


def launcher() -> list[str]:
    found = shutil.which("torchrun")
    return [found] if found else [sys.executable, "-m", "torch.distributed.run"]


def free_port() -> int:
    """A TCP port nothing listens on now (the system picks it)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def c10d_agent(port: int, *train_args: str, nnodes: int = 2, max_restarts: int = 0) -> list[str]:
    """One node's torchrun with c10d rendezvous at 127.0.0.1:port, one training process."""
    return launcher() + [f"--nnodes={nnodes}", "--nproc_per_node=1", "--rdzv_backend=c10d",
                         f"--rdzv_endpoint={LOOPBACK}:{port}", "--rdzv_id=test", f"--max-restarts={max_restarts}",
                         *train_command(*train_args)[1:]]


def standalone(*train_args: str, nproc: int = 2) -> list[str]:
    """One agent running ``nproc`` training processes."""
    return launcher() + ["--standalone", f"--nproc_per_node={nproc}", *train_command(*train_args)[1:]]


class Agents:
    """Start ``commands`` together in ``cwd`` (stdout to files there, stderr read by the test), with ``env``
    added to the tests' training environment; with ``pause``, every training process parks at that pause
    point (``name:text``) until released."""

    def __init__(self, cwd: Path, commands: list[list[str]], pause: Optional[str] = None,
                 env: Optional[dict] = None):
        env = dict(train_env(), **(env or {}), **({PAUSE_VARIABLE: pause} if pause else {}))
        self.stdout = [cwd / f"agent{k}.out" for k in range(len(commands))]
        self.err = ["" for _ in commands]
        self.processes = []
        for command, out in zip(commands, self.stdout):
            with open(out, "w") as stdout:
                self.processes.append(subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                                       stdout=stdout, stderr=subprocess.PIPE, text=True,
                                                       start_new_session=True))

    def __enter__(self) -> "Agents":
        return self

    def __exit__(self, *exc) -> None:
        """Kill what still runs: the training processes (torchrun starts each in a session of its own),
        then the agents."""
        for process in self.processes:
            if process.poll() is None:
                for child in _children(process.pid):
                    _kill_group(child)
                _kill_group(process.pid)
            process.wait()
            for pipe in (process.stdin, process.stderr):
                if pipe is not None and not pipe.closed:
                    pipe.close()

    def wait_for_pause(self, timeout: float = 300) -> tuple[int, int]:
        """Read the agents' stderr until a training process says it is parked: (agent index, its pid). Gives
        up when the agents end, or write nothing for ``timeout`` seconds (a bound, not a measurement)."""
        with selectors.DefaultSelector() as selector:
            for k, process in enumerate(self.processes):
                selector.register(process.stderr, selectors.EVENT_READ, k)
            while selector.get_map():
                ready = selector.select(timeout)
                if not ready:
                    break
                for key, _ in ready:
                    line = key.fileobj.readline()
                    if not line:
                        selector.unregister(key.fileobj)
                        continue
                    self.err[key.data] += line
                    if line.startswith(PAUSE_MESSAGE):
                        return key.data, int(line.rsplit("pid ", 1)[1].rstrip(")\n"))
        raise AssertionError("no training process reached the pause point:\n" + "\n".join(self.err)[-4000:])

    def release_all(self) -> None:
        """No more pauses: close the agents' stdin (their training processes read it at a pause point)."""
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
                process.stdin = None

    def finish(self, timeout: float) -> list[Optional[int]]:
        """Wait (at most ``timeout`` seconds each) for the agents to end; their exit statuses."""
        self.release_all()
        return [self.finish_one(k, timeout) for k in range(len(self.processes))]

    def finish_one(self, k: int, timeout: float) -> Optional[int]:
        """Wait at most ``timeout`` seconds for agent ``k`` to end; its exit status (None: it was still
        running and has been killed)."""
        process = self.processes[k]
        try:
            self.err[k] += process.communicate(timeout=timeout)[1]
            return process.returncode
        except subprocess.TimeoutExpired:
            for child in _children(process.pid):
                _kill_group(child)
            _kill_group(process.pid)
            self.err[k] += process.communicate()[1]
            return None

    def out(self, k: int) -> str:
        return self.stdout[k].read_text()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
