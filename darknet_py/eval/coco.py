"""COCO-style numbers via pycocotools (mAP@[.5:.95] and mAP@.5) on Darknet's detections.

These are pycocotools' definitions (101-point interpolation, 10 IoU thresholds, at most 100 detections per
image and class, classes without ground truth ignored), reported beside Darknet's own mAP, never instead."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

# Darknet's `coco_ids`: the 80 model classes -> the 91-id COCO category numbering.
COCO_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
            32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
            58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87,
            88, 89, 90)


@dataclass(frozen=True)
class CocoResult:
    map_50_95: float   # pycocotools stats[0]
    map_50: float      # pycocotools stats[1]

    def line(self) -> str:
        return (f" COCO (pycocotools, not Darknet's metric): mAP@[.5:.95] = {self.map_50_95:f}, "
                f"mAP@0.50 = {self.map_50:f}")


def coco_bbox(boxes: np.ndarray, im_w: int, im_h: int) -> np.ndarray:
    """`[xmin, ymin, width, height]` from pixel centre boxes, clipped to the image as Darknet's COCO writer
    does (float32 results)."""
    boxes = boxes.astype(np.float64)
    xmin = np.maximum(boxes[:, 0] - boxes[:, 2] / 2., 0).astype(np.float32)
    xmax = np.minimum(boxes[:, 0] + boxes[:, 2] / 2., im_w).astype(np.float32)
    ymin = np.maximum(boxes[:, 1] - boxes[:, 3] / 2., 0).astype(np.float32)
    ymax = np.minimum(boxes[:, 1] + boxes[:, 3] / 2., im_h).astype(np.float32)
    return np.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=1)


def ground_truth_dataset(sizes: list[tuple[int, int]], truths: list[np.ndarray], classes: int) -> dict:
    """A COCO ground-truth dict: image id = list index, category id = class id, label boxes in pixels."""
    annotations = []
    for image_id, ((w, h), truth) in enumerate(zip(sizes, truths)):
        for cls, x, y, bw, bh in truth.astype(np.float64):
            box = [(x - bw / 2) * w, (y - bh / 2) * h, bw * w, bh * h]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls),
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    return {"images": [{"id": i, "width": w, "height": h} for i, (w, h) in enumerate(sizes)],
            "annotations": annotations,
            "categories": [{"id": c, "name": str(c)} for c in range(classes)]}


def evaluate_coco(ground_truth: dict, detections: list[dict]) -> CocoResult:
    """pycocotools' bbox evaluation (its console output is swallowed)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not detections or not ground_truth["annotations"]:
        return CocoResult(0.0, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = ground_truth
        gt.createIndex()
        dt = gt.loadRes(detections)
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return CocoResult(float(max(evaluation.stats[0], 0)), float(max(evaluation.stats[1], 0)))
