"""Truth side of the `[yolo]` loss (spec §9.2 and pass B of §9.3/§9.4): which truth rows count, which
anchor slots each truth writes to and in what order, and what each write puts there.

It runs in NumPy on the host. The truth array is tiny and comes from the data loader on the host (Darknet
does this part in C on the CPU even in its GPU builds); in torch every one of these small element-wise
steps would cost a kernel launch, often a device sync, and more time than the whole per-prediction part
of the loss. Everything here is vectorised over images and truths, and :func:`upload` hands the result to
the device in one asynchronous copy, so the loss never makes the host wait for the device on the way in.

All the `[yolo]` layers of a network read the same truth array, so the layer-independent part (reading the
rows, the best anchor of each truth) is memoised: by the array's content, and then by the resulting
read-only :class:`TruthRows` object."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch

from ..errors import CfgError, LabelError, warn
from .yolo import YoloOptions
from .yolo_iou import Box, box_iou_kind

F32 = np.float32
EMPTY_BOX = np.asarray([0.5, 0.5, 0, 0], dtype=F32)    # overlaps nothing: IoU 0 (NaN with an empty box)


@dataclass(frozen=True, eq=False)
class TruthRows:
    """The usable part of a truth array, trimmed to the longest list of the batch (read-only arrays)."""
    coords: np.ndarray         # (N, T, 4) float32 x, y, w, h; EMPTY_BOX where not valid
    cls: np.ndarray            # (N, T) int64, after `map`; 0 where not valid
    valid: np.ndarray          # (N, T) bool: before the list end and (AB) a class in range

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y) − (w, h)/2 and (x, y) + (w, h)/2 as (2, N, T, 1, 1), and w·h as (N, T, 1, 1): the truth
        side of an every-prediction × every-truth IoU (float32, as Darknet's overlap computes them)."""
        return _edges(self)


@dataclass(frozen=True)
class SlotWrites:
    """Pass-B writes, one per (truth, anchor), grouped by slot and, within a slot, in Darknet's order."""
    image: np.ndarray          # (M,) int64
    truth: np.ndarray          # (M,) index of the truth row
    slot: np.ndarray           # (M,) anchor slot of the layer (position in `mask`)
    cell: np.ndarray           # (M,) j·W + i
    rank: Optional[np.ndarray]   # (M,) earlier writes to the same slot; None when no slot is shared
                                 # (then the writes are in no particular order)
    cls: np.ndarray            # (M,) int64
    coords: np.ndarray         # (M, 4) float32 the truth box
    target: np.ndarray         # (M, 5+C) float32 } what the write puts into a slot nobody wrote before:
    factor: np.ndarray         # (M, 5+C) float32 } (target − output)·factor, entry by entry (see _fresh_rows)


def upload(device: torch.device, arrays: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """The arrays on ``device`` after one copy: packed into one (on CUDA pinned) host buffer and sent with
    ``non_blocking``, which does not wait for the device, where a copy each from pageable memory would wait
    for every kernel queued before it. Each array starts on an 8-byte boundary so it can be viewed in its
    own dtype; the device tensors are fresh (never views of a NumPy array torch could write through)."""
    sizes = [a.nbytes for a in arrays]
    starts = np.concatenate([[0], np.cumsum([-(-n // 8) * 8 for n in sizes])]).astype(int)
    packed = torch.empty(int(starts[-1]), dtype=torch.uint8, pin_memory=device.type == "cuda")
    host = packed.numpy()
    for array, start, n in zip(arrays, starts, sizes):
        host[start:start + n] = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    packed = packed.to(device, non_blocking=True)
    return [packed[start:start + n].view(_TORCH_DTYPES[a.dtype.type]).view(a.shape)
            for a, start, n in zip(arrays, starts, sizes)]


_TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64, np.int64: torch.int64, np.bool_: torch.bool}


def read_truths(opts: YoloOptions, truth: torch.Tensor, ab: bool,
                class_map: Optional[Sequence[int]] = None) -> TruthRows:
    """Rows up to the first x == 0 (at most `max` of them). AB skips a class outside the layer with a
    warning and reports coordinates outside the image (each once per truth array); PJ would write outside
    its buffers, so a bad class is an error here."""
    if truth.dim() != 3 or truth.shape[2] < 5:
        raise ValueError(f"truth must be (N, max_boxes, 5|6), got {tuple(truth.shape)}")
    t = np.ascontiguousarray(truth.numpy(force=True)[:, :opts.max_boxes, :5], dtype=F32)
    return _read_truths(t.tobytes(), t.shape, opts.classes, ab, None if class_map is None else tuple(class_map),
                        opts.map_file)


@functools.lru_cache(maxsize=16)
def _read_truths(data: bytes, shape: tuple, classes: int, ab: bool, class_map: Optional[tuple],
                 map_file: Optional[str]) -> TruthRows:
    t = np.frombuffer(data, dtype=F32).reshape(shape)
    alive = np.logical_and.accumulate(t[..., 0] != 0, axis=1)     # the list ends at the first x == 0
    count = int(alive.sum(axis=1).max()) if t.size else 0
    t, alive = t[:, :count], alive[:, :count]
    raw = t[..., 4].astype(np.int64)                 # C truncation
    valid = alive & (raw >= 0) & (raw < classes)
    if (alive != valid).any():
        value = int(raw[alive != valid][0])
        message = f"truth class {value} is outside 0..{classes - 1} of the [yolo] layer"
        if not ab:
            raise LabelError(message, value=str(value), hint="PJ Darknet would write outside its delta buffer")
        warn(message + ": the box is skipped, as AlexeyAB's Darknet does")
    coords = np.where(valid[..., None], t[..., :4], EMPTY_BOX)
    if ab and coords.size and (coords.min() < 0 or coords[..., :2].max() > 1):
        x, y, w, h = coords[(coords < 0).any(axis=2) | (coords[..., :2] > 1).any(axis=2)][0].tolist()
        warn(f"Wrong label: truth.x = {x:f}, truth.y = {y:f}, truth.w = {w:f}, truth.h = {h:f}")
    cls = np.where(valid, raw, 0)
    if class_map is not None:
        cls = _map_classes(classes, map_file, cls, valid, class_map)
    return TruthRows(*(_read_only(v) for v in (coords, cls, valid)))


@functools.lru_cache(maxsize=16)
def _edges(rows: TruthRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    by_axis = rows.coords.transpose(2, 0, 1)[..., None, None]
    half = by_axis[2:] / F32(2)
    return _read_only(by_axis[:2] - half), _read_only(by_axis[:2] + half), _read_only(by_axis[2] * by_axis[3])


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _map_classes(classes: int, map_file: Optional[str], cls: np.ndarray, valid: np.ndarray,
                 class_map: Sequence[int]) -> np.ndarray:
    table = np.asarray(class_map, dtype=np.int64)
    if table.size < classes:
        raise CfgError(f"[yolo] map={map_file} has {table.size} entries, classes={classes}")
    mapped = table[cls]
    if ((mapped < 0) | (mapped >= classes))[valid].any():
        raise CfgError(f"[yolo] map={map_file} maps a class outside 0..{classes - 1}")
    return mapped


class _Layout(NamedTuple):
    """Constants of a layer at one grid and network size."""
    pixels: np.ndarray         # (num, 2) float32 every anchor of the cfg
    rel: np.ndarray            # (num, 2) float32, divided by the network size as Darknet's biases/net.w
    slot_of: np.ndarray        # (num,) slot of each anchor in the layer's mask, −1 if not in it
    net: np.ndarray            # (2,) float32 net_w, net_h
    grid: np.ndarray           # (2,) float32 W, H
    grid_max: np.ndarray       # (2,) int64 W − 1, H − 1
    cell_stride: np.ndarray    # (2,) int64 1, W
    target_rows: np.ndarray    # (C, 5+C) } per truth class: what a write puts into an untouched slot
    factor_rows: np.ndarray    # (C, 5+C) } besides its box (see _fresh_rows)
    box_mult: np.ndarray       # (C,) iou_normalizer · class multiplier (AB), 1 (PJ)


@functools.lru_cache(maxsize=64)
def _layout(opts: YoloOptions, ab: bool, grid_w: int, grid_h: int, net_w: int, net_h: int) -> _Layout:
    pixels = np.asarray(opts.anchors, dtype=F32)
    net = np.asarray([net_w, net_h], dtype=F32)
    rel = pixels / net
    slot_of = np.full(len(opts.anchors), -1, dtype=np.int64)
    for a, m in reversed(list(enumerate(opts.mask))):    # Darknet's int_index: the first mask entry wins
        slot_of[m] = a
    target_rows, factor_rows, box_mult = class_rows(opts, ab)
    return _Layout(pixels, rel, slot_of, net, np.asarray([grid_w, grid_h], dtype=F32),
                   np.asarray([grid_w - 1, grid_h - 1]), np.asarray([1, grid_w]), target_rows, factor_rows,
                   box_mult)


def smoothed_labels(eps: float) -> tuple[np.float32, np.float32]:
    """AB's label_smooth_eps targets (y⁺, y⁻) = (1·(1 − eps) + 0.5·eps, 0·(1 − eps) + 0.5·eps)."""
    eps = F32(eps)
    return F32(1) * (F32(1) - eps) + F32(0.5) * eps, F32(0) * (F32(1) - eps) + F32(0.5) * eps


def class_rows(opts: YoloOptions, ab: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per truth class c, the (target, factor) rows of a write into an untouched slot (box columns left
    for the caller) and the box multiplier:
    * objectness: target 1, factor AB obj_normalizer·cm(c) (PJ 1);
    * classes: one-hot target (AB: label-smoothed, except with focal_loss), factor 1, or with AB's
      counters_per_class cm(c)·cls_normalizer on class c (the only place cls_normalizer acts);
    * box: iou_normalizer·cm(c) (PJ 1)."""
    classes = opts.classes
    cm = class_multipliers(opts) if ab else None
    mult = np.ones(classes, dtype=F32) if cm is None else cm
    positive, negative = smoothed_labels(opts.label_smooth_eps if ab and not opts.focal_loss else 0)
    target = np.zeros((classes, 5 + classes), dtype=F32)
    factor = np.ones((classes, 5 + classes), dtype=F32)
    target[:, 4] = 1
    target[:, 5:] = negative
    target[:, 5:][np.diag_indices(classes)] = positive
    if ab:
        factor[:, 4] = mult * F32(opts.obj_normalizer)
    if cm is not None and not opts.focal_loss:
        factor[:, 5:][np.diag_indices(classes)] = mult * F32(opts.cls_normalizer)
    box_mult = F32(opts.iou_normalizer) * mult if ab else np.ones(classes, dtype=F32)
    return target, factor, box_mult


def class_multipliers(opts: YoloOptions) -> Optional[np.ndarray]:
    """AB `counters_per_class`: max_count / count_c (counts below 1 count as 1), capped at max_delta."""
    if not opts.counters_per_class:
        return None
    counts = np.maximum(np.asarray(opts.counters_per_class, dtype=F32), F32(1))
    return np.minimum(counts.max() / counts, F32(opts.max_delta))


def plan_writes(opts: YoloOptions, rows: TruthRows, ab: bool, grid_w: int, grid_h: int, net_w: int,
                net_h: int) -> SlotWrites:
    """Pass B's writes. A truth writes to the slot of its best anchor over ALL anchors of the cfg (shape
    IoU, first maximum) if this layer's mask holds it; AB with iou_thresh < 1 also to every other anchor of
    the mask whose shape overlap (iou_thresh_kind) exceeds iou_thresh."""
    layout = _layout(opts, ab, grid_w, grid_h, net_w, net_h)
    shape_iou, best_n = _best_anchors(rows, opts.anchors, net_w, net_h)
    if ab and opts.iou_thresh < 1:
        image, t, anchor, order = _with_extra_anchors(opts, layout, rows, shape_iou, best_n)
    else:
        image, t = np.nonzero(rows.valid & (layout.slot_of[best_n] >= 0))
        anchor = best_n[image, t]
        order = t
    coords = rows.coords[image, t]
    ij = np.maximum(np.minimum((coords[:, :2] * layout.grid).astype(np.int64), layout.grid_max), 0)  # x=1: UB
    slot = layout.slot_of[anchor]
    cell = ij @ layout.cell_stride
    flat = (image * len(opts.mask) + slot) * (grid_w * grid_h) + cell
    rank = None
    in_order = np.sort(flat)
    if (in_order[1:] == in_order[:-1]).any():    # some slot gets several writes: order them as Darknet
        perm = np.lexsort((order, flat))
        image, t, anchor, slot, cell, flat, ij, coords = (
            v[perm] for v in (image, t, anchor, slot, cell, flat, ij, coords))
        rank = _rank_within_groups(flat)
    cls = rows.cls[image, t]
    return SlotWrites(image, t, slot, cell, rank, cls, coords,
                      *_fresh_rows(opts, layout, coords, layout.pixels[anchor], ij, cls))


def _with_extra_anchors(opts: YoloOptions, layout: _Layout, rows: TruthRows, shape_iou: np.ndarray,
                        best_n: np.ndarray):
    """AB iou_thresh: (image, truth, anchor) of every write and its order inside the image — truth by
    truth, the best anchor first, then the other anchors of the mask by index."""
    num = layout.slot_of.size
    is_best = np.arange(num) == best_n[..., None]
    if opts.iou_thresh_kind != "iou":
        shape_iou = _shape_iou_kind(layout.rel, rows.coords[..., 2:4], opts.iou_thresh_kind)
    chosen = (is_best | (shape_iou > opts.iou_thresh)) & (layout.slot_of >= 0) & rows.valid[..., None]
    image, t, anchor = np.nonzero(chosen)
    return image, t, anchor, t * (num + 1) + np.where(is_best[image, t, anchor], 0, anchor + 1)


def _fresh_rows(opts: YoloOptions, layout: _Layout, coords: np.ndarray, anchor: np.ndarray, ij: np.ndarray,
                cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(target, factor), each (M, 5+C), such that a write into a slot that no earlier write touched sets
    its deltas to (target − output)·factor: the class rows of :func:`class_rows`, with the MSE targets of
    :func:`box_targets` and (2 − w·h)·box multiplier in the box columns. Darknet multiplies the box delta
    in the order scale·(t − o)·mult, which can differ from (t − o)·(scale·mult) in the last bit."""
    target, factor = layout.target_rows[cls], layout.factor_rows[cls]
    scale = box_targets(coords, anchor, ij, layout.grid, layout.net, opts.new_coords, out=target[:, :4])
    factor[:, :4] = (scale * layout.box_mult[cls])[:, None]
    return target, factor


def box_targets(coords: np.ndarray, anchor: np.ndarray, ij: np.ndarray, grid: np.ndarray, net: np.ndarray,
                new_coords: bool, out: np.ndarray) -> np.ndarray:
    """Write the MSE targets (tx, ty, tw, th) into ``out`` (M, 4) and return the scale 2 − w·h, in float32
    as Darknet: tx = x·W − i; tw = ln(w·net_w/anchor_w), the log of a float ratio taken in double, or
    √(w·net_w/(4·anchor_w)) with new_coords."""
    out[:, :2] = coords[:, :2] * grid - ij
    ratio = coords[:, 2:] * net / anchor
    out[:, 2:] = np.sqrt(ratio / F32(4)) if new_coords else np.log(ratio.astype(np.float64))
    return F32(2) - coords[:, 2] * coords[:, 3]


def _rank_within_groups(sorted_keys: np.ndarray) -> np.ndarray:
    """0, 1, 2... inside each run of equal values of a sorted array."""
    first = np.ones(sorted_keys.shape, dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    position = np.arange(sorted_keys.size)
    return position - np.maximum.accumulate(np.where(first, position, 0))


@functools.lru_cache(maxsize=16)
def _best_anchors(rows: TruthRows, anchors: tuple, net_w: int, net_h: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, num) IoU of each truth's shape with each anchor's, both centred at the origin, and the best
    anchor of each truth over ALL anchors (C's strict `>` scan from 0: NaN never wins, and without a
    positive IoU the best stays anchor 0). Darknet's per-axis overlap of centred boxes is exactly
    min(size_a, size_b). AB's 0-instead-of-0/0 guard is left out: these values are only compared with `>`,
    where 0 and NaN both lose (the union is 0 only for an empty anchor and an empty truth). Clamping each
    side at 0 equals Darknet's "either side < 0 → 0" for finite sides."""
    rel = np.asarray(anchors, dtype=F32) / np.asarray([net_w, net_h], dtype=F32)
    wh = rows.coords[..., 2:4]
    side = np.maximum(np.minimum(rel, wh[..., None, :]), F32(0))
    inter = side[..., 0] * side[..., 1]
    shape_iou = inter / (rel[:, 0] * rel[:, 1] + wh[..., 0:1] * wh[..., 1:2] - inter)
    return _read_only(shape_iou), _read_only(np.where(shape_iou > 0, shape_iou, 0).argmax(axis=2))


def _shape_iou_kind(rel: np.ndarray, wh: np.ndarray, kind: str) -> np.ndarray:
    """The iou_thresh_kind measure (giou, diou, ciou) between centred shapes, via the torch box measures."""
    a = torch.from_numpy(rel)
    g = torch.from_numpy(np.ascontiguousarray(wh))[..., None, :]
    zero = torch.zeros((), dtype=a.dtype)
    return box_iou_kind(Box(zero, zero, a[:, 0], a[:, 1]), Box(zero, zero, g[..., 0], g[..., 1]), kind).numpy()
