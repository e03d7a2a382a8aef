"""`train_network`: Darknet's `train_detector` loop (spec §7.1–7.4, §7.7, §7.8), one iteration at a time.

The structure is Darknet's: load the weights (full or backbone; `-clear` resets `seen`), iteration = seen / B,
and while iteration < max_batches: re-pick the multiscale size every 10 iterations of this process, get a
batch, train it (`train_network_step`), update avg_loss (0.9/0.1), print Darknet's line, evaluate mAP when
due, write the backups. The details live in their own modules: the lr policy, optimizer and step in
:mod:`.policy`, :mod:`.update`, :mod:`.step`; batches in :mod:`darknet_py.data.loader`; sizes in
:mod:`.multiscale`; file names in :mod:`.checkpoints`; the resume side file in :mod:`.state`; console and
log in :mod:`.progress`; multi-process training in :mod:`.distributed`.

What darknet_py adds: a rolling full-state file next to `_last.weights` (a resumed CPU run equals an
uninterrupted one bit for bit), SIGINT/SIGTERM finish the current iteration and save `_last`, a non-finite
loss stops with a diagnosis instead of training on garbage, a progress bar and a JSON-lines log.
"""
from __future__ import annotations

import dataclasses
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

from ..config.cfg import CfgModel
from ..config.data import DataConfig, parse_data
from ..errors import DataFileError, TrainingError, UsageError
from ..faults import pause_point
from ..network import Network, check_memory, parse_cfg
from ..data.labels import read_list
from ..data.loader import detection_loader
from ..data.rand import GlibcRandom
from ..weights import load_pt, load_weights
from ..weights_check import warn_non_finite, weights_suspicion
from . import state as train_state
from .chart import TrainingChart
from .checkpoints import (BackupCounters, BackupRule, due_backups, file_digest, make_backup_rule, save_backup,
                          weights_header)
from .lock import BackupLock
from .map_pass import evaluate_map_safely
from .augmented_images import save_augmented_batch
from .distributed import (DistributedContext, all_reduce_mean, any_rank, average_batchnorm_statistics,
                          darknet_gpus_net, darknet_gpus_plan, init_distributed, install_gradient_all_reduce,
                          rank_net_options, shard_plan, shutdown)
from .ema import ConvolutionEma, make_ema
from .multiscale import Multiscale, multiscale_options
from .reject_weights import reject_similar_weights, rejection_due
from .progress import IterationReport, JsonLog, TrainingConsole, remaining_hours, smooth_hours
from .step import train_network_step
from .update import make_optimizer


@dataclass(frozen=True)
class TrainOptions:
    data_file: str
    cfg_file: str
    weights: Optional[str] = None
    clear: bool = False
    calc_map: bool = False
    device: str = "cpu"
    seed: int = 0
    flavor: str = "ab"
    max_batches: Optional[int] = None      # overrides [net] max_batches
    amp: bool = False
    tf32: bool = False
    workers: int = 0
    progress: Optional[bool] = None        # None: bar only when stderr is a terminal
    map_epochs: int = 4
    thresh: float = 0.25
    iou_thresh: float = 0.5
    log_file: Optional[str] = None
    chart_dir: str = "."                   # AB writes chart.png in the working directory
    chart_background: Optional[str] = None # AB -chart PATH: draw on the chart picture of an earlier run
    show_imgs_dir: Optional[str] = None    # AB -show_imgs: save the augmented pictures (aug_*.jpg) here
    global_batch: bool = False             # several processes share one batch instead of Darknet's -gpus


@dataclass(frozen=True)
class TrainOutcome:
    iteration: int
    stopped_by: Optional[str]              # None when max_batches was reached, else "SIGINT"/"SIGTERM"
    weights: Optional[Path]                # the file written last (_final, or _last when stopped)
    best_map: float


@dataclass
class RunState:
    """What one iteration hands to the next besides weights and momentum; saved in the side file."""
    iteration: int
    seen: int
    width: int
    height: int
    avg_loss: float = -1.0
    avg_time: float = -1.0                 # AB's smoothed hours-left estimate
    mean_average_precision: float = -1.0
    best_map: float = -1.0
    last_map: int = 0                      # AB iter_map
    counters: BackupCounters = field(default_factory=lambda: BackupCounters(0, 0))
    chart: Optional[TrainingChart] = None
    started_at: int = 0                    # the iteration this process started from (not saved)

    SAVED = ("iteration", "seen", "width", "height", "avg_loss", "avg_time", "mean_average_precision",
             "best_map", "last_map")


@dataclass
class Session:
    """The objects one training run shares between its helpers."""
    opts: TrainOptions
    cfg: CfgModel
    data: DataConfig
    network: Network
    optimizer: torch.optim.Optimizer
    train_paths: list[str]
    slots: tuple[int, ...]                 # this process's images of each iteration's global batch
    scales: Optional[Multiscale]           # None unless the last detection layer has `random`
    rate_rng: GlibcRandom
    rule: BackupRule
    ctx: DistributedContext
    device: torch.device
    console: Optional[TrainingConsole]
    log: JsonLog
    saved: Optional[dict] = None           # the full-state side file loaded with the weights
    loader: object = None                  # data.loader.DetectionLoader, started at the run's iteration
    map_network: Optional[Network] = None
    lock: Optional[BackupLock] = None      # one run per backup folder (rank 0 holds it)
    last_digest: str = ""                  # sha256 of the newest rolling checkpoint, for its state file
    ema: Optional[ConvolutionEma] = None   # AB [net] ema_alpha
    iterations_per_update: int = 1         # Darknet -gpus: N (each update trains N batches)

    @property
    def main(self) -> bool:
        return self.ctx.is_main


MULTISCALE_STREAM = 1      # the multiscale generator's seed is (seed, 1): independent of the loader's streams
REJECT_STREAM = 2          # weights_reject_freq draws from (seed, 2, iteration)


class StopSignals:
    """SIGINT/SIGTERM ask the loop to stop after the current iteration; a second one stops at once (the
    backups are written atomically, so abandoning a save never leaves a torn file)."""

    def __init__(self):
        self.received: Optional[str] = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt(signal.Signals(signum).name)    # the CLI exits 128 + this signal
        self.received = signal.Signals(signum).name
        print(f"\n{self.received}: stopping after this iteration and saving the last weights", flush=True)


def train_network(opts: TrainOptions) -> TrainOutcome:
    """Train as Darknet's `detector train` does; returns where the run ended."""
    s = _open_session(opts)
    net = s.cfg.net
    run = _started_or_closed(s)
    stopped_by = None
    with StopSignals() as stop:
        try:
            while run.iteration < net.max_batches:
                size = s.scales.next_size(run.iteration) if s.scales is not None else None
                if size is not None:
                    _resize(s, run, *size)
                started = time.time()
                batch = s.loader.next_batch()
                load_seconds = time.time() - started
                if s.main:
                    s.console.loaded(load_seconds, run.avg_loss)
                    _show_imgs(s, run, batch)
                started = time.time()
                result = _train_step(s, run, batch)
                loss, layer_costs = _reduced_loss(s, result)
                _check_finite(s, loss, layer_costs, run.iteration + 1, batch, run.started_at)
                average_batchnorm_statistics(s.network, s.ctx)
                run.iteration += s.iterations_per_update
                _after_update(s, run)
                run.seen += net.images_per_update * s.iterations_per_update
                s.network.seen = run.seen
                run.avg_loss = loss if run.avg_loss < 0 or math.isnan(run.avg_loss) else run.avg_loss
                run.avg_loss = run.avg_loss * 0.9 + loss * 0.1
                seconds = time.time() - started
                if s.main:
                    _report(s, run, loss, result, seconds, load_seconds)
                run.avg_time = smooth_hours(run.avg_time, remaining_hours(net.max_batches, run.iteration, seconds,
                                                                        load_seconds))
                run.chart.add_loss(run.iteration, run.avg_loss)
                if s.main and run.iteration % 100 == 0:
                    _save_chart(s, run)
                map_due = s.opts.calc_map and _map_due(s, run)
                if map_due:
                    run.last_map = run.iteration       # the backups below already know the mAP is done
                saved = [_save(s, run, path, kind) for kind, path in due_backups(s.rule, run.counters, run.iteration)]
                if map_due:
                    _map_pass(s, run, saved)
                if any_rank(stop.received is not None, s.ctx, s.device):
                    stopped_by = stop.received or "SIGTERM"
                    break
            written = _finish(s, run, stopped_by)
        finally:
            _close_session(s)
    return TrainOutcome(run.iteration, stopped_by, written, run.best_map)


# -- start and end ----------------------------------------------------------------------------------------------

def _started_or_closed(s: Session) -> RunState:
    """Start the run; if that fails, release what the session holds (backup-folder lock, log)."""
    try:
        return _start_run(s)
    except BaseException:
        _close_session(s)
        raise


def _open_session(opts: TrainOptions) -> Session:
    device = torch.device(opts.device)
    _set_precision(opts.tf32)
    ctx = init_distributed(device)
    data = parse_data(opts.data_file, flavor=opts.flavor)
    cfg = parse_cfg(opts.cfg_file, flavor=opts.flavor)
    if opts.max_batches is not None:
        cfg = dataclasses.replace(cfg, net=dataclasses.replace(cfg.net, max_batches=opts.max_batches))
    darknet_gpus = ctx.enabled and not opts.global_batch
    if darknet_gpus:
        cfg = dataclasses.replace(cfg, net=darknet_gpus_net(cfg.net, ctx))
    net = cfg.net
    _check_trainable(cfg)
    if opts.calc_map:
        _check_map_inputs(data, cfg)
    check_memory(cfg, opts.device, training=True)     # one message instead of an allocation failure
    torch.manual_seed(opts.seed)                       # Darknet's random init, made reproducible
    network = Network(cfg).to(device)
    if opts.amp:
        _yolo_in_float32(network)
    saved = _load_start_weights(network, opts, say=print if ctx.is_main else _silent)
    ema = make_ema(network, net.ema_alpha, net.max_batches)
    optimizer = make_optimizer(network)                # with the global B (Adam's scale)
    install_gradient_all_reduce(optimizer, ctx)
    plan = (darknet_gpus_plan if darknet_gpus else shard_plan)(net.mini_batch, net.subdivisions, ctx)
    if ctx.enabled and not darknet_gpus:
        network.net = rank_net_options(net, plan)      # this rank trains its share of each iteration
    rule = make_backup_rule(opts.flavor, data.backup, cfg.base_name, net.max_batches, data.saveweights,
                            data.savelast)
    log_path = Path(opts.log_file) if opts.log_file else rule.directory / f"{rule.base}_train.jsonl"
    scales = multiscale_options(cfg)
    scales = Multiscale(scales, np.random.default_rng([opts.seed, MULTISCALE_STREAM])) if scales.enabled else None
    train_paths = read_list(data.resolve("train"))
    lock = BackupLock(rule.directory)
    if ctx.is_main:
        lock.acquire()                                  # before this run writes any file
    try:
        log = JsonLog(log_path if ctx.is_main else None)
    except BaseException:
        lock.release()
        raise
    return Session(opts, cfg, data, network, optimizer, train_paths, plan.indices, scales,
                   GlibcRandom(opts.seed or 1), rule, ctx, device, console=None, log=log, saved=saved, lock=lock,
                   ema=ema, iterations_per_update=ctx.world_size if darknet_gpus else 1)


def _start_run(s: Session) -> RunState:
    """Darknet: iteration = seen / B with the cfg being trained (spec §6.6); its counters start there. With a
    matching full-state file, everything continues exactly where the saved run was."""
    pause_point("train-start")                         # tests: the lock is held, nothing trained yet
    net = s.cfg.net
    iteration = s.network.seen // net.images_per_update
    run = RunState(iteration=iteration, seen=s.network.seen, width=net.width, height=net.height,
                   last_map=iteration, counters=BackupCounters(iteration, iteration),
                   chart=TrainingChart(net.max_batches, net.max_chart_loss))
    if s.saved is not None:
        _restore(s, run, s.saved)
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
        _announce(s, run)
    return run


def _announce(s: Session, run: RunState) -> None:
    net = s.cfg.net
    s.console.print(s.cfg.base_name)
    s.console.print(f"Learning Rate: {net.learning_rate:g}, Momentum: {net.momentum:g}, Decay: {net.decay:g}")
    if s.opts.flavor == "ab":
        s.console.print(f"Weights are saved after: {s.rule.save_every} iterations. Last weights "
                        f"(*_last.weight) are stored every {s.rule.save_last} iterations. ")
    how = "resumed exactly (full state)" if s.saved is not None else "from the weights" if s.opts.weights \
        else "from scratch"
    s.log.write("start", iteration=run.iteration, max_batches=net.max_batches, images_per_update=
                net.images_per_update, flavor=s.opts.flavor, seed=s.opts.seed, device=str(s.device),
                world_size=s.ctx.world_size, cfg=s.cfg.file, data=s.data.file, weights=s.opts.weights, start=how)


def _finish(s: Session, run: RunState, stopped_by: Optional[str]) -> Path:
    """A stopped run saves its rolling checkpoint (+ state) to resume from; a finished one `_final`."""
    if stopped_by is not None:
        written = _save(s, run, s.rule.last_path, "last")
    else:
        written = _save(s, run, s.rule.final_path, "final")
        if s.main and s.opts.flavor == "ab":
            s.console.print("If you want to train from the beginning, then use flag in the end of training "
                            "command: -clear ")
    if s.main:
        _save_chart(s, run)
        s.log.write("end", iteration=run.iteration, stopped_by=stopped_by, weights=str(written))
    return written


def _close_session(s: Session) -> None:
    s.loader = None                        # stops its worker processes
    if s.console is not None:
        s.console.close()
    s.log.close()
    if s.lock is not None:
        s.lock.release()
    shutdown(s.ctx)


def _silent(*args, **kwargs) -> None:
    """What ranks other than 0 print."""


def _set_precision(tf32: bool) -> None:
    """float32 like Darknet unless TF32 is asked for (spec §7.6)."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def _check_trainable(cfg: CfgModel) -> None:
    """A detector to train (a [yolo] layer), B > 1 (AB refuses B == 1, warns below 8; spec §2.2), and
    something to do."""
    if not any(spec.kind == "yolo" for spec in cfg.layers):
        raise UsageError("the cfg has no [yolo] layer: detector train trains YOLOv3/v4-style detectors",
                         file=cfg.file)
    B = cfg.net.images_per_update
    if B == 1:
        raise UsageError("batch=1 cannot train: Darknet refuses it", file=cfg.file,
                         hint="set batch=64 subdivisions=16 (or any batch > 1) in [net]")
    if cfg.net.max_batches <= 0:
        raise UsageError(f"max_batches is {cfg.net.max_batches}: nothing to train", file=cfg.file,
                         hint="set max_batches in [net] or pass --max-batches")
    if B < 8 and cfg.flavor == "ab":
        print(f"\n Warning: You set batch={B} lower than 64! It is recommended to set batch=64 subdivision=64 ")


def _check_map_inputs(data: DataConfig, cfg: CfgModel) -> None:
    """AB checks the `-map` inputs before training, not 1000 iterations later: the valid list (falling back
    to `train`) must exist and the names must match the classes."""
    from ..eval.images import valid_list

    valid_list(data, data.train)
    names = data.read_names()
    classes = [spec.options.classes for spec in cfg.layers if spec.kind == "yolo"][-1]
    if len(names) != classes:
        raise DataFileError(f"has {len(names)} names but the cfg has classes={classes}; -map needs them equal",
                            file=str(data.resolve("names")))


def _load_start_weights(network: Network, opts: TrainOptions, say=print) -> Optional[dict]:
    """Load WEIGHTS (a full model, a backbone prefix, or a .pt) and return the full-state side file that was
    saved with exactly these weights, if any. `-clear` starts from iteration 0 with fresh state."""
    if opts.weights is None:
        return None
    say(f"Loading weights from {opts.weights}...", flush=True)
    if str(opts.weights).endswith(".pt"):
        load_pt(network, opts.weights)
    else:
        report = load_weights(network, opts.weights)
        if report.partial:
            say(f" loaded {report.layers_loaded} of {report.layers_total} layers with parameters "
                "(a backbone: the others keep their random initialisation)")
    say(f"Done! Loaded weights, seen = {network.seen}", flush=True)
    warn_non_finite(network, opts.weights, say)
    if opts.clear:
        network.seen = 0
        return None
    return train_state.load_training_state(train_state.state_path(opts.weights), file_digest(opts.weights))


# -- state ------------------------------------------------------------------------------------------------------

def _capture(s: Session, run: RunState) -> dict:
    loop = {key: getattr(run, key) for key in RunState.SAVED}
    loop["counters"] = [run.counters.last_save, run.counters.last_last]
    loop["chart"] = run.chart.to_plain()
    return {
        "loop": loop,
        "optimizer": s.optimizer.state_dict(),
        "multiscale": None if s.scales is None else train_state.to_plain(s.scales.state_dict()),
        "rate_rng": train_state.to_plain(vars(s.rate_rng)),
        "rng": train_state.capture_rng(),
        "ema": None if s.ema is None else s.ema.state_dict(),
    }


def _restore(s: Session, run: RunState, saved: dict) -> None:
    loop = saved["loop"]
    for key in RunState.SAVED:
        setattr(run, key, loop[key])
    run.counters = BackupCounters(*loop["counters"])
    run.chart = TrainingChart.from_plain(loop["chart"])
    s.optimizer.load_state_dict(saved["optimizer"])
    if s.scales is not None and saved["multiscale"] is not None:
        s.scales.load_state_dict(train_state.from_plain(saved["multiscale"]))
    vars(s.rate_rng).update(train_state.from_plain(saved["rate_rng"]))
    train_state.restore_rng(saved["rng"])
    if s.ema is not None:
        s.ema.load_state_dict(saved.get("ema"))


def _save(s: Session, run: RunState, path: Path, kind: str) -> Path:
    """Write one backup (rank 0 only); the rolling `last` one gets the full-state side file too."""
    if not s.main:
        return path
    header = weights_header(s.opts.flavor, run.seen, run.iteration, s.cfg.net.images_per_update)
    digest = save_backup(s.network, path, header)
    if kind == "last":
        s.last_digest = digest
        _save_state(s, run, path)
        _save_ema(s, header)
    s.log.write("save", iteration=run.iteration, kind=kind, path=str(path))
    return path


def _save_state(s: Session, run: RunState, weights: Path) -> None:
    if s.main:
        train_state.save_training_state(train_state.state_path(weights), _capture(s, run), s.last_digest)


def _save_chart(s: Session, run: RunState) -> None:
    """AB saves the chart as chart.png and chart_<cfg name>.png."""
    background = None
    if s.opts.chart_background:
        background = cv2.imread(s.opts.chart_background)    # None when missing, as AB starts a new chart
    for name in ("chart.png", f"chart_{s.cfg.base_name}.png"):
        run.chart.save(Path(s.opts.chart_dir) / name, background)


def _save_ema(s: Session, header) -> None:
    """AB writes `<base>_ema.weights` (the averages, live rolling statistics) with every `_last.weights`."""
    if s.ema is None or not s.ema.initialized:
        return
    path = s.rule.directory / f"{s.rule.base}_ema.weights"
    with s.ema.swapped_in():
        save_backup(s.network, path, header)
    print(f" EMA weights are saved to the file: {path} ", flush=True)


def _after_update(s: Session, run: RunState) -> None:
    """What AB's `train_network_waitkey` does after the update: EMA, then the rejection of similar filters."""
    said = [] if s.ema is None else s.ema.after_update(run.iteration)
    net = s.cfg.net
    if rejection_due(run.iteration, net.weights_reject_freq, net.max_batches):
        seed = int(np.random.SeedSequence([s.opts.seed, REJECT_STREAM, run.iteration]).generate_state(1)[0])
        said += reject_similar_weights(s.network, torch.Generator().manual_seed(seed))
    if s.main:
        for message in said:
            s.console.print(message)


def _show_imgs(s: Session, run: RunState, batch) -> None:
    """AB -show_imgs: the pictures this iteration trains on, with their truth boxes."""
    if s.opts.show_imgs_dir is None:
        return
    save_augmented_batch(batch.images.numpy(), batch.truth.numpy(), batch.paths, run.iteration + 1,
                         Path(s.opts.show_imgs_dir))
    s.console.print("\nYou use flag -show_imgs, so will be saved aug_...jpg images")


# -- one iteration ----------------------------------------------------------------------------------------------

def _resize(s: Session, run: RunState, width: int, height: int, message: bool = True) -> None:
    run.width, run.height = width, height
    s.network.resize(width, height)
    s.loader.set_size(width, height)
    if s.main and message:
        if s.opts.flavor == "pj":
            s.console.print(f"Resizing\n{width}")
        else:
            s.console.print(f"Resizing, random_coef = {s.scales.options.coef:.2f} \n\n {width} x {height} ")


def _train_step(s: Session, run: RunState, batch):
    with torch.autocast(s.device.type, dtype=_amp_dtype(s.device), enabled=s.opts.amp):
        return train_network_step(s.network, s.optimizer, batch.images, batch.truth, iteration=run.iteration,
                                  device=s.device, rng=s.rate_rng, tf32=s.opts.tf32)


def _amp_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 (float32's range: no loss scaling needed) where the device has it, else float16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def _yolo_in_float32(network: Network) -> None:
    """Under --amp the convolutions run in reduced precision, but the [yolo] layers and their Darknet deltas
    stay float32 (the deltas are built by exact index arithmetic on float32 tensors)."""
    for index in network.detection_indices:
        network.layers[index].register_forward_pre_hook(lambda layer, args: (args[0].float(), *args[1:]))


def _reduced_loss(s: Session, result) -> tuple[float, list[float]]:
    """The iteration's loss and each yolo layer's summed cost, averaged over the ranks."""
    per_layer = [sum(costs) for costs in zip(*result.layer_costs)]
    values = all_reduce_mean([result.loss, *per_layer], s.ctx, s.device)
    return values[0], values[1:]


def _check_finite(s: Session, loss: float, layer_costs: list[float], iteration: int, batch,
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


def _report(s: Session, run: RunState, loss: float, result, seconds: float, load_seconds: float) -> None:
    for line in result.log_lines:
        s.console.print(line)
    if s.opts.calc_map and s.opts.flavor == "ab":
        s.console.print(f"\n (next mAP calculation at {_next_map(s, run)} iterations) ")
        if run.mean_average_precision > 0:
            s.console.print(f"\n Last accuracy mAP@{s.opts.iou_thresh:0.2f} = "
                            f"{run.mean_average_precision * 100:2.2f} %, best = {run.best_map * 100:2.2f} % ")
    report = IterationReport(run.iteration, loss, run.avg_loss, result.rate, seconds, load_seconds,
                             run.iteration * s.cfg.net.images_per_update, run.width, run.height, run.avg_time)
    s.console.iteration(report)
    s.log.write("iteration", **dataclasses.asdict(report))


# -- -map -------------------------------------------------------------------------------------------------------

def _map_pass(s: Session, run: RunState, saved: list[Path]) -> None:
    """After the iteration's backups: a failed pass is a warning, never the end of the run; the state beside
    a `_last` written this iteration is rewritten to hold the new mAP and best."""
    evaluate_map_safely(lambda: _evaluate_map(s, run), run.iteration, say=s.console.print if s.main else _silent)
    if s.rule.last_path in saved:
        _save_state(s, run, s.rule.last_path)


def _next_map(s: Session, run: RunState) -> int:
    """AB: every max(mAP_epochs · N_train / B, 100) iterations, not before burn_in."""
    net = s.cfg.net
    every = max(s.opts.map_epochs * len(s.train_paths) // net.images_per_update, 100)
    return max(run.last_map + every, net.burn_in)


def _map_due(s: Session, run: RunState) -> bool:
    return run.iteration >= _next_map(s, run) or run.iteration == s.cfg.net.max_batches


def _evaluate_map(s: Session, run: RunState) -> None:
    """AB's `-map`: back to the initial size, copy the weights into a batch-1 network, validate_detector_map
    on `valid`, keep `_best.weights` when the mAP is at least the best so far."""
    from ..eval.map import validate_detector_map

    net = s.cfg.net
    if s.scales is not None and (run.width, run.height) != (net.width, net.height):
        if s.main:
            s.console.print(f"Resizing to initial size: {net.width} x {net.height} ")
        _resize(s, run, net.width, net.height, message=False)
    if not s.main:
        return
    if s.map_network is None:
        s.map_network = Network(parse_cfg(s.cfg.file, flavor=s.opts.flavor, batch=1)).to(s.device)
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
    s.log.write("map", iteration=run.iteration, map=run.mean_average_precision)
    if run.mean_average_precision >= run.best_map:
        run.best_map = run.mean_average_precision
        s.console.print("New best mAP!")
        _save(s, run, s.rule.best_path, "best")
