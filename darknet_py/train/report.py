"""What a training run tells the user and its JSON-lines log: the start banner, Darknet's per-iteration lines
(through :class:`.progress.TrainingConsole`), AB's -show_imgs pictures, and the diagnosis of a non-finite
loss."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from ..errors import TrainingError
from ..weights_check import weights_suspicion
from .augmented_images import save_augmented_batch
from .progress import IterationReport
from .session import Session
from .state import RunState


def announce(s: Session, run: RunState) -> None:
    net = s.cfg.net
    s.console.print(s.cfg.base_name)
    s.console.print(f"Learning Rate: {net.learning_rate:g}, Momentum: {net.momentum:g}, Decay: {net.decay:g}")
    if s.flavor.backup_banner:
        s.console.print(f"Weights are saved after: {s.rule.save_every} iterations. Last weights "
                        f"(*_last.weight) are stored every {s.rule.save_last} iterations. ")
    how = "resumed exactly (full state)" if s.saved is not None else "from the weights" if s.opts.weights \
        else "from scratch"
    s.log.write("start", iteration=run.iteration, max_batches=net.max_batches, images_per_update=
                net.images_per_update, flavor=s.opts.flavor, seed=s.opts.seed, device=str(s.device),
                world_size=s.ctx.world_size, cfg=s.cfg.file, data=s.data.file, weights=s.opts.weights, start=how)


def report_iteration(s: Session, run: RunState, loss: float, result, seconds: float, load_seconds: float,
                     next_map: int) -> IterationReport:
    """The step's per-layer lines, AB's -map lines, then Darknet's iteration line (console and log); returns
    the iteration's figures."""
    for line in result.log_lines:
        s.console.print(line)
    if s.opts.calc_map and s.flavor.map_progress_lines:
        s.console.print(f"\n (next mAP calculation at {next_map} iterations) ")
        if run.mean_average_precision > 0:
            s.console.print(f"\n Last accuracy mAP@{s.opts.iou_thresh:0.2f} = "
                            f"{run.mean_average_precision * 100:2.2f} %, best = {run.best_map * 100:2.2f} % ")
    report = IterationReport(run.iteration, loss, run.avg_loss, result.rate, seconds, load_seconds,
                             run.iteration * s.cfg.net.images_per_update, run.width, run.height, run.avg_time)
    s.console.iteration(report)
    s.log.write("iteration", **dataclasses.asdict(report))
    return report


def say_resized(s: Session, width: int, height: int) -> None:
    coef = s.multiscale.options.coef if s.multiscale is not None else 0.0
    s.say(s.flavor.resizing_line.format(width=width, height=height, coef=coef))


def say_clear_hint(s: Session) -> None:
    if s.flavor.backup_banner:
        s.say("If you want to train from the beginning, then use flag in the end of training command: -clear ")


def show_imgs(s: Session, run: RunState, batch) -> None:
    """AB -show_imgs: the pictures this iteration trains on, with their truth boxes."""
    if s.opts.show_imgs_dir is None:
        return
    save_augmented_batch(batch.images.numpy(), batch.truth.numpy(), batch.paths, run.iteration + 1,
                         Path(s.opts.show_imgs_dir))
    s.console.print("\nYou use flag -show_imgs, so will be saved aug_...jpg images")


def check_finite(s: Session, loss: float, layer_costs: list[float], iteration: int, batch,
                 started_at: int) -> None:
    """Stop instead of training on NaN/inf and say where it came from. The backups on disk stay the last
    good ones: nothing is saved after this point. On the first iteration after loading weights, the
    weights are the likely cause, not the labels or the learning rate."""
    if math.isfinite(loss):
        return
    yolo = s.network.detection_indices
    bad = [str(yolo[k]) for k, cost in enumerate(layer_costs) if not math.isfinite(cost)]
    images = [path for used in batch.paths for path in used]
    shown = ", ".join(images[:8]) + (f", ... ({len(images)} images)" if len(images) > 8 else "")
    tail, hint = "", ("look for huge, negative or NaN boxes in these images' label files, or lower learning_rate; "
                      f"the files in {s.rule.directory} hold the last good weights")
    if s.opts.weights and iteration == started_at + 1:
        tail, hint = weights_suspicion(s.opts.weights)
    raise TrainingError(
        f"iteration {iteration}: the loss is {loss}"
        + (f", from [yolo] layer {', '.join(bad)}" if bad else "")
        + f"; images of this batch: {shown}" + tail, file=s.cfg.file, hint=hint)
