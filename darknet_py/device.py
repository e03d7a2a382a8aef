"""The one rule that turns a device request (`--device`, AlexeyAB's `-i N`, train's `-gpus`, or the
`Detector` API's ``device``) into a torch device string."""
from __future__ import annotations

import os
from typing import Optional

import click

from .errors import UsageError


def cpu_cores() -> int:
    """The CPU cores this process may run on (taskset, cpusets), not the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def passive_waiting_threads() -> None:
    """Let OpenMP threads that wait for work sleep instead of spinning (`OMP_WAIT_POLICY=PASSIVE`, unless the
    environment already says). Spinning threads burn the time slices of the very threads they wait for as
    soon as the cores are shared: yolov3-tiny on 2 threads took 95-480 ms a forward spinning and 28-65 ms
    sleeping on a loaded 2-core machine (bench/RESULTS.md). Takes effect only before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def limit_cpu_threads() -> int:
    """Compute threads for a run on the CPU: at most one per core this process may use. A lower setting
    (OMP_NUM_THREADS, `torch.set_num_threads`) is kept; more threads than cores only take turns."""
    import torch
    threads = max(1, min(torch.get_num_threads(), cpu_cores()))
    torch.set_num_threads(threads)
    return threads


def resolve_device(device: Optional[str], gpu_index: Optional[int] = None) -> str:
    """The torch device for `--device` and a GPU index (`-i N`, or train's first `-gpus` entry).

    No `--device`: cuda when torch sees one, else cpu (a GPU index alone does not force CUDA: AlexeyAB's
    CPU build ignores `-i`, and `-i -1` asks for the CPU). Under torchrun each process drives the GPU of its
    local rank."""
    import torch      # on use: the command modules import this one, and `--help` must not load torch
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
