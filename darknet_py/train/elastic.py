"""torchrun's own fault tolerance (`--max-restarts=K`): when a process of the run fails, torchrun restarts
every process with the same command line and ``TORCHELASTIC_RESTART_COUNT`` > 0. Run as written, that
command line would start again from the weights it names; :func:`resumed_after_restart` makes it continue
from the `_last.weights` (and state file) this run wrote instead, and says so.

"This run": the state file records torchrun's run id and the number of processes (:func:`launch_record`),
and it must have been written after this node's torchrun agent started. Global rank 0 decides from its backup
folder and hands the two files to the other ranks (their nodes need not see rank 0's folder). A restart with
another number of processes is refused: with Darknet's `-gpus` semantics the learning rate (× N) and the
iterations per update depend on it (`--global-batch` runs make the single-process update with any number of
processes, so they resume). The ranks agree that this is a restart when any of them says so (torchrun counts
a restart forced by another node's failure only on that node).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from ..errors import UsageError
from .checkpoints import BackupRule, file_digest
from .distributed import DistributedContext, broadcast_from_main, max_over_ranks
from .state import load_training_state, state_path

RESTART_VARIABLE = "TORCHELASTIC_RESTART_COUNT"
RUN_ID_VARIABLE = "TORCHELASTIC_RUN_ID"


def launch_record(ctx: DistributedContext) -> dict:
    """The side file's ``launch`` entry: which torchrun run wrote it, with how many processes."""
    return {"run_id": os.environ.get(RUN_ID_VARIABLE), "world_size": ctx.world_size}


@contextlib.contextmanager
def resumed_after_restart(opts, ctx: DistributedContext, rule: BackupRule, record: dict,
                          say=print) -> Iterator[object]:
    """``opts`` (TrainOptions), or after a torchrun restart the same options starting from this run's
    `_last.weights`, for as long as the weights are being loaded; ``record`` is the run's
    :func:`~.state.run_record`."""
    restart = _restart_count(ctx)
    if restart == 0:
        yield opts
        return
    found = _resume_source(opts, ctx, rule, record, restart) if ctx.is_main else None
    refusal, note, weights, state = broadcast_from_main(found, ctx, "sending the backup to resume from")
    if refusal is not None:
        raise UsageError(refusal, file=str(rule.last_path),
                         hint="restart with the same number of processes, or resume by hand from this file")
    say(note, flush=True)
    if weights is None:
        yield opts
    elif ctx.is_main:
        yield dataclasses.replace(opts, weights=str(rule.last_path), clear=False)
    else:
        with tempfile.TemporaryDirectory(prefix="darknet_py-restart-") as folder:
            copy = Path(folder) / rule.last_path.name
            copy.write_bytes(weights)
            state_path(copy).write_bytes(state)
            yield dataclasses.replace(opts, weights=str(copy), clear=False)


def _restart_count(ctx: DistributedContext) -> int:
    """The highest restart count of the ranks (0 outside torchrun)."""
    return max_over_ranks(int(os.environ.get(RESTART_VARIABLE, "0") or 0), ctx, "the restart check")


def _resume_source(opts, ctx: DistributedContext, rule: BackupRule, record: dict, restart: int
                   ) -> tuple[Optional[str], str, Optional[bytes], Optional[bytes]]:
    """Rank 0: (refusal, what to say, the weights' bytes, the state's bytes) of this run's `_last`."""
    last, side = rule.last_path, state_path(rule.last_path)
    start = opts.weights or "the cfg's random initialisation"
    if not last.is_file() or not side.is_file():
        return None, f"torchrun restart {restart}: no {last} of this run yet, starting from {start}", None, None
    state = load_training_state(side, file_digest(last), record, say=lambda *a, **k: None)
    launch = (state or {}).get("launch") or {}
    started = _agent_started_at()
    if (state is None or launch.get("run_id") != os.environ.get(RUN_ID_VARIABLE)
            or (started is not None and side.stat().st_mtime < started - 1)):
        return None, (f"torchrun restart {restart}: {last} is not from this run (another run id, or older than "
                      f"this torchrun), starting from {start}"), None, None
    if launch.get("world_size") != ctx.world_size and not opts.global_batch:
        return (f"torchrun restarted the run with {ctx.world_size} process(es) but this file was saved by it "
                f"with {launch.get('world_size')}: with Darknet's -gpus semantics the learning rate (x N) and the "
                "iterations per update depend on the number of processes"), "", None, None
    note = (f"torchrun restart {restart}: resuming from {last} (iteration {state['loop']['iteration']}, "
            "saved by this run)")
    return None, note, last.read_bytes(), side.read_bytes()


def _agent_started_at() -> Optional[float]:
    """When this process's parent (the torchrun agent) started, in seconds since the epoch; None where
    /proc does not say."""
    try:
        fields = Path(f"/proc/{os.getppid()}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")       # field 22, starttime, in clock ticks
    except (OSError, ValueError, IndexError, StopIteration):
        return None
