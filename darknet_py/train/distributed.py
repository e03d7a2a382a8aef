"""Multi-process (multi-GPU) training with torchrun and torch.distributed.

By default ``-gpus`` follows Darknet (both forks, detector.c `train_detector` / `train_networks`): each of
the N processes trains a whole batch of B images of its own per update (rank r: images r·B .. (r+1)·B-1 of
the N·B the update loads), the learning rate is multiplied by N, and one update counts for N iterations
(`cur_iteration += N`, `seen = B · iteration`), so a run reaches max_batches after max_batches/N updates and
writes its backups by the same iteration rule. One deliberate difference: Darknet trains a separate copy per
GPU and averages the *weights* every 4 updates; darknet_py averages the gradients before every update (with
the learning rate times N that is Darknet's update when the copies are synchronised every time), so the
copies never drift apart. See :func:`darknet_gpus_plan`.

``--global-batch`` keeps Darknet's single-device semantics instead: one iteration still consumes
``B = batch`` images (the same B images a single process would draw) and makes exactly the single-process
update, whatever the number of processes.

With ``--global-batch``, how the global batch is split over ``W`` ranks (images 0..B-1 of an iteration,
micro-batch ``s`` holding images ``s·B_mini .. (s+1)·B_mini-1``):

* ``subdivisions % W == 0`` ("whole micro-batches"): rank ``r`` runs the ``S/W`` consecutive micro-batches
  ``r·S/W ..`` of ``B_mini`` images each. Every micro-batch sees the same images as in one process, so batch
  norm's batch statistics are exact too.
* otherwise, if ``B_mini % W == 0`` ("split micro-batches"): every rank runs all ``S`` micro-batches, each
  with its own ``B_mini/W`` consecutive images of that micro-batch. Batch norm then normalises over
  ``B_mini/W`` images per rank (plain per-rank BN, not SyncBN): exact only for cfgs without batch norm.
* anything else is refused with a hint.

Each rank trains its share as if it were the whole iteration: its gradient is its images' summed gradient
divided by its own image count B/W. Before every optimizer step the gradients are all-reduced and divided
by W (DDP's average): Σ_r (Σ_rank r / (B/W)) / W = Σ_all / B, the single-process gradient, so every rank
applies the single-process update to identical weights. The printed loss is averaged the same way.
Consequences for a Darknet user: with N GPUs an iteration is still B images (Darknet: N·B), `seen` grows by
B per iteration and the learning rate is not multiplied by N, so a cfg trains the same on 1 or N GPUs.

Batch-norm running statistics (not optimised) are averaged across ranks with the gradients, so the copies
stay identical; in one process they are a sequential EMA over the S micro-batches, so with BN they differ
from the single-process values by that ordering (the learned weights do not depend on them). Only rank 0
logs and writes files. `-gpus 0,1` relaunches the command under torchrun (see :func:`torchrun_command`); on
several machines, one torchrun per machine runs the same command (README, "Multi-node training").

The ranks exchange data twice per iteration, each exchange bounded by the collective timeout: everything of
the update (gradients, BN statistics, loss) before any of it is applied (:func:`synchronize_update`), and the
stop check at its end (:func:`any_rank`). A failed exchange is a :class:`CollectiveError`, which
:mod:`.lost_peer` turns into a saved `_last` and one line; :mod:`.elastic` resumes a torchrun restart.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import re
import shutil
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.distributed as dist

from ..errors import TrainingError, UsageError

DEFAULT_COLLECTIVE_TIMEOUT = 600.0     # seconds; NCCL's own default (gloo's is 30 min)
MAP_PASS_TIMEOUT = 24 * 3600.0         # seconds the other ranks wait for rank 0's -map pass (a dead rank 0
                                       # is still noticed at once: its connections close)


class CollectiveError(TrainingError):
    """An exchange with the other ranks failed: a peer died (its connections closed) or hangs (the collective
    timeout passed). In training :mod:`.lost_peer` turns it into one line and a saved ``_last``; before (the
    restart check) it is the error itself."""

    def __init__(self, what: str, cause: BaseException):
        self.what = what
        self.reason = _first_line(cause)
        super().__init__(f"{what} with the other processes failed ({self.reason})")


def _first_line(exc: BaseException) -> str:
    """gloo's and NCCL's message: its first sentence, without the source location (``[.../pair.cc:538] ``)."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.sub(r"^\[[^\]]*\.(?:cc|cpp|h):\d+\]\s*", "", line).split(". ")[0].rstrip(".")


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    patient_group: object = None  # gloo, timeout MAP_PASS_TIMEOUT: the others wait there for rank 0's -map pass

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class ShardPlan:
    """Which images of the global batch one rank trains on, and as how many micro-batches."""
    micro_batches: int       # micro-batches this rank runs per iteration
    micro_batch_size: int    # images per micro-batch on this rank
    indices: tuple[int, ...]  # the rank's images, positions in the global batch, in training order


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(device: torch.device, collective_timeout: float = DEFAULT_COLLECTIVE_TIMEOUT
                     ) -> DistributedContext:
    """Join the process group torchrun prepared (gloo on CPU, nccl on CUDA); one process: a no-op.

    ``collective_timeout`` (seconds) bounds every wait for the other processes, so a peer that hangs is
    noticed (a peer that dies is noticed at once: its connections close). NCCL raises a timeout in the
    waiting thread only with ``TORCH_NCCL_BLOCKING_WAIT=1``, and its watchdog must abort the communicator
    without ending the process (``TORCH_NCCL_ASYNC_ERROR_HANDLING=2``; torchrun sets 1, which kills the
    process before anything is saved): both are set unless the user chose otherwise. (Untested on GPUs.)"""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return DistributedContext()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        os.environ.setdefault("TORCH_NCCL_BLOCKING_WAIT", "1")
        if os.environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1") == "1":
            os.environ["TORCH_NCCL_ASYNC_ERROR_HANDLING"] = "2"
    try:
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=collective_timeout))
        patient = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=max(collective_timeout,
                                                                                       MAP_PASS_TIMEOUT)))
    except RuntimeError as exc:
        raise _join_error(exc) from None
    return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                              patient)


def _join_error(exc: RuntimeError) -> TrainingError:
    """Joining the other processes failed. After a torchrun restart, the likely cause is torchrun's shared
    rendezvous store still holding the failed attempt's addresses."""
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0
    hint = None
    if restarted and os.environ.get("TORCH_DISABLE_SHARE_RDZV_TCP_STORE") != "1":
        hint = ("torchrun's shared store keeps the addresses of the failed attempt: start torchrun with "
                "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in its environment")
    return TrainingError(f"rank {os.environ.get('RANK')} could not join the other processes ({_first_line(exc)})",
                         hint=hint)


def leave_together(ctx: DistributedContext) -> None:
    """After a complete (or jointly stopped) run: wait until every rank is done saving, so that no rank tears
    its process group down while another still uses it (a rank that did sometimes aborted in gloo's teardown
    at interpreter exit, "terminate called without an active exception"). Not on a failure: a rank that
    raised must exit at once, so that torchrun stops the others instead of this rank waiting for them."""
    if ctx.enabled and dist.is_initialized():
        try:
            dist.barrier()
        except RuntimeError:       # a peer lost after the run was complete and saved: nothing is lost
            pass


def shutdown(ctx: DistributedContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def shard_plan(mini_batch: int, subdivisions: int, ctx: DistributedContext) -> ShardPlan:
    world, rank = ctx.world_size, ctx.rank
    if subdivisions % world == 0:
        per_rank = subdivisions // world
        first = rank * per_rank * mini_batch
        return ShardPlan(per_rank, mini_batch, tuple(range(first, first + per_rank * mini_batch)))
    if mini_batch % world == 0:
        part = mini_batch // world
        indices = tuple(s * mini_batch + rank * part + k for s in range(subdivisions) for k in range(part))
        return ShardPlan(subdivisions, part, indices)
    raise UsageError(f"cannot split batch={mini_batch * subdivisions} (subdivisions={subdivisions}) over "
                     f"{world} processes",
                     hint="make subdivisions, or batch/subdivisions, a multiple of the number of GPUs")


def darknet_gpus_plan(mini_batch: int, subdivisions: int, ctx: DistributedContext) -> ShardPlan:
    """Darknet's `-gpus`: rank r trains a whole batch, images r·B .. (r+1)·B-1 of the N·B an update loads."""
    batch = mini_batch * subdivisions
    return ShardPlan(subdivisions, mini_batch, tuple(range(ctx.rank * batch, (ctx.rank + 1) * batch)))


def darknet_gpus_net(net, ctx: DistributedContext):
    """Darknet's `nets[k].learning_rate *= ngpus`."""
    return dataclasses.replace(net, learning_rate=net.learning_rate * ctx.world_size)


def synchronize_update(network: torch.nn.Module, result, ctx: DistributedContext, device: torch.device):
    """Everything the ranks exchange for one update, before it is applied: the gradients are averaged (DDP's
    average), so are the batch-norm running statistics (see the module docstring), with one flat all-reduce,
    and the iteration's loss numbers (``result``, a :class:`~.step.StepResult`; returned with the ranks' mean
    loss and layer costs). Nothing of the update is applied before every rank has answered: a rank that is
    lost here leaves the weights and momentum of the last complete update (see :mod:`.lost_peer`)."""
    if not ctx.enabled:
        return result
    tensors = [p.grad for p in network.parameters() if p.grad is not None]
    tensors += [b for name, b in network.named_buffers() if name.endswith(("running_mean", "running_var"))]
    _average_in_place(tensors, ctx)
    per_layer = len(result.yolo_indices)
    mean = all_reduce_mean([result.loss, *(c for costs in result.layer_costs for c in costs)], ctx, device)
    layer_costs = tuple(tuple(mean[1 + k * per_layer:1 + (k + 1) * per_layer]) for k in range(len(result.costs)))
    return dataclasses.replace(result, loss=mean[0], layer_costs=layer_costs,
                               costs=tuple(sum(c) / len(c) for c in layer_costs))


def _average_in_place(tensors: list[torch.Tensor], ctx: DistributedContext) -> None:
    """Replace each tensor by its mean over the ranks, with one flat all-reduce."""
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    _all_reduce(flat, dist.ReduceOp.SUM, "the all-reduce of the gradients")
    flat /= ctx.world_size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def all_reduce_mean(values: Sequence[float], ctx: DistributedContext, device: torch.device) -> list[float]:
    """Average a few numbers (loss, costs) over the ranks."""
    if not ctx.enabled:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    _all_reduce(tensor, dist.ReduceOp.SUM, "the all-reduce of the loss")
    return (tensor / ctx.world_size).tolist()


def rank_net_options(net, plan: ShardPlan):
    """The `[net]` batch arithmetic one rank trains with: its micro-batches of its micro-batch size."""
    return dataclasses.replace(net, batch=plan.micro_batches * plan.micro_batch_size,
                               subdivisions=plan.micro_batches, mini_batch=plan.micro_batch_size)


def any_rank(flag: bool, ctx: DistributedContext, device: torch.device, patient: bool = False) -> bool:
    """True on every rank when it is true on one (a stop request must stop all ranks together).
    ``patient``: after rank 0's `-map` pass, which the others wait for (up to MAP_PASS_TIMEOUT)."""
    if not ctx.enabled:
        return flag
    tensor = torch.tensor([1 if flag else 0], device="cpu" if patient else device)
    _all_reduce(tensor, dist.ReduceOp.MAX, "the end-of-iteration all-reduce",
                group=ctx.patient_group if patient else None)
    return bool(tensor.item())


def max_over_ranks(value: int, ctx: DistributedContext, what: str) -> int:
    """The largest of the ranks' ``value`` (waiting as patiently as for a -map pass)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value])
    _all_reduce(tensor, dist.ReduceOp.MAX, what, group=ctx.patient_group)
    return int(tensor.item())


def broadcast_from_main(value, ctx: DistributedContext, what: str):
    """Rank 0's ``value`` (any picklable object; the others pass None) on every rank."""
    if not ctx.enabled:
        return value
    shared = [value]
    try:
        dist.broadcast_object_list(shared, src=0, group=ctx.patient_group)
    except RuntimeError as exc:
        raise CollectiveError(what, exc) from exc
    return shared[0]


def _all_reduce(tensor: torch.Tensor, op, what: str, group=None) -> None:
    """``dist.all_reduce``; a failure (a peer's connection closed, or the collective timeout passed) becomes
    a :class:`CollectiveError` naming ``what`` was exchanged."""
    try:
        dist.all_reduce(tensor, op=op, group=group)
    except RuntimeError as exc:          # DistBackendError, DistNetworkError, gloo's and NCCL's errors
        raise CollectiveError(what, exc) from exc


def parse_gpus(value: Optional[str]) -> list[int]:
    if not value:
        return []
    try:
        gpus = [int(v) for v in value.split(",") if v.strip() != ""]
    except ValueError:
        raise UsageError("-gpus takes a comma-separated list of GPU indices", value=value) from None
    if not gpus or any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise UsageError("-gpus takes distinct, non-negative GPU indices", value=value)
    return gpus


def check_gpus_exist(gpus: Sequence[int], device: Optional[str]) -> None:
    """`-gpus` names CUDA devices torch can see; only an explicit `--device cpu` runs the processes on the
    CPU instead (for testing)."""
    if not gpus or device == "cpu":
        return
    if not torch.cuda.is_available():
        raise UsageError("-gpus asks for CUDA devices but torch sees none", value=",".join(map(str, gpus)),
                         hint="add --device cpu to run one CPU process per listed GPU (for testing)")
    missing = [g for g in gpus if g >= torch.cuda.device_count()]
    if missing:
        raise UsageError(f"-gpus names GPU {missing[0]} but torch sees {torch.cuda.device_count()} CUDA device(s)",
                         value=",".join(map(str, gpus)))


def torchrun_command(gpus: Sequence[int], argv: Sequence[str]) -> tuple[list[str], dict]:
    """The torchrun command line (and environment) that runs ``darknet_py detector train`` on ``gpus``:
    one process per GPU, each seeing its GPU as ``cuda:<local rank>``."""
    torchrun = shutil.which("torchrun")
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    command = launcher + ["--standalone", f"--nproc_per_node={len(gpus)}", "-m", "darknet_py", *argv]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(str(g) for g in gpus))
    return command, env
