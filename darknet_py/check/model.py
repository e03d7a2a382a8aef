"""The cfg against the data: `[yolo]`/`[region]` classes and filters, whether the network builds, and how
well the anchors fit the label boxes (spec §3.7, §9, §12.8)."""
from __future__ import annotations

import os
import warnings
from typing import Optional

import numpy as np
import torch

from ..config.cfg import CfgModel
from ..errors import CfgError, DarknetError, DarknetWarning, LabelError
from ..flavor import DETECTION_KINDS, Flavor
from ..network import Network, parse_cfg
from .labels import BoxTable
from .report import ERROR, WARNING, CheckReport

LOW_ANCHOR_IOU = 0.5


def load_model(cfg: CfgModel | str | os.PathLike | None, flavor: Flavor, report: CheckReport
               ) -> Optional[CfgModel]:
    """The parsed cfg, or None (a finding is reported when it does not parse)."""
    if cfg is None or isinstance(cfg, CfgModel):
        report.cfg_file = None if cfg is None else cfg.file
        return cfg
    report.cfg_file = str(cfg)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DarknetWarning)
            model = parse_cfg(cfg, flavor=flavor)
        for warning in caught:
            if issubclass(warning.category, DarknetWarning):
                report.add("cfg-keys", WARNING, str(warning.message), CfgError)
        return model
    except DarknetError as exc:
        report.add_exception("cfg", exc)
        for code in ("cfg-classes", "cfg-filters", "anchors"):
            report.skip(code, "the cfg does not parse")
        return None


def check_model(model: CfgModel, classes: int, report: CheckReport) -> None:
    """Every detection layer's `classes` equals the `.data` classes; the conv before it has the filters the
    layer needs; then the whole network builds (on the meta device: shapes only, no memory)."""
    heads = [(i, spec) for i, spec in enumerate(model.layers) if spec.kind in DETECTION_KINDS]
    if not heads:
        report.add("cfg", ERROR, "the cfg has no [yolo] or [region] layer: it is not a detector", CfgError,
                   file=model.file)
        return
    filters_ok = True
    for index, spec in heads:
        opts = spec.options
        if opts.classes != classes:
            report.add("cfg-classes", ERROR, f"layer {index} [{spec.kind}] has classes={opts.classes}, the .data "
                       f"file says classes={classes}", CfgError, file=spec.file, line=spec.line,
                       hint=f"set classes={classes} and filters={_filters_for(spec, classes)} in the "
                            f"[convolutional] before it")
        previous = model.layers[index - 1] if index else None
        need = _filters_for(spec, opts.classes)
        if previous is not None and previous.kind == "convolutional" and previous.options.filters != need:
            filters_ok = False
            report.add("cfg-filters", ERROR, f"layer {index - 1} [convolutional] has filters="
                       f"{previous.options.filters}, the [{spec.kind}] after it needs {_filters_rule(spec)} = "
                       f"{need}", CfgError, file=previous.file, line=previous.line,
                       hint=_filters_hint(spec, previous.options.filters, classes))
    if filters_ok:
        try:
            with torch.device("meta"):
                Network(model)
        except DarknetError as exc:
            report.add_exception("cfg", exc)


def _filters_hint(spec, filters: int, classes: int) -> str:
    wanted = _filters_for(spec, classes)
    if filters == wanted:
        return f"these filters fit the .data file's classes={classes}: set classes={classes} in the [{spec.kind}]"
    return f"set filters={wanted} (and classes={classes} in the [{spec.kind}], as in the .data file)"


def _filters_for(spec, classes: int) -> int:
    opts = spec.options
    if spec.kind == "yolo":
        return (classes + 5) * len(opts.mask)
    return opts.num * (classes + opts.coords + 1)


def _filters_rule(spec) -> str:
    opts = spec.options
    if spec.kind == "yolo":
        return f"(classes + 5) * len(mask) = ({opts.classes} + 5) * {len(opts.mask)}"
    return f"num * (classes + coords + 1) = {opts.num} * ({opts.classes} + {opts.coords} + 1)"


def check_anchors(model: CfgModel, table: BoxTable, rows: np.ndarray, report: CheckReport) -> None:
    """Average best IoU of the label boxes (network pixels, centred at the origin, as `calc_anchors`) with
    the cfg's anchors, and the boxes no `[yolo]` layer trains: each layer takes a truth only when its best
    anchor (over all of the layer's anchors) is in the layer's mask."""
    yolos = [spec.options for spec in model.layers if spec.kind == "yolo"]
    if not yolos:
        report.skip("anchors", "no [yolo] layer")
        return
    if not len(rows):
        report.skip("anchors", "no boxes")
        return
    index, line, _, _, _, w, h = (column[rows] for column in table.columns())
    boxes = np.stack([w * model.net.width, h * model.net.height], axis=1).astype(np.float64)
    anchors = np.unique(np.concatenate([np.asarray(o.anchors, np.float64) for o in yolos]), axis=0)
    mean_iou = float(_centred_iou(boxes, anchors).max(axis=1).mean())
    trained = np.zeros(len(boxes), bool)
    for opts in yolos:
        best = _centred_iou(boxes, np.asarray(opts.anchors, np.float64)).argmax(axis=1)
        trained |= np.isin(best, opts.mask)
    report.stats["anchors"] = (f"average best IoU {mean_iou:.2%} of {len(boxes)} train boxes with {len(anchors)} "
                               f"anchors at {model.net.width}x{model.net.height}")
    calc = (f"darknet_py detector calc_anchors DATA -num_of_clusters {len(anchors)} -width {model.net.width} "
            f"-height {model.net.height}")
    if mean_iou < LOW_ANCHOR_IOU:
        report.add("anchors", WARNING, f"the anchors fit the boxes poorly: average best IoU {mean_iou:.2%} "
                   f"(< {LOW_ANCHOR_IOU:.0%})", CfgError, file=model.file, hint=f"recompute them: {calc}")
    if not trained.all():
        first = int(np.flatnonzero(~trained)[0])
        report.add("anchors", WARNING, f"{int((~trained).sum())} of {len(boxes)} boxes best fit an anchor that "
                   "no [yolo] mask uses: Darknet trains no prediction for them", LabelError,
                   file=table.files[index[first]], line=int(line[first]),
                   hint=f"make the masks cover every anchor, or recompute the anchors: {calc}")


def _centred_iou(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of (N, 2) and (K, 2) width/height pairs placed at the same centre -> (N, K)."""
    inter = np.minimum(boxes[:, None, 0], anchors[None, :, 0]) * np.minimum(boxes[:, None, 1], anchors[None, :, 1])
    union = (boxes[:, 0] * boxes[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return inter / union
