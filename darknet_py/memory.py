"""How much memory a network from a cfg needs, estimated from the network built on the meta device (shapes,
no storage; :func:`darknet_py.network.check_memory` builds it), and a refusal before allocating when it
cannot fit. Without it a cfg with width=height=100000 fails deep inside torch or OpenCV (MemoryError,
cv2.error, or the kernel's OOM killer) instead of with one message.

The estimate is a lower bound, so a run that fits is never refused: parameters (4 bytes each) plus, for
training, three float32 tensors per layer output and image of the mini-batch (output, batch-norm and
activation saved for the backward pass) and the input batch; for inference, the two largest layer outputs
of one image and its input."""
from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Optional

import torch

from .errors import CfgError

FLOAT = 4
TRAINING_COPIES = 3      # tensors per layer output that autograd keeps for the backward pass


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int           # bytes
    activations: int          # bytes
    images: int               # images per forward pass

    @property
    def total(self) -> int:
        return self.parameters + self.activations


def estimate_memory(network, training: bool, images: int = 1) -> MemoryEstimate:
    """The estimate for a :class:`~darknet_py.network.Network` (built on the meta device: no storage);
    ``images``: per inference forward pass (training takes the cfg's mini-batch)."""
    cfg = network.cfg
    parameters = sum(p.numel() for p in network.parameters()) + sum(b.numel() for b in network.buffers())
    net = cfg.net
    sizes = sorted((shape.size for shape in network.shapes), reverse=True)
    image = net.channels * net.height * net.width
    if training:
        images = net.mini_batch
        activations = images * (TRAINING_COPIES * sum(sizes) + image)
    else:
        activations = images * (sum(sizes[:2]) + image)
    return MemoryEstimate(parameters * FLOAT, activations * FLOAT, images)


def available_memory(device: str) -> Optional[int]:
    """Bytes this process can still allocate on ``device``, or None when it cannot be told."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.mem_get_info(torch.device(device))[0] if torch.cuda.is_available() else None
    limits = [value for value in (_meminfo_available(), _address_space_left()) if value is not None]
    return min(limits) if limits else None


def require_memory(estimate: MemoryEstimate, cfg, device: str, training: bool) -> MemoryEstimate:
    """Refuse a cfg whose network cannot fit in ``device``'s free memory, with the estimate."""
    free = available_memory(device)
    if free is not None and estimate.total > free:
        net, purpose = cfg.net, "training" if training else "inference"
        raise CfgError(
            f"the network needs at least {human_bytes(estimate.total)} of memory for {purpose} at "
            f"{net.width}x{net.height} ({human_bytes(estimate.activations)} of layer outputs for {estimate.images} "
            f"image(s), {human_bytes(estimate.parameters)} of parameters); {device} has {human_bytes(free)} free",
            file=cfg.file,
            hint="lower width/height in [net]" + (" or the mini-batch (batch/subdivisions)" if training else ""))
    return estimate


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{count} B"
        value /= 1024
    return f"{count} B"


def _meminfo_available() -> Optional[int]:
    """MemAvailable (+ free swap) from /proc/meminfo (Linux), in bytes."""
    try:
        with open("/proc/meminfo") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[1:2]}
    except (OSError, ValueError, IndexError):
        return None
    if "MemAvailable" not in fields:
        return None
    return fields["MemAvailable"] + fields.get("SwapFree", 0)


def _address_space_left() -> Optional[int]:
    """What `ulimit -v` (RLIMIT_AS) still allows this process to map."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open(f"/proc/{os.getpid()}/status") as f:
            used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None
    return max(soft - used, 0)
