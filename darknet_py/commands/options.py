"""Options shared by several commands, and the one rule that turns `--device`/`-i` into a torch device."""
from __future__ import annotations

import os
from typing import Optional

import click

from ..errors import UsageError
from ..flavor import AB, FLAVORS

flavor_option = click.option("--flavor", type=click.Choice(list(FLAVORS)), default=AB.name, show_default=True,
                             help="Darknet fork whose semantics to follow: AlexeyAB (ab) or pjreddie (pj).")


def device_options(command):
    """`--device cpu|cuda|cuda:N` and AlexeyAB's `-i N` (the GPU used when running on CUDA)."""
    command = click.option("-i", "gpu_index", type=click.IntRange(min=-1), default=None, metavar="N",
                           help="AB: index of the GPU to use when running on CUDA (as --device cuda:N); "
                                "-1: the CPU.")(command)
    return click.option("--device", default=None, metavar="cpu|cuda|cuda:N",
                        help="Where the network runs (default: cuda when available, else cpu).")(command)


def resolve_device(device: Optional[str], gpu_index: Optional[int] = None) -> str:
    """The torch device for `--device` and a GPU index (`-i N`, or train's first `-gpus` entry).

    No `--device`: cuda when torch sees one, else cpu (a GPU index alone does not force CUDA: AlexeyAB's
    CPU build ignores `-i`, and `-i -1` asks for the CPU). Under torchrun each process drives the GPU of its
    local rank."""
    import torch
    if device is None and gpu_index is not None and (gpu_index < 0 or not torch.cuda.is_available()):
        if gpu_index >= 0:
            click.echo(f"ignored: -i {gpu_index} (torch sees no CUDA device; running on the CPU as a CPU build of "
                       "Darknet does)", err=True)
        return "cpu"
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise UsageError("--device must be cpu, cuda or cuda:N", value=device) from None
    if parsed.type not in ("cpu", "cuda"):
        raise UsageError("--device must be cpu, cuda or cuda:N", value=device)
    if parsed.type == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise UsageError("--device asks for CUDA but torch sees no CUDA device", value=device,
                         hint="use --device cpu")
    if "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    if gpu_index is not None and gpu_index < 0:
        raise UsageError(f"--device {device} and -i {gpu_index} (the CPU) disagree", value=device)
    if parsed.index is not None and gpu_index is not None and parsed.index != gpu_index:
        raise UsageError(f"--device {device} and -i {gpu_index} name different GPUs", value=device)
    index = parsed.index if parsed.index is not None else (gpu_index or 0)
    if index >= torch.cuda.device_count():
        raise UsageError(f"there is no GPU {index}: torch sees {torch.cuda.device_count()}", value=device)
    return f"cuda:{index}"


def inference_options(command):
    """`--batch N` (images per network forward) and `--workers N` (image loader processes) of the commands
    that run the network over a list of images. Neither changes a result, only the speed."""
    command = click.option("--workers", type=click.IntRange(min=0), default=None,
                           help="Image loader processes (default: min(4, CPU count - 1); 0: none).")(command)
    return click.option("--batch", type=click.IntRange(min=1), default=None,
                        help="Images per network forward (default: 32 on CUDA; on CPU 4 up to 256x256 "
                             "inputs, else 1).")(command)
