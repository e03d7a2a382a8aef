"""`[yolo]` (spec §3.7, §9.1, §9.7): options, output activation and inference decoding.

The training deltas (spec §9.3–9.6) live in :mod:`darknet_py.layers.yolo_loss`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..config.known_keys import YOLO_INERT, YOLO_WARNED, report_unimplemented
from ..config.reader import Section
from ..errors import warn
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer

IOU_LOSSES = ("mse", "iou", "giou", "diou", "ciou")
NMS_KINDS = ("default", "greedynms", "diounms")


@dataclass(frozen=True)
class YoloOptions:
    classes: int
    num: int
    mask: tuple[int, ...]
    anchors: tuple[tuple[float, float], ...]   # all `num` anchors, network-input pixels
    max_boxes: int
    jitter: float
    ignore_thresh: float
    truth_thresh: float
    random: float
    resize: float
    iou_loss: str
    iou_normalizer: float
    obj_normalizer: float
    cls_normalizer: float
    delta_normalizer: float
    scale_x_y: float
    iou_thresh: float
    iou_thresh_kind: str
    max_delta: float
    label_smooth_eps: float
    counters_per_class: tuple[int, ...]
    objectness_smooth: bool
    new_coords: bool
    focal_loss: bool
    nms_kind: str
    beta_nms: float
    show_details: bool
    map_file: Optional[str]

    @property
    def mask_anchors(self) -> tuple[tuple[float, float], ...]:
        return tuple(self.anchors[m] for m in self.mask)


def parse_anchors(section: Section, num: int, default: float) -> tuple[tuple[float, float], ...]:
    """`num` anchor pairs. Like AB, values missing from a short list keep the default (with a warning)."""
    if not section.has("anchors"):
        return ((default, default),) * num
    values = list(section.get_floats("anchors", ()))
    if len(values) < 2 * num:
        warn(f"{section.file}:{section.option('anchors').line}: 'anchors' has {len(values)} values, num={num} "
             f"needs {2 * num}; the missing ones are {default} as in AlexeyAB's Darknet")
        values += [default] * (2 * num - len(values))
    return tuple((values[2 * i], values[2 * i + 1]) for i in range(num))


def parse_num_and_mask(section: Section) -> tuple[int, tuple[int, ...]]:
    """`num` and `mask`. A mask naming anchors beyond `num` reads past Darknet's anchor array (undefined
    behaviour); when `anchors` lists enough pairs we widen `num` to cover the mask, with a warning."""
    num = section.get_int("num", 1)
    if num < 1:
        raise section.error("'num' must be at least 1", section.option("num"))
    mask = section.get_ints("mask", tuple(range(num)))
    if any(m < 0 for m in mask):
        raise section.error("mask indices must not be negative", section.option("mask"))
    needed = max(mask) + 1
    if needed > num:
        listed = len(section.get_floats("anchors", ())) // 2
        if listed < needed:
            raise section.error(f"mask index {needed - 1} is outside the {num} anchors (num={num})",
                                section.option("mask"))
        warn(f"{section.file}:{section.option('mask').line}: mask uses anchor {needed - 1} but num={num}; "
             f"using num={listed} (the number of anchor pairs listed)")
        num = listed
    return num, mask


def parse(section: Section, flavor: Flavor) -> YoloOptions:
    ab = flavor.alexeyab
    classes = section.get_int("classes", 20)
    if classes < 1:
        raise section.error("'classes' must be at least 1", section.option("classes"))
    num, mask = parse_num_and_mask(section)
    iou_loss = section.get_str("iou_loss", "mse") if ab else "mse"
    iou_loss = iou_loss if iou_loss in IOU_LOSSES else "iou"   # AB: any other string means plain IoU
    counters = section.get_ints("counters_per_class", ()) if ab else ()
    if counters and len(counters) != classes:
        raise section.error(f"'counters_per_class' needs {classes} values, has {len(counters)}",
                            section.option("counters_per_class"))
    max_boxes = section.get_int("max", flavor.max_boxes_default)
    if max_boxes < 1:
        raise section.error("'max' must be at least 1", section.option("max"))
    f = section.get_float
    _ignore_tracking_keys(section)
    return YoloOptions(
        classes=classes, num=num, mask=mask, anchors=parse_anchors(section, num, 0.5),
        max_boxes=max_boxes,
        jitter=f("jitter", 0.2), ignore_thresh=f("ignore_thresh", 0.5), truth_thresh=f("truth_thresh", 1.0),
        random=f("random", 0.0), resize=f("resize", 1.0) if ab else 1.0,
        iou_loss=iou_loss,
        iou_normalizer=f("iou_normalizer", 0.75) if ab else 1.0,
        obj_normalizer=f("obj_normalizer", 1.0) if ab else 1.0,
        cls_normalizer=f("cls_normalizer", 1.0) if ab else 1.0,
        delta_normalizer=f("delta_normalizer", 1.0) if ab else 1.0,
        scale_x_y=f("scale_x_y", 1.0) if ab else 1.0,
        iou_thresh=f("iou_thresh", 1.0) if ab else 1.0,
        iou_thresh_kind=section.get_choice("iou_thresh_kind", "iou", ("iou", "giou", "diou", "ciou"))
        if ab else "iou",
        max_delta=f("max_delta", float("inf")) if ab else float("inf"),
        label_smooth_eps=f("label_smooth_eps", 0.0) if ab else 0.0,
        counters_per_class=counters,
        objectness_smooth=section.get_bool("objectness_smooth", False) if ab else False,
        new_coords=section.get_bool("new_coords", False) if ab else False,
        focal_loss=section.get_bool("focal_loss", False) if ab else False,
        nms_kind=_nms_kind(section) if ab else "default",
        beta_nms=f("beta_nms", 0.6) if ab else 0.6,
        show_details=section.get_bool("show_details", True) if ab else True,
        map_file=section.get_str("map", "") or None,
    )


def _nms_kind(section: Section) -> str:
    kind = section.get_str("nms_kind", "default")
    return kind if kind in NMS_KINDS else "default"   # AB: any other name is the default NMS


def _ignore_tracking_keys(section: Section) -> None:
    report_unimplemented(section, YOLO_WARNED, YOLO_INERT)


@dataclass(frozen=True)
class YoloDetections:
    """Candidate boxes of one image from one layer, Darknet order (cell-major, then anchor slot)."""
    boxes: torch.Tensor       # (K, 4) x, y, w, h relative to the network input
    objectness: torch.Tensor  # (K,)
    probs: torch.Tensor       # (K, classes), zeroed unless > thresh


@dataclass(frozen=True)
class YoloDecoded:
    """Every candidate of a batch, Darknet order (cell-major, then anchor slot), before any threshold."""
    boxes: torch.Tensor       # (N, K, 4) x, y, w, h relative to the network input
    objectness: torch.Tensor  # (N, K)
    classes: torch.Tensor     # (N, K, classes) class probabilities (not yet times objectness)

    def scores(self) -> torch.Tensor:
        """(N, K, classes): objectness·class prob, Darknet's `prob` before its threshold."""
        return self.objectness[..., None] * self.classes

    def detections(self, index: torch.Tensor, thresh: float) -> YoloDetections:
        """The first image's candidates ``index`` with probs zeroed unless > thresh (`get_network_boxes`)."""
        objectness = self.objectness[0, index]
        probs = objectness[:, None] * self.classes[0, index]
        probs = torch.where(probs > thresh, probs, torch.zeros_like(probs))
        return YoloDetections(self.boxes[0, index], objectness, probs)


class YoloLayer(DarknetLayer):
    kind = "yolo"

    def __init__(self, opts: YoloOptions, ctx: BuildContext):
        ctx.require_image_input()
        need = len(opts.mask) * (opts.classes + 5)
        if ctx.input_shape.c != need:
            raise ctx.error(
                f"the previous layer has {ctx.input_shape.c} filters, [yolo] needs "
                f"(classes + 5) * len(mask) = ({opts.classes} + 5) * {len(opts.mask)} = {need}",
                hint=f"set filters={need} in the [convolutional] before this [yolo]")
        super().__init__(ctx, ctx.input_shape)
        self.options = opts
        self.net_w, self.net_h = ctx.net.width, ctx.net.height

    def split(self, z: torch.Tensor) -> torch.Tensor:
        """(N, A·(5+C), H, W) -> (N, A, 5+C, H, W) view."""
        n, _, h, w = z.shape
        return z.view(n, len(self.options.mask), self.options.classes + 5, h, w)

    def forward(self, x, outputs):
        o = self.options
        v = self.split(x)
        if o.new_coords:
            xy, rest = v[:, :, 0:2], v[:, :, 2:]
        else:
            xy = torch.sigmoid(v[:, :, 0:2])
            rest = torch.cat([v[:, :, 2:4], torch.sigmoid(v[:, :, 4:])], dim=2)
        if o.scale_x_y != 1.0:
            xy = xy * o.scale_x_y - (o.scale_x_y - 1.0) / 2
        return torch.cat([xy, rest], dim=2).view_as(x)

    def decode(self, output: torch.Tensor) -> YoloDecoded:
        """Every candidate of a batch of layer outputs (N, A·(5+C), H, W), as Darknet's `get_yolo_detections`
        computes it before thresholding. Traceable (no data-dependent shapes): ONNX export uses it too."""
        o = self.options
        a_count = len(o.mask)
        h, w = output.shape[-2:]
        v = output.view(-1, a_count, o.classes + 5, h, w)
        v = v.permute(0, 3, 4, 1, 2).reshape(-1, h * w * a_count, o.classes + 5)   # Darknet order: cell, slot
        index = torch.arange(h * w * a_count, device=v.device)
        cell, slot = index // a_count, index % a_count
        col, row = (cell % w).to(v.dtype), (cell // w).to(v.dtype)
        anchors = torch.tensor(o.mask_anchors, dtype=v.dtype, device=v.device)[slot]
        if o.new_coords:
            bw = v[..., 2] * v[..., 2] * 4 * anchors[:, 0] / self.net_w
            bh = v[..., 3] * v[..., 3] * 4 * anchors[:, 1] / self.net_h
        else:
            bw = torch.exp(v[..., 2]) * anchors[:, 0] / self.net_w
            bh = torch.exp(v[..., 3]) * anchors[:, 1] / self.net_h
        boxes = torch.stack([(col + v[..., 0]) / w, (row + v[..., 1]) / h, bw, bh], dim=-1)
        return YoloDecoded(boxes, v[..., 4], v[..., 5:])

    def detections(self, output: torch.Tensor, thresh: float) -> YoloDetections:
        """Decode one image's layer output (A·(5+C), H, W) as Darknet's `get_yolo_detections`: candidates with
        objectness > thresh, probs = objectness·class prob zeroed unless > thresh."""
        decoded = self.decode(output[None])
        idx = torch.nonzero(decoded.objectness[0] > thresh).squeeze(1)
        return decoded.detections(idx, thresh)

    def resize(self, net_w: int, net_h: int) -> None:
        self.net_w, self.net_h = net_w, net_h

    def describe(self):
        return "yolo"
