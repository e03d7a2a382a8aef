"""`train_network`: Darknet's `train_detector` loop (spec §7.1–7.4, §7.7, §7.8), one iteration at a time.

The structure is Darknet's: load the weights (full or backbone; `-clear` resets `seen`), iteration = seen / B,
and while iteration < max_batches: re-pick the multiscale size every 10 iterations of this process, get a
batch, train it (`train_network_step`), update avg_loss (0.9/0.1), print Darknet's line, write the backups,
evaluate mAP when due. The details live in their own modules: set-up and tear-down in :mod:`.session`; the lr
policy, optimizer and step in :mod:`.policy`, :mod:`.update`, :mod:`.step`; batches in
:mod:`darknet_py.data.loader`; sizes in :mod:`.multiscale`; the files written in :mod:`.backups` (names and
timing in :mod:`.checkpoints`); the resume side file in :mod:`.state`; console and log in :mod:`.report` and
:mod:`.progress`; `-map` in :mod:`.map_pass`; multi-process training in :mod:`.distributed`.

What darknet_py adds: a rolling full-state file next to `_last.weights` (a resumed CPU run equals an
uninterrupted one bit for bit), SIGINT/SIGTERM finish the current iteration and save `_last`, a non-finite
loss stops with a diagnosis instead of training on garbage, a progress bar and a JSON-lines log.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config.cfg import CfgModel
from ..data.loader import detection_loader
from ..faults import pause_point
from .backups import save, save_chart
from .checkpoints import BackupCounters, due_backups
from .chart import TrainingChart
from .distributed import CollectiveError, any_rank, leave_together, synchronize_update
from .lost_peer import IterationStart, stop_after_lost_peer
from .listeners import iteration_figures, notify, open_listeners
from .map_pass import map_due, map_pass, next_map
from .precision import amp_dtype
from .progress import TrainingConsole, remaining_hours, smooth_hours
from .reject_weights import reject_similar_weights, rejection_due
from .report import announce, check_finite, report_iteration, say_clear_hint, say_resized, show_imgs
from .session import Session, StopSignals, TrainOptions, close_session, open_session, resize
from .state import RunState, apply_training_state, state_path
from .step import train_network_step

__all__ = ["TrainOptions", "TrainOutcome", "train_network"]

REJECT_STREAM = 2          # weights_reject_freq draws from (seed, 2, iteration)


@dataclass(frozen=True)
class TrainOutcome:
    iteration: int
    stopped_by: Optional[str]              # None when max_batches was reached, else "SIGINT"/"SIGTERM"
    weights: Optional[Path]                # the file written last (_final, or _last when stopped)
    best_map: float


def train_network(opts: TrainOptions, cfg: Optional[CfgModel] = None) -> TrainOutcome:
    """Train as Darknet's `detector train` does; returns where the run ended. ``cfg``: the parsed cfg when
    the command already has it (it is parsed once per command)."""
    s = open_session(opts, cfg)
    net = s.cfg.net
    run = _started_or_closed(s)
    stopped_by = None
    start = None
    with StopSignals() as stop:
        try:
            try:
                while run.iteration < net.max_batches:
                    start = IterationStart.capture(s, run)
                    stopped_by = _iteration(s, run, stop)
                    if stopped_by is not None:
                        break
            except CollectiveError as failed:
                raise stop_after_lost_peer(s, run, start, failed) from None
            written = _finish(s, run, stopped_by)
            leave_together(s.ctx)
        finally:
            close_session(s)
    return TrainOutcome(run.iteration, stopped_by, written, run.best_map)


def _iteration(s: Session, run: RunState, stop: StopSignals) -> Optional[str]:
    """One iteration of Darknet's loop; the signal that stops the run after it, if any."""
    net = s.cfg.net
    size = s.multiscale.next_size(run.iteration) if s.multiscale is not None else None
    if size is not None:
        resize(s, run, *size)
        say_resized(s, *size)
    started = time.time()
    batch = s.loader.next_batch()
    load_seconds = time.time() - started
    if s.main:
        s.console.loaded(load_seconds, run.avg_loss)
        show_imgs(s, run, batch)
    started = time.time()
    seen = run.seen
    pause_point("update", f"iteration={run.iteration + s.iterations_per_update};rank={s.ctx.rank};")  # tests
    result = _train_step(s, run, batch)
    loss, layer_costs = result.loss, [sum(costs) for costs in zip(*result.layer_costs)]   # the ranks' mean
    check_finite(s, loss, layer_costs, run.iteration + 1, batch, run.started_at)
    run.iteration += s.iterations_per_update
    _after_update(s, run)
    # Darknet's seen counts every image of the update, whichever process trained it
    run.seen = seen + net.images_per_update * s.iterations_per_update
    run.avg_loss = loss if run.avg_loss < 0 or math.isnan(run.avg_loss) else run.avg_loss
    run.avg_loss = run.avg_loss * 0.9 + loss * 0.1
    seconds = time.time() - started
    report = report_iteration(s, run, loss, result, seconds, load_seconds, next_map(s, run)) if s.main else None
    run.avg_time = smooth_hours(run.avg_time, remaining_hours(net.max_batches, run.iteration, seconds,
                                                            load_seconds))
    run.chart.add_loss(run.iteration, run.avg_loss)
    if s.listeners:
        notify(s, "iteration", iteration_figures(s, run, report, layer_costs))
    if s.main and run.iteration % 100 == 0:
        save_chart(s, run)
    evaluate = map_due(s, run)
    if evaluate:
        run.last_map_iteration = run.iteration    # the backups below already know the mAP is done
    saved = [save(s, run, path, kind) for kind, path in due_backups(s.rule, run.counters, run.iteration)]
    if evaluate:
        map_pass(s, run, saved)
    # tests: logged and saved, not stopped
    pause_point("iteration", f"iteration={run.iteration};rank={s.ctx.rank};")
    if any_rank(stop.received is not None, s.ctx, s.device, patient=evaluate):
        return stop.received or "SIGTERM"
    return None


def _started_or_closed(s: Session) -> RunState:
    """Start the run; if that fails, release what the session holds (backup-folder lock, log)."""
    try:
        return _start_run(s)
    except BaseException:
        close_session(s)
        raise


def _start_run(s: Session) -> RunState:
    """Darknet: iteration = seen / B with the cfg being trained (spec §6.6); its counters start there. With a
    matching full-state file, everything continues exactly where the saved run was."""
    pause_point("train-start")                         # tests: the lock is held, nothing trained yet
    net = s.cfg.net
    iteration = s.network.seen // net.images_per_update
    run = RunState(s.network, iteration=iteration, width=net.width, height=net.height,
                   last_map_iteration=iteration, counters=BackupCounters(iteration, iteration),
                   chart=TrainingChart(net.max_batches, net.max_chart_loss))
    if s.saved is not None:
        apply_training_state(s.resumable_parts(run), s.saved, state_path(s.opts.weights))
        run.chart.max_batches = net.max_batches       # a changed max_batches: the chart spans the new run
    run.started_at = run.iteration
    if (run.width, run.height) != (net.width, net.height):
        s.network.resize(run.width, run.height)
    # every slot of every iteration is drawn from (seed, iteration, slot) alone: starting the loader at the
    # run's iteration continues the batch sequence of the saved run exactly
    s.loader = detection_loader(s.cfg, s.train_paths, s.opts.seed, num_workers=s.opts.workers,
                                batch=net.images_per_update * s.iterations_per_update,
                                pin_memory=s.device.type == "cuda",
                                start_iteration=run.iteration // s.iterations_per_update,
                                slots=s.slots, source=str(s.data.resolve("train")))
    s.loader.set_size(run.width, run.height)
    if s.main:
        s.console = TrainingConsole(s.opts.flavor, net.max_batches, run.iteration, s.opts.progress)
        announce(s, run)
        s.listeners = open_listeners(s, run.iteration)
    return run


def _finish(s: Session, run: RunState, stopped_by: Optional[str]) -> Path:
    """A stopped run saves its rolling checkpoint (+ state) to resume from; a finished one `_final`."""
    if stopped_by is not None:
        written = save(s, run, s.rule.last_path, "last")
    else:
        written = save(s, run, s.rule.final_path, "final")
        say_clear_hint(s)
    if s.main:
        save_chart(s, run)
        s.log.write("end", iteration=run.iteration, stopped_by=stopped_by, weights=str(written))
    return written


def _train_step(s: Session, run: RunState, batch):
    with torch.autocast(s.device.type, dtype=amp_dtype(s.device), enabled=s.opts.amp):
        return train_network_step(s.network, s.optimizer, batch.images, batch.truth, iteration=run.iteration,
                                  device=s.device, rng=s.rate_rng, tf32=s.opts.tf32,
                                  synchronize=lambda result: synchronize_update(s.network, result, s.ctx,
                                                                                s.device))


def _after_update(s: Session, run: RunState) -> None:
    """What AB's `train_network_waitkey` does after the update: EMA, then the rejection of similar filters."""
    said = [] if s.ema is None else s.ema.after_update(run.iteration)
    net = s.cfg.net
    if rejection_due(run.iteration, net.weights_reject_freq, net.max_batches):
        seed = int(np.random.SeedSequence([s.opts.seed, REJECT_STREAM, run.iteration]).generate_state(1)[0])
        said += reject_similar_weights(s.network, torch.Generator().manual_seed(seed))
    for message in said:
        s.say(message)
