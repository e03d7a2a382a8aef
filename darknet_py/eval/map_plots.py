"""`detector map --plots DIR`: the pictures of the printed mAP, drawn from the same matches (the records and
truths :class:`~.map.MapAccumulator` collected), never from a second evaluation. Needs matplotlib (the
optional `[plots]` extra).

* ``pr_curve.png``: each class's precision-recall curve as Darknet's AP integrates it (the precision after
  each ranked record, made non-increasing from the right: the area under the drawn curve is the printed AP
  with ``-points 0``), and the mean of those curves over all classes; the curves' points are in
  ``pr_curves.json``.
* ``f1_curve.png``: F1 against the confidence threshold, per class and the classes' mean (its best marked).
* ``confusion_matrix.png``: true class (rows, + background) against predicted class (columns, + background)
  at ``-thresh`` with Darknet's matches: the diagonal is each class's printed TP; a false positive that
  overlaps (IoU > ``-iou_thresh``) an otherwise unclaimed truth of another class is counted against that
  class, other false positives against background; truths left over are missed (background column). So a
  column sums to the class's printed TP + FP and a row to its number of truths. Records that match a
  `difficult` object (neither TP nor FP in AP) are left out.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic_write import write_atomically
from ..errors import UsageError
from ..json_text import json_dumps
from .average_precision import Records, precision_recall, ranked_true_positives
from .boxes import box_iou_matrix

INSTALL_HINT = "pip install 'darknet_py[plots]' (or: pip install matplotlib)"
CONFIDENCES = np.linspace(0, 1, 1001)
RECALLS = np.linspace(0, 1, 101)


def require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plots needs matplotlib, which is not installed", hint=INSTALL_HINT)


@dataclass(frozen=True)
class ClassCurves:
    name: str
    recall: np.ndarray       # the drawn precision-recall step curve: x
    precision: np.ndarray    # y (interpolated precision)
    f1: np.ndarray           # F1 at each of CONFIDENCES


def class_curves(records: Records, gt_counts: np.ndarray, names: tuple[str, ...]) -> list[ClassCurves]:
    """Per class, from the globally ranked records (the ranking :func:`average_precision` uses)."""
    order, tp = ranked_true_positives(records)
    classes, probs = records.classes[order], records.probs[order]
    return [_curves(names[c], tp[classes == c], probs[classes == c], int(gt_counts[c])) for c in range(len(names))]


def _curves(name: str, tp: np.ndarray, probs: np.ndarray, gt: int) -> ClassCurves:
    if len(tp) == 0:
        return ClassCurves(name, np.array([0.0, 1.0]), np.array([0.0, 0.0]), np.zeros(len(CONFIDENCES)))
    precision, recall = precision_recall(tp, gt)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    previous = np.concatenate([[0.0], recall[:-1]])
    # the step curve: at each true positive (where recall grows), from the previous recall to this one at the
    # envelope's precision; then down to the last record's precision at the final recall
    hit = np.asarray(tp, dtype=bool)
    xs = np.append(np.stack([previous[hit], recall[hit]], axis=1).ravel(), recall[-1])
    ys = np.append(np.repeat(envelope[hit], 2), envelope[-1])
    above = np.searchsorted(-probs, -CONFIDENCES, side="left")      # records with prob > threshold
    tp_cum = np.concatenate([[0], np.cumsum(tp)])[above]
    p = np.divide(tp_cum, above, out=np.zeros(len(above)), where=above > 0)
    r = tp_cum / gt if gt > 0 else np.zeros(len(above))
    f1 = np.divide(2 * p * r, p + r, out=np.zeros(len(above)), where=(p + r) > 0)
    return ClassCurves(name, xs, ys, f1)


def confusion_matrix(per_image: list[Records], truths: list[np.ndarray], classes: int, thresh: float,
                     iou_thresh: float) -> np.ndarray:
    """(classes + 1) x (classes + 1) counts, rows true, columns predicted, last = background (see above)."""
    matrix = np.zeros((classes + 1, classes + 1), np.int64)
    offset = 0
    for records, truth in zip(per_image, truths):
        _add_image(matrix, records, truth, offset, classes, thresh, iou_thresh)
        offset += len(truth)
    return matrix


def _add_image(matrix, records: Records, truth: np.ndarray, offset: int, classes: int, thresh: float,
               iou_thresh: float) -> None:
    truth_classes = truth[:, 0].astype(np.int64)
    first = np.zeros(len(records), dtype=bool)            # Darknet: the first record of a truth, in record order
    matched = np.flatnonzero(records.truth_ids >= 0)
    if len(matched):
        _, first_pos = np.unique(records.truth_ids[matched], return_index=True)
        first[matched[first_pos]] = True
    claimed = np.zeros(len(truth), dtype=bool)
    above = np.flatnonzero(records.probs > thresh)
    for k in above[first[above]]:                          # true positives
        matrix[records.classes[k], records.classes[k]] += 1
        claimed[records.truth_ids[k] - offset] = True
    ious = box_iou_matrix(records.boxes, truth[:, 1:5]) if len(truth) else np.zeros((len(records), 0))
    for k in above[~first[above]]:                         # false positives: confused with a class, or background
        candidates = (ious[k] > iou_thresh) & ~claimed & (truth_classes != records.classes[k])
        if candidates.any():
            best = int(np.argmax(np.where(candidates, ious[k], -1)))
            claimed[best] = True
            matrix[truth_classes[best], records.classes[k]] += 1
        else:
            matrix[classes, records.classes[k]] += 1
    for t in np.flatnonzero(~claimed):                     # missed truths
        matrix[truth_classes[t], classes] += 1


PLOT_FILES = ("pr_curve.png", "f1_curve.png", "confusion_matrix.png", "pr_curves.json")


def write_plots(directory: str | Path, accumulator, result) -> list[Path]:
    """The three PNGs and pr_curves.json in ``directory`` (created); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = tuple(c.name for c in result.per_class)
    curves = class_curves(Records.concat(accumulator.records), accumulator.gt_counts(), names)
    matrix = confusion_matrix(accumulator.records, accumulator.truths, len(names), result.thresh,
                              result.iou_thresh)
    pr, f1, confusion, table = (directory / name for name in PLOT_FILES)
    written = [_save(pr, _pr_figure(curves, result)), _save(f1, _f1_figure(curves)),
               _save(confusion, _confusion_figure(matrix, names, result))]
    data = {c.name: {"recall": c.recall.round(7).tolist(), "precision": c.precision.round(7).tolist()}
            for c in curves}
    write_atomically(table, json_dumps(data).encode())
    return written + [table]


def _save(path: Path, figure) -> Path:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomically(path, buffer.getvalue())
    return path


def _pr_figure(curves: list[ClassCurves], result):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    show_labels = len(curves) <= 20
    for curve, ap in zip(curves, result.per_class):
        axes.plot(curve.recall, curve.precision, linewidth=1,
                  label=f"{curve.name} {ap.ap:.3f}" if show_labels else None)
    mean = np.mean([np.interp(RECALLS, c.recall, c.precision, right=0.0) for c in curves], axis=0)
    axes.plot(RECALLS, mean, linewidth=3, color="blue",
              label=f"all classes {result.mean_ap:.3f} mAP@{result.iou_thresh:.2f}")
    _decorate(axes, "Recall", "Precision", "Precision-recall (Darknet's AP: the area under each curve)")
    return figure


def _f1_figure(curves: list[ClassCurves]):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    for curve in curves:
        axes.plot(CONFIDENCES, curve.f1, linewidth=1, label=curve.name if len(curves) <= 20 else None)
    mean = np.mean([c.f1 for c in curves], axis=0)
    best = int(np.argmax(mean))
    axes.plot(CONFIDENCES, mean, linewidth=3, color="blue",
              label=f"all classes {mean[best]:.2f} at {CONFIDENCES[best]:.3f}")
    _decorate(axes, "Confidence", "F1", "F1 against the confidence threshold", legend="upper right")
    return figure


def _confusion_figure(matrix: np.ndarray, names: tuple[str, ...], result):
    import matplotlib.pyplot as plt

    labels = [*names, "background"]
    size = max(4.8, 0.45 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    if len(labels) <= 30:
        axes.set_xticks(range(len(labels)), labels, rotation=90)
        axes.set_yticks(range(len(labels)), labels)
        for (row, column), count in np.ndenumerate(matrix):
            if count:
                axes.text(column, row, str(count), ha="center", va="center",
                          color="white" if count > matrix.max() / 2 else "black", fontsize=8)
    axes.set_xlabel("Predicted")
    axes.set_ylabel("True")
    axes.set_title(f"Confusion matrix (conf > {result.thresh:.2f}, IoU > {result.iou_thresh:.2f})")
    figure.tight_layout()
    return figure


def _decorate(axes, xlabel: str, ylabel: str, title: str, legend: str = "lower left") -> None:
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(loc=legend, fontsize=8)
    axes.figure.tight_layout()
