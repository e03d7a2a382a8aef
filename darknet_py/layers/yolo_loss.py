"""The `[yolo]` training deltas, cost and log line, exactly as Darknet computes them (spec §9.2–9.6, §7.6).

:func:`yolo_deltas` reproduces `forward_yolo_layer` in train mode for both flavours:

* pass A scores every prediction against every truth at once (an IoU matrix per image);
* pass B applies every truth (and, AB ``iou_thresh``, its extra anchors) to its slot. Darknet does this
  sequentially and the result depends on the order (PJ overwrites box deltas, AB accumulates them, the
  class rule looks at what earlier truths wrote). :mod:`.yolo_targets` lists the writes grouped by slot and
  ranked in Darknet's order; round ``r`` applies every slot's ``r``-th write in one vectorised step, so a
  batch needs as many rounds as the most crowded slot has truths (usually one).

``delta`` follows Darknet's sign: target − output, the negative gradient w.r.t. the layer's raw input.
:func:`yolo_surrogate` turns it into a loss for autograd (§7.6).

The host never waits for the device here: the truth side is planned on the host and sent in one
asynchronous copy, and the statistics stay on the device until :func:`.yolo_statistics.read_statistics`
reads those of a whole training step at once (:func:`yolo_deltas` reads them at once for one layer). Only
``truth_thresh < 1`` (off by default) still reads back which predictions its rule selects.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import CfgError
from ..flavor import Flavor, flavor_of
from .yolo import YoloOptions
from .yolo_iou import Box, box_giou, dx_box_iou, iou_of_stacked
from .yolo_statistics import PendingDeltas, YoloDeltas
from .yolo_targets import (SlotWrites, TruthRows, box_targets, class_multipliers, plan_writes, read_truths,
                           smoothed_labels, upload)

CLASS_MATCH_PROB = 0.25     # AB ignores a prediction only if some class probability exceeds this
FOCAL_ALPHA = 0.5


def yolo_surrogate(z: Tensor, delta: Tensor, batch_B: int) -> Tensor:
    """A scalar whose gradient w.r.t. the yolo layer's raw input ``z`` is ``−delta / B`` (spec §7.6).

    Sum it over the micro-batches of an iteration and call ``backward()`` once; autograd never sees the
    yolo sigmoid, exactly like Darknet's backward, which passes ``delta`` through unchanged."""
    return -(delta.detach() * z).sum() / batch_B


class _Geometry(NamedTuple):
    """Constants of a layer at one grid and network size, on the output's device."""
    cells: Tensor              # (2, 1, 1, 1, H·W) i and j of each cell
    grid: Tensor               # (2, 1, 1, 1, 1) W, H
    slot_anchor: Tensor        # (2, 1, 1, A, 1) float64: anchor / network size of each mask slot
    recall_at: Tensor          # (2, 1) the IoUs of Darknet's .5R and .75R statistics
    class_mult: Optional[Tensor]   # (C,) AB counters_per_class multipliers


@functools.lru_cache(maxsize=64)
def _geometry(opts: YoloOptions, h: int, w: int, net_w: int, net_h: int, device, dtype) -> _Geometry:
    """Memoised: rebuilt only when the grid or network size changes (multiscale training)."""
    cell = torch.arange(h * w, device=device)
    anchors = [[aw / net_w for aw, _ in opts.mask_anchors], [ah / net_h for _, ah in opts.mask_anchors]]
    class_mult = class_multipliers(opts)
    return _Geometry(
        torch.stack([cell % w, cell // w]).to(dtype).view(2, 1, 1, 1, -1),
        torch.tensor([w, h], dtype=dtype, device=device).view(2, 1, 1, 1, 1),
        torch.tensor(anchors, dtype=torch.float64, device=device).view(2, 1, 1, -1, 1),
        torch.tensor([[0.5], [0.75]], dtype=dtype, device=device),
        None if class_mult is None else torch.from_numpy(class_mult).to(device))


class _Layer(NamedTuple):
    """The layer's options and its output in Darknet's layout (N, A, 5+C, H·W)."""
    opts: YoloOptions
    flavor: Flavor
    out: Tensor
    centre: Tensor             # (2, N, 1, A, H·W) decoded x, y relative to the network input
    size: Tensor               # (2, N, 1, A, H·W) decoded w, h
    geo: _Geometry
    grid_w: int
    net_w: int
    net_h: int

    def pred(self, image: Tensor, slot: Tensor, cell: Tensor) -> Box:
        """The decoded boxes at (image, slot, cell) (index tensors on the device)."""
        return Box(*self.centre[:, image, 0, slot, cell], *self.size[:, image, 0, slot, cell])


class _Sent(NamedTuple):
    """The truth side on the device, from one copy (see :func:`_send_truth_side`)."""
    low: Tensor                # } the truths' edges and areas (:meth:`.yolo_targets.TruthRows.edges`)
    high: Tensor               # }
    area: Tensor               # }
    has_truth: Tensor          # (N,) the image has a usable truth
    in_iou: Tensor             # (M,) position of each write's (truth, slot, cell) in the IoU matrix
    elements: Tensor           # (M, 5+C) positions of the slot's entries in the flattened output / delta
    class_at: Tensor           # (M,) position of the slot's probability of the truth's class
    cls: Tensor                # (M,)
    target: Tensor             # (M, 5+C) } a write into an untouched slot sets (target − out)·factor
    factor: Tensor             # (M, 5+C) }
    coords: Tensor             # (M, 4) the truth box
    image: Tensor              # } (M,) where each write goes
    slot: Tensor               # }
    cell: Tensor               # }
    rounds: tuple[Tensor, ...]   # per round of pass B, the writes it applies (empty: no slot is shared)


class _Writes(NamedTuple):
    """Pass-B writes (:class:`.yolo_targets.SlotWrites`, as sent) and what they read from the output."""
    sent: _Sent
    out: Tensor                # (M, 5+C) the slot's outputs
    class_prob: Tensor         # (M,) the slot's probability of the truth's class
    iou: Tensor                # (M,) IoU of the slot's prediction with the truth


def yolo_deltas(options: YoloOptions, output: Tensor, truth: Tensor, net_w: int, net_h: int,
                flavor: Flavor | str, class_map: Optional[Sequence[int]] = None) -> YoloDeltas:
    """Darknet's training deltas for one `[yolo]` layer and micro-batch.

    ``output``: the layer's activated output (N, A·(5+C), H, W). ``truth``: (N, max_boxes, 5 or 6) rows
    ``x y w h class [track_id]`` relative to the network input, ending at the first ``x == 0`` (best on the
    host, where the loader made it). ``class_map``: the integers of the layer's ``map=`` file, when the
    cfg names one."""
    pending = pending_yolo_deltas(options, output, truth, net_w, net_h, flavor, class_map)
    return pending.finish(pending.stats.tolist())


def pending_yolo_deltas(options: YoloOptions, output: Tensor, truth: Tensor, net_w: int, net_h: int,
                        flavor: Flavor | str, class_map: Optional[Sequence[int]] = None) -> PendingDeltas:
    """:func:`yolo_deltas` with the statistics left on the device (no wait for the device)."""
    flavor = flavor_of(flavor)
    if options.map_file and class_map is None:
        raise CfgError(f"[yolo] map={options.map_file}: the class map must be read and passed as class_map")
    if truth.shape[0] != output.shape[0]:
        raise ValueError(f"truth has {truth.shape[0]} images, the output {output.shape[0]}")
    layer = _prepare_layer(options, output.detach(), net_w, net_h, flavor)
    rows = read_truths(options, truth, layer.flavor.alexeyab, class_map)
    cells = layer.out.shape[3]
    plan = plan_writes(options, rows, layer.flavor.alexeyab, layer.grid_w, cells // layer.grid_w, net_w, net_h)
    sent = _send_truth_side(layer, rows, plan)
    if layer.flavor.alexeyab:
        layer = _zero_nan_objectness(layer, sent.has_truth)
    anyobj = layer.out[:, :, 4].sum()
    # (N, T, A, H·W): every prediction against every truth of its image; padding rows never overlap
    iou = iou_of_stacked(layer.centre, layer.size, sent.low, sent.high, sent.area)
    delta = torch.zeros(layer.out.shape, dtype=layer.out.dtype, device=layer.out.device)
    thresh_bbox = _pass_a(layer, rows, delta, iou)
    writes = _writes(layer, sent, iou)
    rewritten = _pass_b(layer, writes, delta, fresh=thresh_bbox == 0)
    if layer.flavor.alexeyab and options.iou_thresh < 1:
        _divide_box_by_classes(delta)
    return _summarise(layer, writes, delta, anyobj, thresh_bbox, rewritten, output.shape)


# -- setup ------------------------------------------------------------------------------------------

def _prepare_layer(opts: YoloOptions, o: Tensor, net_w: int, net_h: int, flavor: Flavor) -> _Layer:
    n, channels, h, w = o.shape
    a, e = len(opts.mask), opts.classes + 5
    if channels != a * e:
        raise ValueError(f"[yolo] output has {channels} channels, expected {a}·(5+{opts.classes}) = {a * e}")
    geo = _geometry(opts, h, w, net_w, net_h, o.device, o.dtype)
    out = o.reshape(n, a, e, h * w)
    by_axis = out.unsqueeze(1).permute(3, 0, 1, 2, 4)    # (5+C, N, 1, A, H·W)
    centre = (geo.cells + by_axis[0:2]) / geo.grid
    size = by_axis[2:4].double()
    # exp(x)·anchor/net in double, stored as a float (Darknet's get_yolo_box)
    size = (((size * size * 4) if opts.new_coords else torch.exp(size)) * geo.slot_anchor).to(o.dtype)
    return _Layer(opts, flavor, out, centre, size, geo, w, net_w, net_h)


def _zero_nan_objectness(layer: _Layer, has_truth: Tensor) -> _Layer:
    """AB zeroes a NaN/Inf objectness output, but only in images that have a usable truth. Done on every
    call (a copy of the output) rather than after asking the device whether some output is not finite."""
    out = layer.out.clone()
    obj = out[:, :, 4]
    out[:, :, 4] = torch.where(has_truth[:, None, None] & ~torch.isfinite(obj), 0.0, obj)
    return layer._replace(out=out)


# -- pass A: every prediction ------------------------------------------------------------------------

def _best_truth(iou: Tensor) -> tuple[Tensor, Tensor]:
    """(N, A, H·W): the best IoU over the image's truths, or 0, and the index of the first truth reaching
    it (C's strict `>` scan from 0: NaN never wins; without a positive IoU the index is not used). The
    padding rows of the truth array are boxes that overlap nothing."""
    if iou.shape[1] == 0:
        zero = iou.new_zeros(iou.shape[:1] + iou.shape[2:])
        return zero, zero.long()
    return iou.nan_to_num(0.0).max(dim=1)      # IoUs are >= 0: NaN -> 0 can only tie with the start value


def _pass_a(layer: _Layer, rows: TruthRows, delta: Tensor, iou: Tensor) -> int:
    """Objectness of every prediction (and the truth_thresh rule). Returns how many box deltas it wrote."""
    opts, obj = layer.opts, layer.out[:, :, 4]
    best_iou, best_t = _best_truth(iou)
    d_obj = torch.mul(obj, -opts.obj_normalizer, out=delta[:, :, 4])   # written in place
    if layer.flavor.alexeyab:   # ignoring also needs a class probability above .25 (any class, not the truth's)
        best_match = torch.where((layer.out[:, :, 5:] > CLASS_MATCH_PROB).any(dim=2), best_iou, 0.0)
        if opts.objectness_smooth:
            kept = torch.maximum(d_obj, opts.obj_normalizer * (best_match - obj))
            d_obj.copy_(torch.where(best_match > opts.ignore_thresh, kept, d_obj))
        else:
            d_obj.masked_fill_(best_match > opts.ignore_thresh, 0.0)
    else:
        d_obj.masked_fill_(best_iou > opts.ignore_thresh, 0.0)
    if opts.truth_thresh >= 1:            # an IoU never exceeds 1: the rule is off (the default)
        return 0
    return _truth_thresh_rule(layer, rows, delta, best_iou, best_t)


def _truth_thresh_rule(layer: _Layer, rows: TruthRows, delta: Tensor, best_iou: Tensor,
                       best_t: Tensor) -> int:
    """Predictions overlapping a truth by more than truth_thresh are trained as if assigned to it."""
    opts, geo = layer.opts, layer.geo
    image, slot, cell = torch.nonzero(best_iou > opts.truth_thresh, as_tuple=True)
    if image.numel() == 0:
        return 0
    t = best_t[image, slot, cell]
    coords, cls = _on(delta.device, rows.coords)[image, t], _on(delta.device, rows.cls)[image, t]
    out = layer.out[image, slot, :, cell]
    cm = None if geo.class_mult is None else geo.class_mult[cls]
    q = (best_iou[image, slot, cell] ** 2)[:, None]
    new = delta[image, slot, :, cell]
    if layer.flavor.alexeyab:
        new[:, 4:5] = opts.obj_normalizer * ((q if opts.objectness_smooth else 1) - out[:, 4:5])
    else:
        new[:, 4:5] = 1 - out[:, 4:5]
    new[:, 5:] = _full_class_rule(layer, new[:, 5:], out[:, 5:], cls[:, None])
    if layer.flavor.alexeyab and opts.objectness_smooth:
        smooth = (1 if cm is None else cm[:, None]) * (q - out[:, 5:].gather(1, cls[:, None]))
        new[:, 5:] = new[:, 5:].scatter(1, cls[:, None], smooth)
    target, scale = _targets_of_slots(layer, coords, slot, cell)
    pred = layer.pred(image, slot, cell)     # index tensors on the device already
    new[:, :4] += _box_rule(layer, pred, out, coords, target, scale, cm)
    delta[image, slot, :, cell] = new
    return int(image.numel())


def _targets_of_slots(layer: _Layer, coords: Tensor, slot: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
    """MSE targets (M, 4) and scales (M, 1) of truths written to given slots (the anchor is the slot's)."""
    opts, w = layer.opts, layer.grid_w
    cell = cell.cpu().numpy()
    grid = np.asarray([w, layer.out.shape[3] // w], dtype=np.float32)
    target = np.empty((cell.size, 4), dtype=np.float32)
    scale = box_targets(coords.cpu().numpy(), np.asarray(opts.mask_anchors, dtype=np.float32)[slot.cpu().numpy()],
                        np.stack([cell % w, cell // w], axis=1), grid,
                        np.asarray([layer.net_w, layer.net_h], dtype=np.float32), opts.new_coords, out=target)
    return torch.from_numpy(target).to(coords.device), torch.from_numpy(scale[:, None]).to(coords.device)


# -- pass B: every truth -----------------------------------------------------------------------------

def _send_truth_side(layer: _Layer, rows: TruthRows, plan: SlotWrites) -> _Sent:
    """Everything the device needs from the truths and the pass-B plan, in one copy."""
    n, a, e, cells = layer.out.shape
    # flat positions: torch.take is several times cheaper than indexing with several index tensors
    slot_row = plan.image * a + plan.slot                     # row of (N·A, 5+C, H·W)
    in_iou = slot_row * cells + plan.cell + (plan.image * (rows.cls.shape[1] - 1) + plan.truth) * (a * cells)
    elements = (slot_row * (e * cells) + plan.cell)[:, None] + np.arange(e) * cells
    class_at = elements[np.arange(plan.cls.size), 5 + plan.cls]
    rounds = [] if plan.rank is None else [np.nonzero(plan.rank == r)[0] for r in range(int(plan.rank.max()) + 1)]
    sent = upload(layer.out.device, [*rows.edges(), rows.valid.any(axis=1), in_iou, elements, class_at, plan.cls,
                                     plan.target, plan.factor, plan.coords, plan.image, plan.slot, plan.cell,
                                     *rounds])
    fields = len(_Sent._fields) - 1
    return _Sent(*sent[:fields], tuple(sent[fields:]))


def _writes(layer: _Layer, sent: _Sent, iou: Tensor) -> _Writes:
    iou = torch.take(iou, sent.in_iou)
    if layer.flavor.iou_zero_guard:    # AB's box_iou answers 0 where PJ divides 0 by 0
        iou = iou.nan_to_num(nan=0.0)
    return _Writes(sent, torch.take(layer.out, sent.elements), torch.take(layer.out, sent.class_at), iou)


def _on(device: torch.device, array: np.ndarray) -> Tensor:
    """A host array on the device (several small transfers are cheaper than slicing one big tensor).
    Memoised read-only arrays are copied: torch must not get a view it could write through."""
    return torch.from_numpy(array if array.flags.writeable else array.copy()).to(device)


def _pass_b(layer: _Layer, writes: _Writes, delta: Tensor, fresh: bool) -> Tensor:
    """Apply the writes round by round, round r holding each slot's r-th write. ``fresh``: pass A wrote
    no box or class delta, so the first round finds them all zero. Returns rewritten_bbox (on the device)."""
    rewritten = delta.new_zeros(())
    if writes.iou.numel() == 0:
        return rewritten
    opts, out, sent = layer.opts, writes.out, writes.sent
    rows = (sent.target - out) * sent.factor       # each write into a slot nobody wrote before
    if layer.flavor.alexeyab and opts.iou_loss != "mse":
        cm = None if layer.geo.class_mult is None else layer.geo.class_mult[sent.cls]
        rows[:, :4] = _box_rule(layer, _written_pred(layer, writes), out, sent.coords, None, None, cm)
    if layer.flavor.alexeyab and opts.focal_loss:
        rows[:, 5:] *= _focal_factor(out[:, 5:], sent.cls[:, None])
    elif layer.flavor.alexeyab:   # AB keeps a class delta (here 0) whose new value is not finite
        rows[:, 5:].nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    if not sent.rounds and fresh:
        delta.view(-1).index_put_((sent.elements,), rows)
        return rewritten
    for r, pick in enumerate(sent.rounds or (slice(None),)):
        new = rows[pick]
        if r > 0 or not fresh:
            current = torch.take(delta, sent.elements[pick])
            rewritten = rewritten + (current[:, :4] != 0).any(dim=1).sum()
            new_obj = new[:, 4:5]
            if opts.objectness_smooth:    # AB: only a slot whose objectness delta is still 0
                new_obj = torch.where(current[:, 4:5] == 0, new_obj, current[:, 4:5])
            new = torch.cat([current[:, :4] + new[:, :4] if layer.flavor.alexeyab else new[:, :4],   # AB accumulates
                             new_obj, _class_rule(layer, current[:, 5:], out[pick, 5:], sent.cls[pick, None])],
                            dim=1)
        delta.view(-1).index_put_((sent.elements[pick],), new)
    return rewritten


# -- the delta rules ---------------------------------------------------------------------------------

def _box_rule(layer: _Layer, pred: Optional[Box], out: Tensor, truth: Tensor, target: Tensor, scale: Tensor,
              cm: Optional[Tensor]) -> Tensor:
    """(M, 4) box deltas of one write each: MSE on (x, y, raw w, raw h) scaled by 2 − w·h, or AB's
    IoU-family ascent direction; times iou_normalizer (1 in PJ) and the class multiplier."""
    opts = layer.opts
    mult = opts.iou_normalizer if cm is None else (opts.iou_normalizer * cm)[:, None]
    if opts.iou_loss == "mse" or not layer.flavor.alexeyab:
        return scale * (target - out[:, :4]) * mult
    safe = Box(pred.x, pred.y, torch.where(pred.w == 0, 1.0, pred.w), torch.where(pred.h == 0, 1.0, pred.h))
    d = dx_box_iou(safe, Box(*truth.unbind(1)), opts.iou_loss)      # AB avoids NaN for a zero w or h
    if not opts.new_coords:   # chain rule through exp, for w and h only
        d[:, 2:] *= torch.exp(out[:, 2:4])
    d = torch.nan_to_num(d * mult, nan=0.0, posinf=0.0, neginf=0.0)
    return torch.clamp(d, -opts.max_delta, opts.max_delta)


def _written_pred(layer: _Layer, writes: _Writes) -> Box:
    """The predicted boxes of the written slots."""
    return layer.pred(writes.sent.image, writes.sent.slot, writes.sent.cell)


def _class_rule(layer: _Layer, current: Tensor, probs: Tensor, col: Tensor) -> Tensor:
    """Class deltas after one write of class ``col`` (M, 1). A slot already assigned (PJ: class-0 delta
    non-zero; AB: this class's delta non-zero) only gets the new class switched on: multi-label."""
    opts, class_mult = layer.opts, layer.geo.class_mult
    if layer.flavor.alexeyab:
        now = current.gather(1, col)
        assigned = now != 0
        value = float(smoothed_labels(opts.label_smooth_eps)[0]) - probs.gather(1, col)
        value = torch.where(torch.isfinite(value), value, now)
        if class_mult is not None:
            value = value * class_mult[col]
    else:
        assigned = current[:, :1] != 0
        value = 1 - probs.gather(1, col)
    return torch.where(assigned, current.scatter(1, col, value), _full_class_rule(layer, current, probs, col))


def _full_class_rule(layer: _Layer, current: Tensor, probs: Tensor, col: Tensor) -> Tensor:
    """Class deltas of a slot's first assignment: one-hot (AB: label-smoothed, focal or multiplied), the
    torch counterpart of :func:`.yolo_targets.class_rows` for slots that already hold deltas. ``current``:
    the slot's class deltas, which AB keeps where the new value is not finite."""
    opts, class_mult = layer.opts, layer.geo.class_mult
    if not layer.flavor.alexeyab or opts.focal_loss:
        onehot = torch.zeros_like(probs).scatter_(1, col, 1.0)
        return onehot - probs if not layer.flavor.alexeyab else (onehot - probs) * _focal_factor(probs, col)
    positive, negative = smoothed_labels(opts.label_smooth_eps)
    value = torch.full_like(probs, float(negative)).scatter_(1, col, float(positive)) - probs
    value = torch.where(torch.isfinite(value), value, current)
    if class_mult is not None:
        value = value * torch.ones_like(value).scatter_(1, col, class_mult[col] * opts.cls_normalizer)
    return value


def _focal_factor(probs: Tensor, col: Tensor) -> Tensor:
    """AB's focal-loss multiplier α·g(p_t) of every class delta (α = .5, γ = 2 hard-wired)."""
    pt = probs.gather(1, col) + 0.000000000000001
    return FOCAL_ALPHA * (-(1 - pt) * (2 * pt * torch.log(pt) + pt - 1))


def _divide_box_by_classes(delta: Tensor) -> None:
    """AB with iou_thresh < 1: a slot's accumulated box delta is averaged over the classes it was given."""
    k = (delta[:, :, 5:] > 0).sum(dim=2, keepdim=True)
    divide = (delta[:, :, 4:5] != 0) & (k > 0)
    delta[:, :, :4] = torch.where(divide, delta[:, :, :4] / k.clamp(min=1), delta[:, :, :4])


# -- cost and statistics -----------------------------------------------------------------------------

def _summarise(layer: _Layer, writes: _Writes, delta: Tensor, anyobj: Tensor, thresh_bbox: int,
               rewritten: Tensor, shape: torch.Size) -> PendingDeltas:
    opts = layer.opts
    iou = writes.iou
    sums = [anyobj.view(1), torch.stack([iou, writes.out[:, 4], writes.class_prob]).sum(dim=1),
            (iou > layer.geo.recall_at).sum(dim=1, dtype=iou.dtype), delta.square().sum(dim=(0, 1, 3))]
    if layer.flavor.alexeyab and opts.show_details and opts.iou_loss == "giou":
        sums.append(box_giou(_written_pred(layer, writes), Box(*writes.sent.coords.unbind(1))).sum().view(1))
    sums.append(rewritten.to(iou.dtype).view(1))
    return PendingDeltas(delta.view(shape), torch.cat(sums), opts, layer.flavor, count=int(iou.numel()),
                         predictions=layer.out[:, :, 4].numel(), thresh_bbox=thresh_bbox)
