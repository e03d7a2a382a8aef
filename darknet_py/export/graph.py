"""What an exported model computes: the network, then either the raw [yolo]/[region] outputs or Darknet's
box decoding (`get_network_boxes` before its threshold), as a plain ``nn.Module`` with tensor outputs."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ExportError

INPUT_NAME = "images"
DECODED_NAMES = ("boxes", "scores")


class ExportGraph(nn.Module):
    """``forward(images)`` -> one output per detection layer (named ``<kind>_<layer index>``), or with
    ``decode`` ``(boxes, scores)``: boxes (N, K, 4) x1, y1, x2, y2 in network pixels and scores (N, K,
    classes) = objectness · class probability, the K candidates in Darknet's order (layer, cell, slot)."""

    def __init__(self, network, decode: bool):
        super().__init__()
        self.network = network
        self.decode = decode
        if not network.detection_indices:
            raise ExportError("the cfg has no [yolo] or [region] layer: nothing to export as detections",
                              file=network.cfg.file)

    @property
    def output_names(self) -> tuple[str, ...]:
        if self.decode:
            return DECODED_NAMES
        return tuple(f"{self.network.layers[i].kind}_{i}" for i in self.network.detection_indices)

    def forward(self, images: torch.Tensor):
        outputs = self.network(images)
        if not self.decode:
            return tuple(outputs.values())
        boxes, scores = zip(*(self._decode_layer(i, out) for i, out in outputs.items()))
        return torch.cat(boxes, dim=1), torch.cat(scores, dim=1)

    def _decode_layer(self, index: int, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        decoded = self.network.layers[index].decode(output)
        # the layer's relative centre boxes, scaled to network pixels and turned into corners
        size = torch.tensor([self.network.net_options.width, self.network.net_options.height], dtype=output.dtype,
                            device=output.device)
        centre, extent = decoded.boxes[..., :2] * size, decoded.boxes[..., 2:] * size
        corners = torch.cat([centre - extent / 2, centre + extent / 2], dim=-1)
        return corners, decoded.scores()
