"""One Darknet training iteration (spec §7.1, §7.6): S micro-batches of B_mini images, one update.

Darknet's `train_network` in PyTorch terms: for each micro-batch, `seen += B_mini`, a train-mode forward that
keeps each `[yolo]` layer's input ``z`` and output, the layer's deltas ``D`` (:mod:`..layers.yolo_loss`), and
one ``backward()`` of the surrogate ``−Σ D·z / B`` (gradients accumulate across micro-batches exactly as
Darknet's `*_updates` do). Then one `update_network` with the rate of the iteration the update completes.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Union

import torch

from ..data.batch import network_input
from ..errors import TrainingError
from .policy import UniformSource, get_current_rate

if TYPE_CHECKING:
    from ..layers.yolo_statistics import YoloDeltas


@dataclass(frozen=True)
class StepResult:
    loss: float                                  # Darknet's returned loss: Σ_s cost_s / B (§7.1)
    rate: float                                  # learning rate of this update (before layer multipliers)
    iteration: int                               # the iteration this update completed (1-based)
    costs: tuple[float, ...]                     # cost_s per micro-batch: mean over the [yolo] layers
    layer_costs: tuple[tuple[float, ...], ...]   # [micro-batch][yolo layer] layer cost
    log_lines: tuple[str, ...]                   # Darknet's per-layer lines, in the order it prints them
    yolo: tuple[tuple["YoloDeltas", ...], ...]   # [micro-batch][yolo layer] statistics (their delta
                                                 # tensor is emptied unless keep_deltas)
    yolo_indices: tuple[int, ...]


def train_network_step(network, optimizer, images: torch.Tensor, truth: torch.Tensor,
                       iteration: Optional[int] = None, device: Union[str, torch.device, None] = None,
                       rng: Optional[UniformSource] = None, keep_deltas: bool = False,
                       tf32: bool = False,
                       synchronize: Optional[Callable[[StepResult], StepResult]] = None) -> StepResult:
    """Train ``network`` on one iteration: ``images`` (B, C, H, W) RGB in [0, 1] and ``truth``
    (B, max_boxes, 5|6) with B = batch·subdivisions images as Darknet consumes them.

    ``iteration``: Darknet's iteration before this update (default ``network.seen // B``); the update uses
    ``rate(iteration + 1)``. ``device``: where to compute (default: where the network's parameters are);
    images and truth are moved there. ``rng`` feeds ``policy=random``. TF32 stays off unless ``tf32``.
    ``synchronize``: called with the iteration's result after the backward passes and before the update
    (several processes exchange gradients and losses there); the result it returns is returned."""
    net = network.net_options
    mini, subdivisions = net.mini_batch, net.subdivisions
    batch = mini * subdivisions
    _check_batch(images, truth, batch)
    reference = next(network.parameters())
    device = torch.device(device) if device is not None else reference.device
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    images = network_input(images, device, reference.dtype)      # uint8 batches become [0, 1] floats there
    # the [yolo] loss plans its targets on the host: a truth on the device would have to come back
    truth = truth.cpu().to(reference.dtype)
    yolo_indices = _yolo_indices(network)
    keep = sorted(set(yolo_indices) | {i - 1 for i in yolo_indices})
    if iteration is None:
        iteration = network.seen // batch

    network.train()
    optimizer.zero_grad(set_to_none=True)
    per_batch = []
    with _no_gradient_through(network, _stop_layer(network, iteration)):
        for s in range(subdivisions):
            part = slice(s * mini, (s + 1) * mini)
            network.seen += mini                 # before the forward, as Darknet
            per_batch.append(_forward_backward(network, images[part], truth[part], keep, yolo_indices, batch,
                                               keep_deltas))

    rate = get_current_rate(net, iteration + 1, rng)
    result = _result(_read_statistics(per_batch), rate, iteration + 1, batch, mini, yolo_indices)
    if synchronize is not None:
        result = synchronize(result)
    optimizer.set_rate(rate, iteration + 1)
    optimizer.step()
    return result


def _read_statistics(per_batch):
    """Every layer's statistics of the iteration, read from the device at once (the step's only wait)."""
    from ..layers.yolo_statistics import read_statistics

    finished = iter(read_statistics([d for found in per_batch for d in found]))
    return [[next(finished) for _ in found] for found in per_batch]


def _forward_backward(model, x, truth, keep, yolo_indices, batch, keep_deltas):
    from ..layers.yolo_loss import pending_yolo_deltas, yolo_surrogate

    outputs = model(x, keep=keep)
    surrogate = None
    found = []
    for i in yolo_indices:
        layer = model.layers[i]
        deltas = pending_yolo_deltas(layer.options, outputs[i].detach(), truth, layer.net_w, layer.net_h,
                                     model.net_options.flavor)
        delta = deltas.delta
        if model.net_options.flavor.alexeyab and layer.options.delta_normalizer != 1.0:
            delta = delta * layer.options.delta_normalizer   # AB GPU's yolo backward scales the delta
        z = outputs[i - 1]
        if z.requires_grad:
            term = yolo_surrogate(z, delta, batch)
            surrogate = term if surrogate is None else surrogate + term
        found.append(deltas if keep_deltas else _without_delta(deltas))
    if surrogate is not None:
        surrogate.backward()
    return found


def _result(per_batch, rate, iteration, batch, mini, yolo_indices) -> StepResult:
    layer_costs = tuple(tuple(float(d.cost) for d in found) for found in per_batch)
    costs = tuple(sum(c) / len(c) for c in layer_costs)
    log_lines = tuple(d.log_line(i, mini) for found in per_batch for i, d in zip(yolo_indices, found))
    return StepResult(loss=sum(costs) / batch, rate=rate, iteration=iteration, costs=costs,
                      layer_costs=layer_costs, log_lines=log_lines, yolo=tuple(tuple(f) for f in per_batch),
                      yolo_indices=tuple(yolo_indices))


def _without_delta(deltas):
    return deltas._replace(delta=deltas.delta.new_empty(0))


def _check_batch(images: torch.Tensor, truth: torch.Tensor, batch: int) -> None:
    if images.dim() != 4 or images.shape[0] != batch:
        raise TrainingError(f"one iteration needs batch·subdivisions = {batch} images as (N, C, H, W), "
                            f"got a tensor of shape {tuple(images.shape)}")
    if truth.dim() != 3 or truth.shape[0] != batch or truth.shape[2] not in (5, 6):
        raise TrainingError(f"truth must be ({batch}, max_boxes, 5 or 6), got {tuple(truth.shape)}")


def _yolo_indices(model) -> list[int]:
    indices = []
    for i, layer in enumerate(model.layers):
        if layer.kind == "region":
            raise TrainingError(f"layer {i} [region]: training YOLOv2 region layers is not implemented")
        if layer.kind == "yolo":
            indices.append(i)
    if not indices:
        raise TrainingError("the cfg has no [yolo] layer: darknet_py trains detectors only")
    return indices


def _stop_layer(model, iteration: int) -> int:
    """The layer where Darknet's backward stops (it and everything before get no gradient), or -1.
    PJ: any `stopbackward`. AB: `stopbackward=1`, or `stopbackward=N` while the iteration is below N."""
    ab = model.net_options.flavor.alexeyab
    for i in range(len(model.layers) - 1, -1, -1):
        stop = model.layers[i].common.stopbackward
        if (stop == 1 or stop > iteration) if ab else stop:
            return i
    return -1


@contextlib.contextmanager
def _no_gradient_through(model, stop: int) -> Iterator[None]:
    """Make layers 0..stop parameter-constant for autograd, so no gradient reaches them (nor, since the
    input image needs none, anything computed from them), restoring their flags afterwards."""
    params = [p for layer in model.layers[:stop + 1] for p in layer.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
