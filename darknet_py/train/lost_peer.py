"""A lost peer in multi-process training: a rank that died (its connections close: noticed at once) or hangs
(noticed when the collective timeout, `--collective-timeout`, passes). Every surviving rank stops with one
line saying which rank it is, what exchange failed and why; global rank 0 first writes `_last.weights` and
its state file for the last update every rank completed, so a restart loses nothing.

The ranks exchange data twice per iteration (:mod:`.distributed`): before the update (gradients, batch-norm
statistics, loss; nothing of the update is applied yet) and at the end of the iteration (the stop check,
after the iteration's backups). A failure at the end leaves a complete iteration. A failure before the update
leaves the weights and momentum of the previous iteration, but the forward passes of the failed one changed
`seen`, the batch-norm running statistics, the size (multiscale), and the generators drawn from: those are
kept at the start of every iteration (:class:`IterationStart`, a few small copies) and put back before saving.

When rank 0 itself is the lost one, nothing new is written: only rank 0 writes (another rank's backup folder
may be on another machine, or rank 0's, locked by it); the others' line names the last `_last` rank 0 wrote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import TrainingError
from .backups import save, save_chart
from .distributed import CollectiveError
from .session import Session
from .state import RunState, capture_rng, restore_rng


class LostPeerError(TrainingError):
    """Training stopped because another rank was lost (the CLI prints it as one line and exits 1)."""


@dataclass
class IterationStart:
    """What an iteration changes before its update is applied, as it was when the iteration started."""
    iteration: int
    seen: int
    width: int
    height: int
    buffers: list[torch.Tensor]            # batch-norm running statistics (changed by the forward passes)
    multiscale: Optional[dict]
    rate_rng: dict
    rng: dict

    @classmethod
    def capture(cls, s: Session, run: RunState) -> Optional["IterationStart"]:
        """None in a single process (nothing to lose)."""
        if not s.ctx.enabled:
            return None
        return cls(run.iteration, run.seen, run.width, run.height,
                   [b.detach().clone() for b in s.network.buffers()],
                   None if s.multiscale is None else s.multiscale.state_dict(), s.rate_rng.state_dict(),
                   capture_rng())

    def restore(self, s: Session, run: RunState) -> None:
        run.seen = self.seen
        for buffer, kept in zip(s.network.buffers(), self.buffers):
            buffer.copy_(kept)
        if (run.width, run.height) != (self.width, self.height):
            run.width, run.height = self.width, self.height
            s.network.resize(self.width, self.height)
        if self.multiscale is not None:
            s.multiscale.load_state_dict(self.multiscale)
        s.rate_rng.load_state_dict(self.rate_rng)
        restore_rng(self.rng)


def stop_after_lost_peer(s: Session, run: RunState, start: Optional[IterationStart],
                         failed: CollectiveError) -> LostPeerError:
    """Put back what the failed iteration changed before its update, let rank 0 save the run, and return
    the one-line error every surviving rank stops with."""
    iteration = run.iteration + s.iterations_per_update       # the iteration being trained when it failed
    if start is not None and start.iteration == run.iteration:  # failed before its update was applied
        start.restore(s, run)
    else:                                                     # failed in the end-of-iteration exchange
        iteration = run.iteration
    if s.main:
        saved = _save(s, run)
    elif run.counters.last_last > run.started_at:
        saved = f"only rank 0 writes: its last backup is {s.rule.last_path} (iteration {run.counters.last_last})"
    else:
        saved = f"only rank 0 writes, and it wrote no {s.rule.last_path.name} in this run"
    return LostPeerError(f"rank {s.ctx.rank} of {s.ctx.world_size} lost {_peers(s)} in {failed.what} of "
                         f"iteration {iteration} ({failed.reason}); {saved}")


def _save(s: Session, run: RunState) -> str:
    """Rank 0: `_last` (+ state) and the chart at the last complete update, unless nothing was trained."""
    if run.iteration == run.started_at:
        return "nothing was trained since the start, nothing saved"
    path = save(s, run, s.rule.last_path, "last")
    save_chart(s, run)
    s.log.write("end", iteration=run.iteration, stopped_by="lost peer", weights=str(path))
    return f"saved {path} at iteration {run.iteration}, the last update every rank completed"


def _peers(s: Session) -> str:
    """The other rank when there are two; the failing one cannot be told apart from the error otherwise."""
    if s.ctx.world_size == 2:
        return f"rank {1 - s.ctx.rank}"
    return "another rank"
