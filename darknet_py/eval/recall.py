"""`detector recall` (spec §12.7): class-agnostic proposal recall at IoU > .5, one progress line per image.

Plain stretch resize, objectness threshold .001, `do_nms_obj` .4. A ground-truth box counts as found when
its best IoU with any kept proposal is > .5."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..config.data import DataConfig
from ..data.labels import read_list
from ..errors import DataFileError
from ..flavor import Flavor, flavor_of
from .boxes import box_iou_matrix
from .detect import detector_classes, get_network_boxes
from .images import read_truth, valid_list
from .inference import predicted
from .nms import do_nms_obj

RECALL_THRESH = .001
RECALL_NMS = .4
RECALL_IOU = .5
PJ_RECALL_LIST = "data/coco_val_5k.list"   # pjreddie ignores the .data file here


@dataclass(frozen=True)
class RecallState:
    index: int
    correct: int
    total: int
    proposals: int
    iou_sum: np.float32     # float accumulation, as Darknet

    def line(self) -> str:
        """Darknet's `%5d %5d %5d\\tRPs/Img: %.2f\\tIOU: %.2f%%\\tRecall:%.2f%%`."""
        with np.errstate(divide="ignore", invalid="ignore"):
            rps = np.float32(self.proposals) / np.float32(self.index + 1)
            iou = self.iou_sum * np.float32(100) / np.float32(self.total)
        recall = 100. * self.correct / self.total if self.total else float("nan")
        return (f"{self.index:5d} {self.correct:5d} {self.total:5d}\tRPs/Img: {float(rps):.2f}\t"
                f"IOU: {_c(float(iou))}%\tRecall:{_c(recall)}%")


def _c(value: float) -> str:
    return "-nan" if np.isnan(value) else f"{value:.2f}"


def recall_paths(data: DataConfig, flavor: Flavor | str) -> list[str]:
    if flavor_of(flavor).pjreddie:   # PJ's recall reads a hard-wired list
        if not Path(PJ_RECALL_LIST).is_file():
            raise DataFileError("pjreddie's `detector recall` always reads this list (it ignores the .data "
                                "file), and it does not exist", file=PJ_RECALL_LIST,
                                hint="use --flavor ab to read the .data file's `valid` list")
        return read_list(PJ_RECALL_LIST)
    return valid_list(data, "data/train.txt")


def validate_detector_recall(network, data: DataConfig, batch: int = 1,
                             workers: Optional[int] = 0) -> Iterator[RecallState]:
    """Yields the running totals after each image of the list (``batch``, ``workers``: speed only)."""
    flavor = network.net_options.flavor
    classes = detector_classes(network)
    correct = total = proposals = 0
    iou_sum = np.float32(0)
    net_w, net_h = network.net_options.width, network.net_options.height
    for item, outputs, slot in predicted(network, recall_paths(data, flavor), letter_box=False, batch=batch,
                                         workers=workers, desc="detector recall"):
        index = item.index
        dets = do_nms_obj(get_network_boxes(network, outputs, net_w, net_h, RECALL_THRESH, batch_index=slot),
                          RECALL_NMS)
        truth = read_truth(item.source, classes, flavor)
        kept = dets.objectness > RECALL_THRESH
        proposals += int(kept.sum())
        if len(truth):
            ious = box_iou_matrix(truth[:, 1:5], dets.boxes[kept])
            best = ious.max(axis=1, initial=0)
            for value in best:                  # Darknet adds them one by one in float
                iou_sum = np.float32(iou_sum + value)
            correct += int((best > RECALL_IOU).sum())
            total += len(truth)
        yield RecallState(index, correct, total, proposals, iou_sum)
