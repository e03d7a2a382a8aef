"""AB's `-map` during training: every max(mAP_epochs · N_train / B, 100) iterations (not before burn_in, and at
max_batches), back to the cfg size, the weights copied into a batch-1 network built from the run's parsed
cfg, validate_detector_map on `valid`, `_best.weights` kept when the mAP is at least the best so far.

The pass must never end the run: the weights of hours of training are worth more than one mAP number.
Unreadable images of the `valid` list are skipped with a warning by the evaluation itself
(``skip_unreadable``); anything else that goes wrong is reported and training goes on. The regular backups
of the iteration are written before this pass, so even a crash inside it loses nothing."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from ..network import Network
from .backups import save, save_state
from .listeners import notify
from .session import Session, resize, silent
from .state import RunState


def map_pass(s: Session, run: RunState, saved: list[Path]) -> None:
    """After the iteration's backups: a failed pass is a warning; the state beside a `_last` written this
    iteration is rewritten to hold the new mAP and best."""
    evaluate_map_safely(lambda: _evaluate_map(s, run), run.iteration, say=s.console.print if s.main else silent)
    if s.rule.last_path in saved:
        save_state(s, run, s.rule.last_path)


def next_map(s: Session, run: RunState) -> int:
    """AB: every max(mAP_epochs · N_train / B, 100) iterations, not before burn_in."""
    net = s.cfg.net
    every = max(s.opts.map_epochs * len(s.train_paths) // net.images_per_update, 100)
    return max(run.last_map_iteration + every, net.burn_in)


def map_due(s: Session, run: RunState) -> bool:
    return s.opts.calc_map and (run.iteration >= next_map(s, run) or run.iteration == s.cfg.net.max_batches)


def evaluate_map_safely(evaluate: Callable[[], None], iteration: int, say=print) -> bool:
    """Run ``evaluate``; True when it finished, False (after a one-line warning) when it failed."""
    try:
        evaluate()
        return True
    except Exception as exc:     # noqa: BLE001 - any failure of the side pass; KeyboardInterrupt still stops
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        say(f"warning: the mAP at iteration {iteration} was not computed ({type(exc).__name__}: {reason}); "
            "training goes on")
        return False


def _evaluate_map(s: Session, run: RunState) -> None:
    from ..eval.map import validate_detector_map

    net = s.cfg.net
    if s.multiscale is not None and (run.width, run.height) != (net.width, net.height):
        s.say(f"Resizing to initial size: {net.width} x {net.height} ")
        resize(s, run, net.width, net.height)
    if not s.main:
        return
    if s.map_network is None:
        s.map_network = Network(_batch_one(s.cfg)).to(s.device)
    s.map_network.load_state_dict(s.network.state_dict())
    s.map_network.eval()
    result = validate_detector_map(s.map_network, s.data, thresh=s.opts.thresh, iou_thresh=s.opts.iou_thresh,
                                   points=0, letter_box=net.letter_box, coco=False, valid_default=s.data.train,
                                   skip_unreadable=True)
    for line in result.report_lines():
        s.console.print(line)
    run.mean_average_precision = result.mean_ap
    s.console.print(f"\n mean_average_precision (mAP@{s.opts.iou_thresh:0.2f}) = {run.mean_average_precision:f} ")
    run.chart.add_map(run.iteration, run.mean_average_precision)
    notify(s, "map_pass", run.iteration, result, run.chart.snapshot())
    s.log.write("map", iteration=run.iteration, map=run.mean_average_precision)
    if run.mean_average_precision >= run.best_map:
        run.best_map = run.mean_average_precision
        s.console.print("New best mAP!")
        save(s, run, s.rule.best_path, "best")


def _batch_one(cfg):
    """The trained cfg as Darknet's validation network reads it: batch=1 subdivisions=1 (what `parse_cfg`'s
    ``batch=1`` gives, without reading the file again)."""
    return dataclasses.replace(cfg, net=dataclasses.replace(cfg.net, batch=1, subdivisions=1, mini_batch=1))
