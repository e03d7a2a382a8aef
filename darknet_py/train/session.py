"""Setting up and tearing down one training run: the device and processes, the network (built from the cfg
parsed once per command) and its starting weights, the optimizer, the backup rule, the multiscale sizes, the
backup-folder lock, the log and the stop signals. :mod:`.loop` trains with what :func:`open_session`
returns and hands it back to :func:`close_session`.
"""
from __future__ import annotations

import dataclasses
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config.cfg import CfgModel
from ..config.data import DataConfig, parse_data
from ..data.labels import read_list
from ..data.rand import GlibcRandom
from ..errors import DataFileError, UsageError, WeightsError
from ..flavor import flavor_of
from ..network import Network, check_memory, parse_cfg
from ..outputs import refuse_overwriting_inputs
from ..weights import load_pt, load_weights
from ..weights_check import warn_non_finite
from . import state as train_state
from .checkpoints import BackupRule, file_digest, make_backup_rule
from .distributed import (DEFAULT_COLLECTIVE_TIMEOUT, DistributedContext, darknet_gpus_net, darknet_gpus_plan,
                          init_distributed, rank_net_options, shard_plan, shutdown)
from .elastic import resumed_after_restart
from .ema import ConvolutionEma, make_ema
from .lock import BackupLock
from .multiscale import Multiscale, multiscale_options
from .precision import set_precision, yolo_in_float32
from .progress import JsonLog, TrainingConsole
from .update import make_optimizer

MULTISCALE_STREAM = 1      # the multiscale generator's seed is (seed, 1): independent of the loader's streams


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
    cudnn_benchmark: bool = False
    channels_last: bool = False
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
    collective_timeout: float = DEFAULT_COLLECTIVE_TIMEOUT   # seconds the ranks wait for each other
    mjpeg_port: Optional[int] = None       # AB -mjpeg_port: serve the live chart over HTTP
    bind: str = "127.0.0.1"                # the address the -mjpeg_port server listens on
    tensorboard_dir: Optional[str] = None  # --tensorboard DIR: the figures as TensorBoard scalars


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
    multiscale: Optional[Multiscale]       # None unless the last detection layer has `random`
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
    listeners: list = dataclasses.field(default_factory=list)   # train.listeners: chart stream, TensorBoard

    @property
    def main(self) -> bool:
        return self.ctx.is_main

    @property
    def flavor(self):
        return flavor_of(self.opts.flavor)

    def say(self, text: str) -> None:
        """A console line, printed by rank 0 only."""
        if self.main:
            self.console.print(text)

    def resumable_parts(self, run: train_state.RunState) -> dict:
        """Everything the side file saves and restores, by its name there (see :mod:`.state`)."""
        return {"loop": run, "optimizer": self.optimizer, "multiscale": self.multiscale, "rate_rng": self.rate_rng,
                "rng": train_state.GlobalRandom(), "ema": self.ema}


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


def open_session(opts: TrainOptions, cfg: Optional[CfgModel] = None) -> Session:
    """Everything a run needs before its first iteration. ``cfg``: the cfg the command already parsed (the
    pre-training check's), else it is parsed here."""
    device = torch.device(opts.device)
    set_precision(opts.tf32, opts.cudnn_benchmark)
    ctx = init_distributed(device, opts.collective_timeout)
    data = parse_data(opts.data_file, flavor=opts.flavor)
    cfg = training_cfg(cfg if cfg is not None else parse_cfg(opts.cfg_file, flavor=opts.flavor), opts, ctx)
    net = cfg.net
    _check_trainable(cfg)
    if opts.calc_map:
        _check_map_inputs(data, cfg)
    check_memory(cfg, opts.device, training=True)     # one message instead of an allocation failure
    torch.manual_seed(opts.seed)                       # Darknet's random init, made reproducible
    network = Network(cfg).to(device)
    if opts.amp:
        yolo_in_float32(network)
    rule = make_backup_rule(opts.flavor, data.backup, cfg.base_name, net.max_batches, data.saveweights,
                            data.savelast)
    say = print if ctx.is_main else silent
    record = train_state.run_record(cfg, flavor_of(opts.flavor))
    with resumed_after_restart(opts, ctx, rule, record, say) as opts:   # torchrun --max-restarts: from our _last
        saved = load_start_weights(network, opts, record, say=say)
    if opts.channels_last:
        network.channels_last_()
    ema = make_ema(network, net.ema_alpha, net.max_batches)
    optimizer = make_optimizer(network)                # with the global B (Adam's scale)
    darknet_gpus = _darknet_gpus(opts, ctx)
    plan = (darknet_gpus_plan if darknet_gpus else shard_plan)(net.mini_batch, net.subdivisions, ctx)
    if ctx.enabled and not darknet_gpus:
        network.net_options = rank_net_options(net, plan)      # this rank trains its share of each iteration
    log_path = Path(opts.log_file) if opts.log_file else rule.directory / f"{rule.base}_train.jsonl"
    sizes = multiscale_options(cfg)
    multiscale = Multiscale(sizes, np.random.default_rng([opts.seed, MULTISCALE_STREAM])) if sizes.enabled else None
    train_paths = read_list(data.resolve("train"))
    refuse_writing_over_inputs(opts, data, cfg, log_path, train_paths)
    lock = BackupLock(rule.directory)
    if ctx.is_main:
        lock.acquire()                                  # before this run writes any file
    try:
        log = JsonLog(log_path if ctx.is_main else None)
    except BaseException:
        lock.release()
        raise
    return Session(opts, cfg, data, network, optimizer, train_paths, plan.indices, multiscale,
                   GlibcRandom(opts.seed or 1), rule, ctx, device, console=None, log=log, saved=saved, lock=lock,
                   ema=ema, iterations_per_update=ctx.world_size if darknet_gpus else 1)


def refuse_writing_over_inputs(opts: TrainOptions, data: DataConfig, cfg: CfgModel, log_path: Path,
                               train_paths: list[str]) -> None:
    """The log and the charts must not be the cfg, .data, names, lists, start weights or a training image
    (outputs.py). The backups are left out on purpose: resuming from `_last.weights` and writing it again is
    Darknet's design, and so is `-chart chart.png` drawing on (and replacing) the chart it continues."""
    optional = {role: data.resolve(key, must_exist=False)
                for role, key in (("names file", "names"), ("valid list", "valid")) if key in data.lines}
    charts = [Path(opts.chart_dir) / name for name in ("chart.png", f"chart_{cfg.base_name}.png")]
    refuse_overwriting_inputs("detector train", {
        "data file": opts.data_file, "cfg file": opts.cfg_file, "weights file": opts.weights,
        "train list": data.resolve("train"), **optional, "image": train_paths}, {"--log": log_path, "chart": charts})


def training_cfg(cfg: CfgModel, opts: TrainOptions, ctx: DistributedContext) -> CfgModel:
    """The parsed cfg as this run trains it: --max-batches, and Darknet -gpus' learning rate × N."""
    if opts.max_batches is not None:
        cfg = dataclasses.replace(cfg, net=dataclasses.replace(cfg.net, max_batches=opts.max_batches))
    if _darknet_gpus(opts, ctx):
        cfg = dataclasses.replace(cfg, net=darknet_gpus_net(cfg.net, ctx))
    return cfg


def close_session(s: Session) -> None:
    from .listeners import close_listeners

    close_listeners(s.listeners)           # the HTTP server's threads end with the run
    s.listeners = []
    s.loader = None                        # stops its worker processes
    if s.console is not None:
        s.console.close()
    s.log.close()
    if s.lock is not None:
        s.lock.release()
    shutdown(s.ctx)


def resize(s: Session, run: train_state.RunState, width: int, height: int) -> None:
    """The run, the network and the loader change size together (multiscale, or the cfg size for -map)."""
    run.width, run.height = width, height
    s.network.resize(width, height)
    s.loader.set_size(width, height)


def silent(*args, **kwargs) -> None:
    """What ranks other than 0 print."""


def _darknet_gpus(opts: TrainOptions, ctx: DistributedContext) -> bool:
    """Several processes train as Darknet's -gpus does (each a whole batch) unless --global-batch."""
    return ctx.enabled and not opts.global_batch


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
    if B < 8 and flavor_of(cfg.flavor).small_batch_warning:
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


def load_start_weights(network: Network, opts: TrainOptions, record: dict, say=print) -> Optional[dict]:
    """Load WEIGHTS (a full model, a backbone prefix, or a .pt) and return the full-state side file that was
    saved with exactly these weights by a run ``record`` (:func:`.state.run_record`) can continue, if any.
    `-clear` starts from iteration 0 with fresh state."""
    if opts.weights is None:
        return None
    say(f"Loading weights from {opts.weights}...", flush=True)
    if str(opts.weights).endswith(".pt"):
        load_pt(network, opts.weights)
    else:
        try:
            report = load_weights(network, opts.weights)
        except WeightsError as exc:
            raise train_state.explain_weights_mismatch(exc, opts.weights, record) from None
        if report.partial:
            say(f" loaded {report.layers_loaded} of {report.layers_total} layers with parameters "
                "(a backbone: the others keep their random initialisation)")
    say(f"Done! Loaded weights, seen = {network.seen}", flush=True)
    warn_non_finite(network, opts.weights, say)
    if opts.clear:
        network.seen = 0
        return None
    return train_state.load_training_state(train_state.state_path(opts.weights), file_digest(opts.weights),
                                           record, say)
