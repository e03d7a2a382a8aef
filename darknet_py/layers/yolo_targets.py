"""Truth side of the `[yolo]` loss (spec §9.2 and pass B of §9.3/§9.4): which truth rows count, which
anchor slots each truth writes to and in what order, and the MSE box targets of those writes.

It runs in NumPy on the host. The truth array is tiny and comes from the data loader on the host (Darknet
does this part in C on the CPU even in its GPU builds); in torch every one of these small element-wise
steps would cost a kernel launch, often a device sync, and more time than the whole per-prediction part
of the loss. Everything here is vectorised over images and truths."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch

from ..config.reader import warn
from ..errors import CfgError, LabelError
from .yolo import YoloOptions
from .yolo_iou import Box, box_iou_kind

F32 = np.float32
EMPTY_BOX = np.asarray([0.5, 0.5, 0, 0], dtype=F32)    # overlaps nothing: IoU 0 (NaN with an empty box)


@dataclass(frozen=True)
class TruthRows:
    """The usable part of a truth array, trimmed to the longest list of the batch."""
    coords: np.ndarray         # (N, T, 4) float32 x, y, w, h; EMPTY_BOX where not valid
    cls: np.ndarray            # (N, T) int64, after `map`; 0 where not valid
    valid: np.ndarray          # (N, T) bool: before the list end and (AB) a class in range


@dataclass(frozen=True)
class SlotWrites:
    """Pass-B writes, one per (truth, anchor), grouped by slot and, within a slot, in Darknet's order."""
    image: np.ndarray          # (M,) int64
    truth: np.ndarray          # (M,) index of the truth row
    slot: np.ndarray           # (M,) anchor slot of the layer (position in `mask`)
    cell: np.ndarray           # (M,) j·W + i
    rank: Optional[np.ndarray]   # (M,) earlier writes to the same slot; None when no slot is shared (then
                                 # the writes are in no particular order)
    cls: np.ndarray            # (M,) int64
    coords: np.ndarray         # (M, 4) float32 the truth box
    target: np.ndarray         # (M, 4) float32 MSE targets tx, ty, tw, th
    scale: np.ndarray          # (M,) float32 2 − w·h


def read_truths(opts: YoloOptions, truth: torch.Tensor, ab: bool,
                class_map: Optional[Sequence[int]] = None) -> TruthRows:
    """Rows up to the first x == 0 (at most `max` of them). AB skips a class outside the layer with a
    warning and reports coordinates outside the image; PJ would write outside its buffers, so a bad class
    is an error here."""
    if truth.dim() != 3 or truth.shape[2] < 5:
        raise ValueError(f"truth must be (N, max_boxes, 5|6), got {tuple(truth.shape)}")
    t = truth[:, :opts.max_boxes, :5].detach().cpu().numpy().astype(F32, copy=False)
    alive = np.logical_and.accumulate(t[..., 0] != 0, axis=1)     # the list ends at the first x == 0
    count = int(alive.sum(axis=1).max()) if t.size else 0
    t, alive = t[:, :count], alive[:, :count]
    raw = t[..., 4].astype(np.int64)                 # C truncation
    in_range = (raw >= 0) & (raw < opts.classes)
    if not in_range[alive].all():
        value = int(raw[alive & ~in_range][0])
        message = f"truth class {value} is outside 0..{opts.classes - 1} of the [yolo] layer"
        if not ab:
            raise LabelError(message, value=str(value), hint="PJ Darknet would write outside its delta buffer")
        warn(message + ": the box is skipped, as AlexeyAB's Darknet does")
    valid = alive & in_range
    coords = np.where(valid[..., None], t[..., :4], EMPTY_BOX)
    if ab and coords.size and (coords.min() < 0 or coords[..., :2].max() > 1):
        x, y, w, h = coords[(coords < 0).any(axis=2) | (coords[..., :2] > 1).any(axis=2)][0].tolist()
        warn(f"Wrong label: truth.x = {x:f}, truth.y = {y:f}, truth.w = {w:f}, truth.h = {h:f}")
    cls = np.where(valid, raw, 0)
    if class_map is not None:
        cls = _map_classes(opts, cls, valid, class_map)
    return TruthRows(coords, cls, valid)


def _map_classes(opts: YoloOptions, cls: np.ndarray, valid: np.ndarray, class_map: Sequence[int]) -> np.ndarray:
    table = np.asarray(list(class_map), dtype=np.int64)
    if table.size < opts.classes:
        raise CfgError(f"[yolo] map={opts.map_file} has {table.size} entries, classes={opts.classes}")
    mapped = table[cls]
    if ((mapped < 0) | (mapped >= opts.classes))[valid].any():
        raise CfgError(f"[yolo] map={opts.map_file} maps a class outside 0..{opts.classes - 1}")
    return mapped


class _Anchors(NamedTuple):
    """The cfg's anchors as plan_writes needs them, for one network size."""
    pixels: np.ndarray         # (num, 2) float32
    rel: np.ndarray            # (num, 2) float32, divided by the network size as Darknet's biases/net.w
    index: np.ndarray          # (num,) 0..num−1
    slot_of: np.ndarray        # (num,) slot of each anchor in the layer's mask, −1 if not in it
    net: np.ndarray            # (2,) float32 net_w, net_h
    area: np.ndarray           # (num,) float32 rel w·h


@functools.lru_cache(maxsize=64)
def _anchors(opts: YoloOptions, net_w: int, net_h: int) -> _Anchors:
    pixels = np.asarray(opts.anchors, dtype=F32)
    net = np.asarray([net_w, net_h], dtype=F32)
    slot_of = np.full(len(opts.anchors), -1, dtype=np.int64)
    for a, m in reversed(list(enumerate(opts.mask))):    # Darknet's int_index: the first mask entry wins
        slot_of[m] = a
    rel = pixels / net
    return _Anchors(pixels, rel, np.arange(len(opts.anchors)), slot_of, net, rel[:, 0] * rel[:, 1])


def plan_writes(opts: YoloOptions, rows: TruthRows, ab: bool, grid_w: int, grid_h: int, net_w: int,
                net_h: int) -> SlotWrites:
    """Pass B's writes. A truth writes to the slot of its best anchor over ALL anchors of the cfg (shape
    IoU, first maximum) if this layer's mask holds it; AB with iou_thresh < 1 also to every other anchor of
    the mask whose shape overlap (iou_thresh_kind) exceeds iou_thresh."""
    anchors = _anchors(opts, net_w, net_h)
    num = anchors.index.size
    shape_iou = _shape_iou(anchors, rows.coords[..., 2:4])                # (N, T, num)
    # C's strict `>` scan from 0: NaN never wins, and without a positive IoU the best stays anchor 0
    best_n = np.where(shape_iou > 0, shape_iou, 0).argmax(axis=2)
    is_best = anchors.index == best_n[..., None]
    extra = ab and opts.iou_thresh < 1
    chosen = is_best
    if extra:
        if opts.iou_thresh_kind != "iou":
            shape_iou = _shape_iou_kind(anchors.rel, rows.coords[..., 2:4], opts.iou_thresh_kind)
        chosen = chosen | (shape_iou > opts.iou_thresh)
    image, t, anchor = np.nonzero(chosen & (anchors.slot_of >= 0) & rows.valid[..., None])
    coords = rows.coords[image, t]
    grid = np.asarray([grid_w, grid_h], dtype=F32)
    ij = np.minimum(np.maximum((coords[:, :2] * grid).astype(np.int64), 0), [grid_w - 1, grid_h - 1])  # x=1: UB
    slot = anchors.slot_of[anchor]
    cell = ij[:, 1] * grid_w + ij[:, 0]
    flat = (image * len(opts.mask) + slot) * (grid_w * grid_h) + cell
    rank = None
    if np.unique(flat).size < flat.size:     # some slot gets several writes: order them as Darknet
        # np.nonzero lists (image, truth, anchor) in Darknet's order, except that the best anchor comes first
        if extra:
            perm = np.lexsort((t * (num + 1) + np.where(is_best[image, t, anchor], 0, anchor + 1), flat))
        else:
            perm = np.argsort(flat, kind="stable")
        image, t, anchor, slot, cell, flat, ij, coords = (
            v[perm] for v in (image, t, anchor, slot, cell, flat, ij, coords))
        rank = _rank_within_groups(flat)
    target, scale = box_targets(coords, anchors.pixels[anchor], ij, grid, anchors.net, opts.new_coords)
    return SlotWrites(image, t, slot, cell, rank, rows.cls[image, t], coords, target, scale)


def box_targets(coords: np.ndarray, anchor: np.ndarray, ij: np.ndarray, grid: np.ndarray, net: np.ndarray,
                new_coords: bool) -> tuple[np.ndarray, np.ndarray]:
    """MSE targets (tx, ty, tw, th) in float32 as Darknet: tx = x·W − i; tw = ln(w·net_w/anchor_w) (the log
    of a float ratio, taken in double), or √(w·net_w/(4·anchor_w)) with new_coords; and scale 2 − w·h."""
    txy = coords[:, :2] * grid - ij.astype(F32)
    ratio = coords[:, 2:] * net / anchor
    twh = np.sqrt(ratio / F32(4)) if new_coords else np.log(ratio.astype(np.float64)).astype(F32)
    return np.concatenate([txy, twh], axis=1), F32(2) - coords[:, 2] * coords[:, 3]


def _rank_within_groups(sorted_keys: np.ndarray) -> np.ndarray:
    """0, 1, 2... inside each run of equal values of a sorted array."""
    first = np.ones(sorted_keys.shape, dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    position = np.arange(sorted_keys.size)
    return position - np.maximum.accumulate(np.where(first, position, 0))


def _shape_iou(anchors: _Anchors, wh: np.ndarray) -> np.ndarray:
    """(N, T, num) IoU of each truth's shape with each anchor's, both centred at the origin: Darknet's
    per-axis overlap is then exactly min(size_a, size_b). AB's 0-instead-of-0/0 guard is left out: these
    values are only compared with `>`, where 0 and NaN both lose (the union is 0 only for an empty anchor
    and an empty truth)."""
    w, h = np.minimum(anchors.rel[:, 0], wh[..., 0:1]), np.minimum(anchors.rel[:, 1], wh[..., 1:2])
    inter = np.where((w < 0) | (h < 0), F32(0), w * h)
    return inter / (anchors.area + wh[..., 0:1] * wh[..., 1:2] - inter)


def _shape_iou_kind(rel: np.ndarray, wh: np.ndarray, kind: str) -> np.ndarray:
    """The iou_thresh_kind measure (giou, diou, ciou) between centred shapes, via the torch box measures."""
    a = torch.from_numpy(rel)
    g = torch.from_numpy(np.ascontiguousarray(wh))[..., None, :]
    zero = torch.zeros((), dtype=a.dtype)
    return box_iou_kind(Box(zero, zero, a[:, 0], a[:, 1]), Box(zero, zero, g[..., 0], g[..., 1]), kind).numpy()
