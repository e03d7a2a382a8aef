"""What a training run tells its user: Darknet's console lines (spec §7.3), a tqdm bar with ETA on stderr and
a JSON-lines log with one record per iteration.

Console lines follow the flavour: PJ ``"%ld: %f, %f avg, %f rate, %lf seconds, %d images"``; AB the
``Loaded: ...`` line, the title ``it/max: loss=... hours left=...`` and
``" %d: %f, %f avg loss, %f rate, %lf seconds, %d images, %f hours left"``. AB's terminal control codes
around the title (clear screen, bell) are left out: they would erase the progress bar and scroll-back.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TextIO

from tqdm import tqdm

from ..errors import TrainingError
from ..flavor import Flavor, flavor_of
from ..json_text import json_dumps


@dataclass(frozen=True)
class IterationReport:
    iteration: int
    loss: float
    avg_loss: float
    rate: float
    seconds: float          # time spent training this iteration
    load_seconds: float     # time spent waiting for the batch
    images: int             # iteration * images per iteration, as Darknet prints
    width: int
    height: int
    hours_left: float       # AB's smoothed estimate *before* this iteration (the first line shows -1)


def remaining_hours(max_batches: int, iteration: int, seconds: float, load_seconds: float) -> float:
    """AB: remaining iterations times this iteration's train + load time, in hours."""
    return (max_batches - iteration) * (seconds + load_seconds) / 3600


def smooth_hours(previous: float, current: float) -> float:
    """AB's `avg_time`: 1% of the new estimate; starts at the first estimate."""
    return current if previous < 0 else 0.01 * current + 0.99 * previous


class TrainingConsole:
    """Prints Darknet's lines on stdout and drives the progress bar; only rank 0 owns one."""

    def __init__(self, flavor: Flavor | str, max_batches: int, start_iteration: int, show_bar: Optional[bool] = None,
                 out: Optional[TextIO] = None):
        self.flavor = flavor_of(flavor)
        self.out = out or sys.stdout
        self.max_batches = max_batches
        enabled = sys.stderr.isatty() if show_bar is None else show_bar
        self.bar = tqdm(total=max_batches, initial=start_iteration, unit="it", dynamic_ncols=True,
                        file=sys.stderr, disable=not enabled, desc="train")

    def print(self, text: str = "") -> None:
        if self.bar.disable:
            print(text, file=self.out, flush=True)
        else:
            tqdm.write(text, file=self.out)

    def loaded(self, load_seconds: float, avg_loss: float) -> None:
        line = f"Loaded: {load_seconds:.6f} seconds"
        if self.flavor.alexeyab and load_seconds > 0.1 and avg_loss > 0:
            line += " - performance bottleneck on CPU or Disk HDD/SSD"
        self.print(line)

    def iteration(self, r: IterationReport) -> None:
        if self.flavor.pjreddie:
            self.print(f"{r.iteration}: {r.loss:.6f}, {r.avg_loss:.6f} avg, {r.rate:.6f} rate, "
                       f"{r.seconds:.6f} seconds, {r.images} images")
        else:
            self.print(f"{r.iteration}/{self.max_batches}: loss={r.loss:.1f} "
                       f"hours left={r.hours_left:.1f}")
            self.print(f" {r.iteration}: {r.loss:.6f}, {r.avg_loss:.6f} avg loss, {r.rate:.6f} rate, "
                       f"{r.seconds:.6f} seconds, {r.images} images, {r.hours_left:.6f} hours left")
        self.bar.set_postfix(loss=f"{r.loss:.3f}", avg=f"{r.avg_loss:.3f}", size=f"{r.width}x{r.height}",
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class JsonLog:
    """Appends one JSON object per line; flushed each time so a killed run keeps its history."""

    def __init__(self, path: Optional[Path]):
        self.file = None
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "a", encoding="utf-8")

    def write(self, event: str, **fields) -> None:
        if self.file is None:
            return
        try:
            line = json_dumps({"event": event, "time": round(time.time(), 3), **fields}, default=_flavor_name)
            self.file.write(line + "\n")
            self.file.flush()
        except OSError as exc:    # a full disk names the log, not just "No space left on device"
            raise TrainingError(f"cannot write the training log: {exc.strerror}", file=str(self.path)) from None

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:       # the failed write was already reported
                pass
            self.file = None


def _flavor_name(value):
    """A Flavor in the log is its name, as the --flavor string was; anything else stays an error."""
    if isinstance(value, Flavor):
        return value.name
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
