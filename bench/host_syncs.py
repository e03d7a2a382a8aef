"""Count the host<->device synchronisations of one training step, on any machine (CPU included).

On CUDA every read of a device value by the host (``.item()``, ``.tolist()``, ``.cpu()``, ``bool(t)``,
``float(t)``, ...), every op whose output size depends on device data (``nonzero``, boolean-mask indexing)
and every blocking upload (``.to(device)`` without ``non_blocking`` from pinned memory) makes the CPU wait
for the GPU to drain its queue. ``torch.cuda.set_sync_debug_mode`` flags these, but only on a GPU; this
counter simulates it on CPU with a ``TorchFunctionMode`` that tracks which tensors would live on the
device:

* host tensors: the step's inputs (``images``, ``truth``: the loader's batch), ``torch.from_numpy``
  results, factories called without ``device=``, results of ``.cpu()``, and ops on host tensors only;
* device tensors: everything else (parameters, gradients, memoised device constants, and every op that
  reads a device tensor). ``.to(device)`` of a host tensor is an upload; of a device tensor, a no-op.

Counts (:class:`SyncCount`): ``reads`` device->host, ``data_dependent`` output-size syncs, ``uploads``
blocking host->device copies (an op mixing a host array with device tensors counts as one), and
``async_uploads`` (``non_blocking=True``: no sync when, as darknet_py does on CUDA, the source is pinned).

    python bench/host_syncs.py [--cfg tests/fixtures/train/tiny3/tiny3.cfg] [--flavor ab] [--crowded] [--uint8]
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__", "__array__"}
DATA_DEPENDENT = {"nonzero", "masked_select", "unique", "unique_consecutive", "argwhere", "nonzero_static"}
MASK_INDEXING = {"__getitem__", "__setitem__", "index_put", "index_put_"}
FACTORIES = {"tensor", "as_tensor", "zeros", "ones", "empty", "full", "arange", "linspace", "rand", "randn",
             "randint", "eye", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like"}


@dataclass
class SyncCount:
    reads: int = 0
    data_dependent: int = 0
    uploads: int = 0
    async_uploads: int = 0
    where: dict = field(default_factory=dict)     # kind -> {op name: count}

    @property
    def syncs(self) -> int:
        """What would make the host wait for a GPU: reads, data-dependent sizes and blocking uploads."""
        return self.reads + self.data_dependent + self.uploads

    def add(self, kind: str, name: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        self.where.setdefault(kind, {}).setdefault(name, 0)
        self.where[kind][name] += 1


class _DeviceTracker(TorchFunctionMode):
    def __init__(self, count: SyncCount, host: "weakref.WeakValueDictionary[int, torch.Tensor]"):
        super().__init__()
        self.count, self.host = count, host

    def is_host(self, t: torch.Tensor) -> bool:
        return self.host.get(id(t)) is t     # by identity: a tensor's == is element-wise

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        on_device = [t for t in tensors if not self.is_host(t)]
        result = func(*args, **kwargs)
        self._classify(name, args, kwargs, tensors, on_device, result)
        return result

    def _classify(self, name, args, kwargs, tensors, on_device, result) -> None:
        moved = name in ("to", "cuda") and _names_device(args[1:], kwargs)
        if name in READS and on_device and name != "cpu" or name == "cpu" and on_device:
            self.count.add("reads", name)
            self._mark_host(result)
            return
        if moved:
            if tensors and not on_device:
                self.count.add("async_uploads" if kwargs.get("non_blocking") else "uploads", name)
            if self.is_host(result):     # on a CPU-only machine `.to(device)` hands back the same tensor
                del self.host[id(result)]
            return
        if name in FACTORIES and not on_device:
            if "device" in kwargs and kwargs["device"] is not None:
                if name in ("tensor", "as_tensor"):
                    self.count.add("uploads", name)
                return
            self._mark_host(result)
            return
        if on_device and (name in DATA_DEPENDENT or name == "where" and len(args) == 1
                          or name in MASK_INDEXING and _bool_index(args)):
            self.count.add("data_dependent", name)
        if on_device and any(self.is_host(t) and t.dim() > 0 for t in tensors):
            self.count.add("uploads", f"{name} (host operand)")
        if not on_device:
            self._mark_host(result)

    def _mark_host(self, result) -> None:
        for t in tree_flatten(result)[0]:
            if isinstance(t, torch.Tensor):
                self.host[id(t)] = t


def _names_device(args, kwargs) -> bool:
    values = list(args) + [kwargs.get("device")]
    return any(isinstance(v, (torch.device, str)) or isinstance(v, int) and not isinstance(v, bool)
               for v in values if v is not None)


def _bool_index(args) -> bool:
    index = args[1] if len(args) > 1 else None
    flat = tree_flatten(index)[0]
    return any(isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in flat)


@contextlib.contextmanager
def counting_syncs(*host_inputs: torch.Tensor) -> Iterator[SyncCount]:
    """Count inside the block; ``host_inputs`` are the tensors the host hands in (the loader's batch)."""
    count = SyncCount()
    host: weakref.WeakValueDictionary = weakref.WeakValueDictionary({id(t): t for t in host_inputs})
    from_numpy = torch.from_numpy

    def tracked_from_numpy(array):
        tensor = from_numpy(array)
        host[id(tensor)] = tensor
        return tensor

    torch.from_numpy = tracked_from_numpy
    try:
        with _DeviceTracker(count, host):
            yield count
    finally:
        torch.from_numpy = from_numpy


def count_step_syncs(cfg: Path, flavor: str = "ab", seed: int = 0, crowded: bool = False,
                     uint8: bool = False) -> SyncCount:
    """Syncs of one `train_network_step` of ``cfg`` at its own size on a synthetic batch of 2 boxes an
    image (``crowded``: the same box twice with different classes, so pass B needs a second round;
    ``uint8``: the images as the 8-bit pipelines hand them over, divided by 255 on the device)."""
    from darknet_py.network import parse_cfg
    from darknet_py.network import Network
    from darknet_py.train.step import train_network_step
    from darknet_py.train.update import make_optimizer

    torch.manual_seed(seed)
    network = Network(parse_cfg(cfg, flavor=flavor))
    net = network.net_options
    batch = net.mini_batch * net.subdivisions
    images = torch.rand(batch, net.channels, net.height, net.width)
    if uint8:
        images = (images * 255).to(torch.uint8)
    rng = np.random.default_rng(seed)
    boxes = np.concatenate([rng.uniform(0.2, 0.8, (batch, 2, 2)), rng.uniform(0.05, 0.4, (batch, 2, 2)),
                            np.stack([np.zeros(batch), np.ones(batch)], axis=1)[..., None]], axis=2)
    if crowded:
        boxes[:, 1, :4] = boxes[:, 0, :4]
    truth = torch.zeros(batch, 90, 5)
    truth[:, :2] = torch.from_numpy(boxes.astype(np.float32))
    optimizer = make_optimizer(network)
    train_network_step(network, optimizer, images, truth)        # warm the memoised constants
    with counting_syncs(images, truth) as count:
        train_network_step(network, optimizer, images, truth)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", type=Path, default=ROOT / "tests" / "fixtures" / "train" / "tiny3" / "tiny3.cfg")
    parser.add_argument("--flavor", default="ab", choices=("ab", "pj"))
    parser.add_argument("--crowded", action="store_true", help="two truths in one anchor slot per image")
    parser.add_argument("--uint8", action="store_true", help="an 8-bit image batch (AlexeyAB with OpenCV)")
    args = parser.parse_args()
    count = count_step_syncs(args.cfg, args.flavor, crowded=args.crowded, uint8=args.uint8)
    print(f"{args.cfg.name} --flavor {args.flavor}: {count.syncs} syncs per training step "
          f"(reads {count.reads}, data-dependent {count.data_dependent}, blocking uploads {count.uploads}), "
          f"{count.async_uploads} non-blocking uploads")
    for kind, names in count.where.items():
        print(f"  {kind}: " + ", ".join(f"{n} x{c}" for n, c in sorted(names.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
