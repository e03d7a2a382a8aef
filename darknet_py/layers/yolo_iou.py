"""Darknet's box overlap measures (`box.c`) as element-wise tensor functions, and the IoU-loss derivative
the AB `[yolo]` layer uses for `iou_loss=iou|giou|diou|ciou` (spec §9.1, §9.6).

A :class:`Box` holds four broadcastable tensors, centre/size `(x, y, w, h)`: components kept apart (not
stacked in a last dimension of 4, whose strided slices make broadcasting slow). :func:`iou_of_stacked` is
the every-box × every-box form, with the two axes stacked in the first dimension. Formulas follow Darknet
literally, including its departures from the true gradient (see :func:`dx_box_iou`)."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ..flavor import AB, Flavor, flavor_of

CIOU_EPS = 0.000001


class Box(NamedTuple):
    x: Tensor
    y: Tensor
    w: Tensor
    h: Tensor


def overlap(x1: Tensor, w1: Tensor, x2: Tensor, w2: Tensor) -> Tensor:
    """Signed overlap of two 1-D segments given by centre and size (negative when apart)."""
    half1, half2 = w1 / 2, w2 / 2
    return torch.minimum(x1 + half1, x2 + half2) - torch.maximum(x1 - half1, x2 - half2)


def box_intersection(a: Box, b: Box) -> Tensor:
    w = overlap(a.x, a.w, b.x, b.w)
    h = overlap(a.y, a.h, b.y, b.h)
    return torch.where((w < 0) | (h < 0), 0.0, w * h)


def box_iou(a: Box, b: Box, flavor: Flavor | str = AB) -> Tensor:
    """IoU. AB returns 0 when the intersection or the union is 0; PJ divides unconditionally (0/0 = NaN)."""
    inter = box_intersection(a, b)
    union = a.w * a.h + b.w * b.h - inter
    if not flavor_of(flavor).iou_zero_guard:
        return inter / union
    return torch.where((inter == 0) | (union == 0), 0.0, inter / union)


def iou_of_stacked(centre_a: Tensor, size_a: Tensor, low_b: Tensor, high_b: Tensor, area_b: Tensor) -> Tensor:
    """IoU for every-box × every-box matrices, with (x, y) and (w, h) stacked in dimension 0 and box b
    given by its edges (low = centre − size/2, high = centre + size/2) and area: about half the tensor
    operations of :func:`box_iou`. Differences from `box_iou`, none of which changes a `>` comparison: no
    0/0 guard (0/0 gives NaN, as in PJ), and each overlap side is clamped at 0 before multiplying, which
    equals Darknet's "either side < 0 → 0" whenever the sides are finite."""
    half_a = size_a / 2
    side = torch.minimum(centre_a + half_a, high_b) - torch.maximum(centre_a - half_a, low_b)
    inter = side.clamp_(min=0).prod(dim=0)
    return inter / (size_a.prod(dim=0) + area_b - inter)


def _enclosing(a: Box, b: Box) -> tuple[Tensor, Tensor]:
    """Width and height of the smallest box holding both."""
    top = torch.minimum(a.y - a.h / 2, b.y - b.h / 2)
    bot = torch.maximum(a.y + a.h / 2, b.y + b.h / 2)
    left = torch.minimum(a.x - a.w / 2, b.x - b.w / 2)
    right = torch.maximum(a.x + a.w / 2, b.x + b.w / 2)
    return right - left, bot - top


def box_giou(a: Box, b: Box) -> Tensor:
    cw, ch = _enclosing(a, b)
    c = cw * ch
    union = a.w * a.h + b.w * b.h - box_intersection(a, b)
    iou = box_iou(a, b)
    return torch.where(c == 0, iou, iou - (c - union) / c)


def _distance_and_diagonal(a: Box, b: Box) -> tuple[Tensor, Tensor]:
    """(d², c²): squared centre distance and squared diagonal of the enclosing box."""
    cw, ch = _enclosing(a, b)
    return (a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y), cw * cw + ch * ch


def box_diou(a: Box, b: Box, exponent: float = 0.6) -> Tensor:
    """AB's DIoU: the distance penalty is raised to 0.6 (``beta_nms`` for DIoU-NMS), not 1."""
    d, c = _distance_and_diagonal(a, b)
    iou = box_iou(a, b)
    return torch.where(c == 0, iou, iou - torch.pow(d / c, exponent))


def _atan_gap(pred: Box, truth: Box) -> Tensor:
    return torch.atan(truth.w / truth.h) - torch.atan(pred.w / pred.h)


def box_ciou(a: Box, b: Box) -> Tensor:
    """CIoU with `v = 4/π² (atan(w_b/h_b) − atan(w_a/h_a))²` (b is the truth)."""
    d, c = _distance_and_diagonal(a, b)
    iou = box_iou(a, b)
    gap = _atan_gap(a, b)
    v = 4 / (math.pi * math.pi) * gap * gap
    alpha = v / (1 - iou + v + CIOU_EPS)
    return torch.where(c == 0, iou, iou - (d / c + alpha * v))


def box_iou_kind(a: Box, b: Box, kind: str) -> Tensor:
    """The measure named by AB's `iou_thresh_kind`."""
    measure = {"giou": box_giou, "diou": box_diou, "ciou": box_ciou}.get(kind, box_iou)
    return measure(a, b)


def _quotient_rule(num: Tensor, den: Tensor, dnum: Tensor, dden: Tensor) -> Tensor:
    """d(num/den) = (den·dnum − num·dden)/den²."""
    return (den * dnum - num * dden) / (den * den)


def dx_box_iou(pred: Box, truth: Box, kind: str) -> Tensor:
    """Darknet's ascent direction `(dx, dy, dw, dh)` of the IoU-family measure w.r.t. the predicted box
    (spec §9.6), stacked in a new last dimension.

    Deliberate departures from the true gradient, kept because Darknet trains with them:
    * dw/dh are `∂/∂r − ∂/∂l` and `∂/∂b − ∂/∂t`, not halved;
    * DIoU/CIoU differentiate `d²/c²` (not `(d²/c²)^0.6`), and the enclosing-box part of dx/dy enters
      with the opposite sign of the true derivative (dw/dh get the right one);
    * CIoU's aspect term omits the `1/(w²+h²)` factor of d atan(w/h) and treats α as a constant;
    * when the boxes do not overlap, GIoU/DIoU/CIoU replace the IoU part instead of adding to it.
    """
    top, bot, left, right = pred.y - pred.h / 2, pred.y + pred.h / 2, pred.x - pred.w / 2, pred.x + pred.w / 2
    pt, pb = torch.minimum(top, bot), torch.maximum(top, bot)
    pl, pr = torch.minimum(left, right), torch.maximum(left, right)
    tt, tb = truth.y - truth.h / 2, truth.y + truth.h / 2
    tl, tr = truth.x - truth.w / 2, truth.x + truth.w / 2

    ih = torch.minimum(pb, tb) - torch.maximum(pt, tt)
    iw = torch.minimum(pr, tr) - torch.maximum(pl, tl)
    inter = iw * ih
    union = (pb - pt) * (pr - pl) + (tb - tt) * (tr - tl) - inter
    zero = torch.zeros_like(inter)
    d_area = {"t": -(pr - pl), "b": pr - pl, "l": -(pb - pt), "r": pb - pt}
    d_inter = {"t": torch.where(pt > tt, -iw, zero), "b": torch.where(pb < tb, iw, zero),
               "l": torch.where(pl > tl, -ih, zero), "r": torch.where(pr < tr, ih, zero)}
    d_union = {e: d_area[e] - d_inter[e] for e in "tblr"}
    p = {e: torch.where(union > 0, _quotient_rule(inter, union, d_inter[e], d_union[e]), zero) for e in "tblr"}

    # Darknet re-selects the partial of the other edge when an edge pair is not ordered (w or h <= 0).
    p["t"] = torch.where(top < bot, p["t"], p["b"])
    p["b"] = torch.where(top < bot, p["b"], p["t"])
    p["l"] = torch.where(left < right, p["l"], p["r"])
    p["r"] = torch.where(left < right, p["r"], p["l"])

    apart = (iw <= 0) | (ih <= 0)
    if kind == "giou":
        cw = torch.maximum(pr, tr) - torch.minimum(pl, tl)
        ch = torch.maximum(pb, tb) - torch.minimum(pt, tt)
        c = cw * ch
        d_c = {"t": torch.where(pt < tt, -cw, zero), "b": torch.where(pb > tb, cw, zero),
               "l": torch.where(pl < tl, -ch, zero), "r": torch.where(pr > tr, ch, zero)}
        for e in "tblr":
            term = _quotient_rule(union, c, d_union[e], d_c[e])
            p[e] = torch.where(apart, term, torch.where(c > 0, p[e] + term, p[e]))

    d = [p["l"] + p["r"], p["t"] + p["b"], p["r"] - p["l"], p["b"] - p["t"]]
    if kind in ("diou", "ciou"):
        outside = ((pl < tl).to(inter.dtype), (pr > tr).to(inter.dtype),
                   (pt < tt).to(inter.dtype), (pb > tb).to(inter.dtype))
        terms, c = _distance_terms(pred, truth, outside, inter / union, kind == "ciou")
        d = [torch.where(apart, term, torch.where(c > 0, base + term, base)) for base, term in zip(d, terms)]
    return torch.stack(d, dim=-1)


def _distance_terms(pred: Box, truth: Box, outside, iou_unguarded: Tensor, with_aspect: bool):
    """DIoU/CIoU additions to (dx, dy, dw, dh) and the squared enclosing diagonal.
    ``outside``: [l < l_g, r > r_g, t < t_g, b > b_g] as 0/1."""
    cw, ch = _enclosing(pred, truth)
    c = cw * cw + ch * ch
    s = (pred.x - truth.x) * (pred.x - truth.x) + (pred.y - truth.y) * (pred.y - truth.y)
    left_out, right_out, top_out, bot_out = outside
    dcw_dx, dcw_dw = right_out - left_out, 0.5 * right_out + 0.5 * left_out
    dch_dy, dch_dh = bot_out - top_out, 0.5 * bot_out + 0.5 * top_out
    c2 = c * c
    tx = (2 * (truth.x - pred.x) * c - 2 * cw * dcw_dx * s) / c2
    ty = (2 * (truth.y - pred.y) * c - 2 * ch * dch_dy * s) / c2
    tw = 2 * cw * dcw_dw * s / c2
    th = 2 * ch * dch_dh * s / c2
    if with_aspect:
        gap = _atan_gap(pred, truth)
        v = 4 / (math.pi * math.pi) * gap * gap
        alpha = v / (1 - iou_unguarded + v + CIOU_EPS)
        tw = tw + alpha * (8 / (math.pi * math.pi)) * gap * pred.h
        th = th + alpha * (-8 / (math.pi * math.pi)) * gap * pred.w
    return (tx, ty, tw, th), c
