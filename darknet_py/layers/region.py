"""`[region]` (YOLOv2, spec §10): inference only — output activation and decoding (PJ memory layout)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config.known_keys import REGION_INERT, report_unimplemented
from ..config.reader import Section
from ..flavor import Flavor
from .base import BuildContext, DarknetLayer
from .yolo import YoloDecoded, YoloDetections, parse_anchors


@dataclass(frozen=True)
class RegionOptions:
    classes: int
    coords: int
    num: int
    anchors: tuple[tuple[float, float], ...]   # grid-cell units
    softmax: bool
    max_boxes: int
    jitter: float
    random: float


def parse(section: Section, flavor: Flavor) -> RegionOptions:
    if section.has("tree"):
        raise section.error("'tree' (YOLO9000) is not supported by darknet_py", section.option("tree"))
    report_unimplemented(section, {}, REGION_INERT)
    num = section.get_int("num", 1)
    classes = section.get_int("classes", 20)
    coords = section.get_int("coords", 4)
    if num < 1 or classes < 1 or coords != 4:
        raise section.error("need num >= 1, classes >= 1 and coords = 4")
    return RegionOptions(classes, coords, num, parse_anchors(section, num, 0.5),
                         section.get_bool("softmax", False), section.get_int("max", flavor.region_max_default),
                         section.get_float("jitter", 0.2), section.get_float("random", 0.0))


class RegionLayer(DarknetLayer):
    kind = "region"

    def __init__(self, opts: RegionOptions, ctx: BuildContext):
        ctx.require_image_input()
        need = opts.num * (opts.classes + opts.coords + 1)
        if ctx.input_shape.c != need:
            raise ctx.error(f"the previous layer has {ctx.input_shape.c} filters, [region] needs "
                            f"num * (classes + coords + 1) = {need}")
        super().__init__(ctx, ctx.input_shape)
        self.options = opts

    def forward(self, x, outputs):
        o = self.options
        n, _, h, w = x.shape
        v = x.view(n, o.num, o.classes + 5, h, w)
        xy, wh = torch.sigmoid(v[:, :, 0:2]), v[:, :, 2:4]
        obj = torch.sigmoid(v[:, :, 4:5])
        cls = torch.softmax(v[:, :, 5:], dim=2) if o.softmax else torch.sigmoid(v[:, :, 5:])
        return torch.cat([xy, wh, obj, cls], dim=2).view_as(x)

    def decode(self, output: torch.Tensor) -> YoloDecoded:
        """Every slot of a batch of layer outputs (N, num·(5+C), H, W), as Darknet's `get_region_detections`
        computes it before thresholding (anchors in grid cells). Traceable: ONNX export uses it too."""
        o = self.options
        h, w = output.shape[-2:]
        v = output.view(-1, o.num, o.classes + 5, h, w)
        v = v.permute(0, 3, 4, 1, 2).reshape(-1, h * w * o.num, o.classes + 5)
        idx = torch.arange(h * w * o.num, device=v.device)
        cell, slot = idx // o.num, idx % o.num
        anchors = torch.tensor(o.anchors, dtype=v.dtype, device=v.device)[slot]
        boxes = torch.stack([((cell % w).to(v.dtype) + v[..., 0]) / w, ((cell // w).to(v.dtype) + v[..., 1]) / h,
                             torch.exp(v[..., 2]) * anchors[:, 0] / w, torch.exp(v[..., 3]) * anchors[:, 1] / h], -1)
        return YoloDecoded(boxes, v[..., 4], v[..., 5:])

    def detections(self, output: torch.Tensor, thresh: float) -> YoloDetections:
        """Darknet's `get_region_detections`: every slot, probs = obj·class prob, zeroed unless > thresh."""
        decoded = self.decode(output[None])
        return decoded.detections(torch.arange(decoded.objectness.shape[1], device=output.device), thresh)

    def describe(self):
        return "detection"
