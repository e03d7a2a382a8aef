"""What one `[yolo]` layer reports after its training deltas: cost, Darknet's statistics and log line
(spec §9.3, §9.5), and how they reach the host.

The loss leaves its sums on the device (:class:`PendingDeltas`); :func:`read_statistics` brings those of
every layer and micro-batch of a training step to the host in one read, so the step waits for the device
once, not once per layer."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from ..flavor import Flavor
from .yolo import YoloOptions


@dataclass(frozen=True)
class YoloDeltas:
    """One `[yolo]` forward in train mode: the delta tensor, the layer cost and Darknet's statistics.

    Sums are over the micro-batch; the ``avg_*`` properties divide them as Darknet's log does."""
    delta: Tensor            # same shape as the layer output; target − output
    cost: float              # what the layer adds to the network cost (§7.1, §9.5)
    flavor: Flavor
    count: int               # truth-to-slot assignments made in pass B
    predictions: int         # W·H·A·B_mini
    iou_sum: float
    class_sum: float         # Σ o_cls[truth class] over the assignments
    obj_sum: float           # Σ o_obj over the assignments
    anyobj_sum: float        # Σ o_obj over every prediction
    recall50: int
    recall75: int
    total_loss: float        # Σ delta²
    class_loss: float        # obj_normalizer · Σ delta² outside the box entries
    total_bbox: int          # box deltas written (AB's ` total_bbox` counter)
    rewritten_bbox: int      # ... onto a slot whose box delta was already non-zero
    loss_kind: str           # `mse`, `giou` or `iou` as AB names it in the log
    normalizers: tuple[float, float, float]   # iou, obj, cls
    show_details: bool

    @property
    def iou_loss(self) -> float:
        return self.total_loss - self.class_loss

    def _per_count(self, value: float) -> float:
        # AB forces count >= 1 before dividing; PJ divides by 0 and prints nan.
        if self.flavor.alexeyab:
            return value / max(self.count, 1)
        return value / self.count if self.count else math.nan

    @property
    def avg_iou(self) -> float:
        return self._per_count(self.iou_sum)

    @property
    def avg_class(self) -> float:
        return self._per_count(self.class_sum)

    @property
    def avg_obj(self) -> float:
        return self._per_count(self.obj_sum)

    @property
    def avg_noobj(self) -> float:
        return self.anyobj_sum / self.predictions

    @property
    def recall_50(self) -> float:
        return self._per_count(float(self.recall50))

    @property
    def recall_75(self) -> float:
        return self._per_count(float(self.recall75))

    def log_line(self, layer_index: int, mini_batch: int) -> str:
        """Darknet's per-layer line (without the final newline): PJ `Region ...` (§9.3), AB `v3 (...)` (§9.5)."""
        f = _c_float
        if self.flavor.pjreddie:
            return (f"Region {layer_index} Avg IOU: {f(self.avg_iou)}, Class: {f(self.avg_class)}, "
                    f"Obj: {f(self.avg_obj)}, No Obj: {f(self.avg_noobj)}, .5R: {f(self.recall_50)}, "
                    f".75R: {f(self.recall_75)},  count: {self.count}")
        n_iou, n_obj, n_cls = self.normalizers
        head = (f"v3 ({self.loss_kind} loss, Normalizer: (iou: {n_iou:.2f}, obj: {n_obj:.2f}, cls: {n_cls:.2f}) "
                f"Region {layer_index} Avg (IOU: {f(self.avg_iou)}), count: {max(self.count, 1)}, ")
        if not self.show_details:
            return head + f"total_loss = {f(self.total_loss / mini_batch)} "
        return head + (f"class_loss = {f(self.class_loss / mini_batch)}, "
                       f"iou_loss = {f(self.iou_loss / mini_batch)}, "
                       f"total_loss = {f(self.total_loss / mini_batch)} ")


def _c_float(value: float) -> str:
    """C's `%f`; x86's 0/0 is a negative NaN, which glibc prints as `-nan`."""
    if math.isnan(value):
        return "-nan"
    return f"{value:f}"


class PendingDeltas(NamedTuple):
    """A layer's deltas with its statistics still on the device: ``stats`` holds Σ o_obj over every
    prediction, Σ IoU, Σ o_obj and Σ o_cls over the assignments, the .5R and .75R counts, Σ delta² of each
    of the 5+C entries, (AB giou with show_details) Σ GIoU, and rewritten_bbox."""
    delta: Tensor
    stats: Tensor
    opts: YoloOptions
    flavor: Flavor
    count: int                  # assignments made in pass B
    predictions: int
    thresh_bbox: int            # box deltas written by the truth_thresh rule

    def finish(self, values: Sequence[float]) -> YoloDeltas:
        """The :class:`YoloDeltas` given ``stats`` read on the host."""
        opts, count = self.opts, self.count
        entries = opts.classes + 5
        anyobj_sum, iou_sum, obj_sum, class_sum, r50, r75 = values[:6]
        per_entry, rest = values[6:6 + entries], values[6 + entries:]
        total, non_box = sum(per_entry), sum(per_entry[4:])
        class_loss = opts.obj_normalizer * non_box
        cost = total
        if self.flavor.alexeyab and opts.show_details and opts.iou_loss != "mse":
            # AB's IoU-loss cost: mean (1 − GIoU) or (1 − IoU; also for diou/ciou) plus the non-box part
            lost = count - (rest[0] if opts.iou_loss == "giou" else iou_sum)
            cost = opts.iou_normalizer * lost / max(count, 1) + class_loss
        return YoloDeltas(
            delta=self.delta, cost=cost, flavor=self.flavor, count=count,
            predictions=self.predictions, iou_sum=iou_sum, class_sum=class_sum, obj_sum=obj_sum,
            anyobj_sum=anyobj_sum, recall50=round(r50), recall75=round(r75), total_loss=total,
            class_loss=class_loss, total_bbox=count + self.thresh_bbox, rewritten_bbox=round(rest[-1]),
            loss_kind=opts.iou_loss if opts.iou_loss in ("mse", "giou") else "iou",
            normalizers=(opts.iou_normalizer, opts.obj_normalizer, opts.cls_normalizer),
            show_details=opts.show_details)


def read_statistics(pending: Sequence[PendingDeltas]) -> list[YoloDeltas]:
    """Finish every layer's statistics with one device-to-host read (stacks of one dtype: mixing float and
    bool makes torch.cat several times slower)."""
    if not pending:
        return []
    dtype = pending[0].stats.dtype
    values = torch.cat([p.stats.to(dtype) for p in pending]).tolist()
    finished, start = [], 0
    for p in pending:
        finished.append(p.finish(values[start:start + p.stats.numel()]))
        start += p.stats.numel()
    return finished
