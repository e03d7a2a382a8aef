"""`darknet_py detector train DATA CFG [WEIGHTS]` with Darknet's flags (`-clear`, `-map`, `-dont_show`,
`-gpus 0,1`, `-mAP_epochs`, `-thresh`, `-iou_thresh`) and darknet_py's own (`--device`, `--seed`, ...)."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional

import click

from ..errors import UsageError
from ..stopping import exit_status
from ..device import resolve_device
from .options import allow_empty_labels_option, bind_option, device_options, flavor_option

COMMANDS: list = []


@click.command()
@click.argument("data", type=click.Path())
@click.argument("cfg", type=click.Path())
@click.argument("weights", type=click.Path(), required=False)
@click.option("-clear", "clear", is_flag=True, help="Start from iteration 0 whatever `seen` the weights hold.")
@click.option("-map", "calc_map", is_flag=True, help="Compute mAP on `valid` periodically; keep _best.weights.")
@click.option("-dont_show", "dont_show", is_flag=True, help="Accepted for Darknet compatibility (no windows).")
@click.option("-gpus", "gpus", default=None, metavar="0,1",
              help="Train on these GPUs as Darknet does (each trains a batch per update, learning rate x N, "
                   "an update counts N iterations): relaunches under torchrun, one process per GPU.")
@click.option("--global-batch", "global_batch", is_flag=True,
              help="With several processes: share one batch of B images per iteration between them (the "
                   "single-process update) instead of Darknet's -gpus semantics.")
@click.option("--collective-timeout", "collective_timeout", type=click.FloatRange(min=1), default=600,
              show_default=True, metavar="SECONDS",
              help="With several processes (torchrun, -gpus): how long a process waits for the others before "
                   "it stops as having lost one (rank 0 then saves _last.weights).")
@click.option("-mAP_epochs", "map_epochs", type=int, default=4, show_default=True,
              help="-map period in epochs of the train list (at least 100 iterations).")
@click.option("-thresh", "thresh", type=float, default=0.25, show_default=True, help="-map detection threshold.")
@click.option("-iou_thresh", "iou_thresh", type=float, default=0.5, show_default=True, help="-map IoU threshold.")
@click.option("-chart", "chart_path", default=None,
              help="Continue drawing on this chart picture (AB: a chart.png of an earlier run).")
@click.option("-show_imgs", "show_imgs", is_flag=True,
              help="Save every augmented training picture with its boxes as aug_*.jpg (working directory).")
@device_options
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of every random draw (sampling, augmentation, multiscale): same seed, same run.")
@flavor_option
@click.option("--max-batches", "max_batches", type=click.IntRange(min=1), default=None,
              help="Override [net] max_batches.")
@click.option("--amp", is_flag=True,
              help="Mixed precision: autocast to bfloat16 (float16 on GPUs without it); [yolo] layers stay "
                   "float32. Default: float32 like Darknet.")
@click.option("--tf32", is_flag=True, help="Allow TF32 matmul/convolutions on CUDA. Default: off for parity.")
@click.option("--cudnn-benchmark", "cudnn_benchmark", is_flag=True,
              help="Let cuDNN time its convolution algorithms for each input size (float32 still, other "
                   "rounding; faster on some GPUs). Default: cuDNN's heuristics.")
@click.option("--channels-last", "channels_last", is_flag=True,
              help="Keep weights and activations in NHWC order, the layout of GPU tensor cores (with --amp); "
                   "float32 results differ by rounding. Default: NCHW, as Darknet.")
@click.option("--workers", type=int, default=None,
              help="Data loader worker processes (default: the CPU cores this process may use).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: only when stderr is a terminal).")
@click.option("--log", "log_file", type=click.Path(), default=None,
              help="JSON-lines log (default: <backup>/<cfg name>_train.jsonl).")
@click.option("--no-check", "no_check", is_flag=True, help="Skip the fast dataset check before training.")
@allow_empty_labels_option
@click.option("-mjpeg_port", "mjpeg_port", type=int, default=None, metavar="PORT",
              help="Serve the live chart over HTTP (AB): http://127.0.0.1:PORT/ (MJPEG), /chart.png, /status.json.")
@bind_option
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Write loss, avg loss, learning rate, layer costs, images/s, mAP and per-class AP as "
                   "TensorBoard scalars (step = iteration) to DIR; needs the [tensorboard] extra.")
def train(data: str, cfg: str, weights: Optional[str], clear: bool, calc_map: bool, dont_show: bool,
          gpus: Optional[str], map_epochs: int, thresh: float, iou_thresh: float, gpu_index: Optional[int],
          chart_path: Optional[str], show_imgs: bool, global_batch: bool, collective_timeout: float,
          device: Optional[str],
          seed: int, flavor: str, max_batches: Optional[int], amp: bool, tf32: bool,
          cudnn_benchmark: bool, channels_last: bool, workers: Optional[int],
          progress: Optional[bool], log_file: Optional[str], no_check: bool,
          allow_empty_labels: bool, mjpeg_port: Optional[int], bind: str, tensorboard_dir: Optional[str]) -> None:
    """Train CFG on the images listed by DATA, optionally starting from WEIGHTS (full or partial)."""
    from ..train.distributed import check_gpus_exist, launched_by_torchrun, parse_gpus, torchrun_command
    from ..data.loader import default_workers
    from ..train.loop import train_network
    from ..train.lost_peer import LostPeerError
    from ..train.session import TrainOptions
    from .check import fast_check_before_training

    gpu_list = parse_gpus(gpus)
    check_gpus_exist(gpu_list, device)
    if len(gpu_list) > 1 and not launched_by_torchrun():
        # each process runs this same command line without -gpus (torchrun gives it its rank and GPU)
        command, env = torchrun_command(gpu_list, _argv_without_gpus(sys.argv[1:]))
        click.echo("Multi-GPU training runs one process per GPU:\n  CUDA_VISIBLE_DEVICES="
                   f"{env['CUDA_VISIBLE_DEVICES']} " + " ".join(command), err=True)
        sys.exit(subprocess.call(command, env=env))
    device = resolve_device(device, gpu_index if gpu_index is not None else (gpu_list[0] if gpu_list else None))
    if workers is not None and workers < 0:
        raise UsageError("--workers must not be negative", value=str(workers))
    if map_epochs < 1:
        raise UsageError("-mAP_epochs must be at least 1", value=str(map_epochs))
    if tensorboard_dir is not None:
        from ..train.tensorboard import require_tensorboard
        require_tensorboard()
    parsed = (fast_check_before_training(data, cfg, flavor, allow_empty_labels) if not no_check
              else None)   # else parsed by training
    options = TrainOptions(
        data_file=data, cfg_file=cfg, weights=weights, clear=clear, calc_map=calc_map, device=device,
        seed=seed, flavor=flavor, max_batches=max_batches, amp=amp, tf32=tf32,
        cudnn_benchmark=cudnn_benchmark, channels_last=channels_last,
        workers=default_workers(device) if workers is None else workers, progress=progress,
        map_epochs=map_epochs, thresh=thresh, iou_thresh=iou_thresh, log_file=log_file, chart_background=chart_path,
        show_imgs_dir="." if show_imgs else None, global_batch=global_batch, collective_timeout=collective_timeout,
        mjpeg_port=mjpeg_port, bind=bind, tensorboard_dir=tensorboard_dir)
    try:
        outcome = train_network(options, parsed)
    except LostPeerError as exc:
        # the process group is broken: tearing it down at interpreter exit may abort or wait on the lost
        # peer, so the error is printed here and the process ends at once
        _exit_now(f"darknet_py: error: {exc}", 1)
    if outcome.stopped_by is not None:      # not finished: exit 128 + signal, so `&&` and schedulers see it
        click.echo(f"darknet_py: stopped by {outcome.stopped_by} at iteration {outcome.iteration}; "
                   f"resume from {outcome.weights}", err=True)
        sys.exit(exit_status(outcome.stopped_by))
    if launched_by_torchrun():
        # The run is complete and saved, and the process group is gone. A torchrun rank then sometimes
        # aborted in gloo's C++ teardown while the interpreter finalised ("terminate called without an active
        # exception", exit -6), and torchrun reported the whole run as failed: end the rank here instead.
        _exit_now(None, 0)


def _exit_now(message: Optional[str], status: int) -> None:
    if message is not None:
        print(message, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _argv_without_gpus(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "-gpus":
            skip = True
            continue
        if arg.startswith("-gpus="):
            continue
        out.append(arg)
    return out


COMMANDS.append(train)
