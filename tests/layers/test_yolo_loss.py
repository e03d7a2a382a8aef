"""`[yolo]` training deltas (darknet_py.layers.yolo_loss) against real Darknet and hand-derived values.

Golden data: tests/fixtures/yolo_loss/ holds the yolo outputs, deltas, costs and console logs that AlexeyAB
(stock CPU build) and pjreddie Darknet produced for iteration 0 of the tiny3 burn-in training fixture.
Option combinations Darknet's fixture does not exercise are checked against `_reference_deltas`, a plain
per-prediction / per-truth loop written from the spec (§9.3, §9.4) in this file."""
from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings

import numpy as np
import pytest
import torch

from darknet_py.network import parse_cfg
from darknet_py.errors import CfgError, LabelError
from darknet_py.layers.yolo_iou import (Box, box_ciou, box_diou, box_giou, box_iou, box_iou_kind, dx_box_iou,
                                        iou_of_stacked)
from darknet_py.layers.yolo_loss import yolo_deltas, yolo_surrogate

YOLO_LAYERS = {16: 4, 23: 8}      # layer index -> grid size in tiny3
MINI, SUBDIVISIONS = 4, 4


@pytest.fixture(scope="module")
def data(fixtures_dir):
    return fixtures_dir / "yolo_loss"


@pytest.fixture(scope="module")
def cfgs(data):
    return {flavor: parse_cfg(data / "tiny3.cfg", flavor=flavor) for flavor in ("ab", "pj")}


def _truth(data, flavor: str) -> torch.Tensor:
    shape = (16, 200, 6) if flavor == "ab" else (16, 90, 5)
    return torch.from_numpy(np.fromfile(data / f"truth_{flavor}.f32", dtype="<f4").reshape(shape))


def _dump(data, flavor: str, sub: int, layer: int, kind: str) -> torch.Tensor:
    grid = YOLO_LAYERS[layer]
    raw = np.fromfile(data / flavor / f"it0_sub{sub}_layer{layer:03d}_yolo_{kind}.f32", dtype="<f4")
    return torch.from_numpy(raw.reshape(MINI, 24, grid, grid))


def _darknet_run(data, cfgs, flavor):
    """{(sub, layer): YoloDeltas} for the fixture's iteration 0, computed from Darknet's yolo outputs."""
    truth = _truth(data, flavor)
    return {(s, layer): yolo_deltas(cfgs[flavor].layers[layer].options, _dump(data, flavor, s, layer, "output"),
                                    truth[MINI * s:MINI * (s + 1)], 128, 128, flavor)
            for s in range(SUBDIVISIONS) for layer in YOLO_LAYERS}


# -- real Darknet ------------------------------------------------------------------------------------

@pytest.mark.parametrize("flavor", ["ab", "pj"])
def test_deltas_and_costs_match_darknet(data, cfgs, flavor):
    runs = _darknet_run(data, cfgs, flavor)
    record = json.loads((data / flavor / "train.json").read_text())["iterations"][0]
    network_costs = []
    for sub in record["subdivisions"]:
        s = sub["sub"]
        for entry in sub["yolo"]:
            result = runs[(s, entry["layer"])]
            expected = _dump(data, flavor, s, entry["layer"], "delta")
            assert (result.delta - expected).abs().max() <= 1e-4, (s, entry["layer"])
            assert result.cost == pytest.approx(entry["cost"], rel=1e-4)
        # the subdivision's network cost is the mean over the cost-owning layers
        network_costs.append(sum(runs[(s, layer)].cost for layer in YOLO_LAYERS) / len(YOLO_LAYERS))
        assert network_costs[-1] == pytest.approx(sub["network_cost"], rel=1e-4)
    loss = sum(network_costs) / (SUBDIVISIONS * MINI)
    assert loss == pytest.approx(record["loss_returned_by_train_network"], rel=1e-4)


_NUMBER = re.compile(r"-?\d+\.\d+|-?\d+|-?nan")


def _assert_same_line(ours: str, theirs: str) -> None:
    """Same text; numbers equal to Darknet's float accumulation (last printed digit may differ)."""
    assert _NUMBER.sub("#", ours) == _NUMBER.sub("#", theirs)
    for a, b in zip(_NUMBER.findall(ours), _NUMBER.findall(theirs)):
        assert float(a) == pytest.approx(float(b), rel=1e-5, abs=3e-6), (ours, theirs)


@pytest.mark.parametrize("flavor", ["ab", "pj"])
def test_log_lines_match_darknet(data, cfgs, flavor):
    runs = _darknet_run(data, cfgs, flavor)
    log = (data / flavor / "train.log").read_text().splitlines()
    lines = [line for line in log if "Region" in line][:SUBDIVISIONS * len(YOLO_LAYERS)]
    ours = [runs[(s, layer)].log_line(layer, MINI) for s in range(SUBDIVISIONS) for layer in YOLO_LAYERS]
    for mine, darknet in zip(ours, lines):
        _assert_same_line(mine, darknet)


def test_bbox_counters_match_darknet(data, cfgs):
    """AB's ` total_bbox = %d, rewritten_bbox = %f %% ` line, cumulative over the micro-batches."""
    runs = _darknet_run(data, cfgs, "ab")
    log = (data / "ab" / "train.log").read_text().splitlines()
    lines = [line for line in log if "total_bbox" in line][:SUBDIVISIONS]
    total = rewritten = 0
    for s, line in enumerate(lines):
        total += sum(runs[(s, layer)].total_bbox for layer in YOLO_LAYERS)
        rewritten += sum(runs[(s, layer)].rewritten_bbox for layer in YOLO_LAYERS)
        assert line == f" total_bbox = {total}, rewritten_bbox = {100 * rewritten / total:f} % "
    assert rewritten == 1    # one slot got two truths in the last micro-batch


# -- IoU measures and the §9.6 derivative ------------------------------------------------------------

def _box(x, y, w, h) -> Box:
    return Box(*(torch.tensor(v, dtype=torch.float64) for v in (x, y, w, h)))


def test_iou_variants_on_hand_values():
    a, b = _box(0.5, 0.5, 0.4, 0.2), _box(0.6, 0.5, 0.4, 0.2)
    # overlap 0.3 × 0.2, union 2·0.08 − 0.06, enclosing 0.5 × 0.2 (diag² 0.29), centre distance² 0.01
    iou = 0.06 / 0.10
    assert float(box_iou(a, b)) == pytest.approx(iou)
    assert float(box_giou(a, b)) == pytest.approx(iou - (0.10 - 0.10) / 0.10)
    assert float(box_diou(a, b)) == pytest.approx(iou - (0.01 / 0.29) ** 0.6)     # AB's 0.6 exponent
    tall = _box(0.6, 0.5, 0.2, 0.4)
    inter, union = 0.2 * 0.2, 0.08 + 0.08 - 0.04
    v = 4 / math.pi ** 2 * (math.atan(0.5) - math.atan(2.0)) ** 2
    alpha = v / (1 - inter / union + v + 1e-6)
    diag2 = 0.4 ** 2 + 0.4 ** 2
    assert float(box_ciou(a, tall)) == pytest.approx(inter / union - (0.01 / diag2 + alpha * v))
    apart = _box(0.9, 0.9, 0.1, 0.1)
    assert float(box_iou(a, apart)) == 0.0
    assert float(box_giou(a, apart)) < 0
    assert float(box_iou_kind(a, b, "giou")) == pytest.approx(float(box_giou(a, b)))


def test_iou_matrix_form_agrees_with_box_iou():
    """7 boxes × 5 boxes in 4 groups, (x, y) and (w, h) stacked in dimension 0."""
    g = torch.Generator().manual_seed(3)
    centre_a, size_a = torch.rand(2, 4, 1, 7, generator=g) * 0.8 + 0.1, torch.rand(2, 4, 1, 7, generator=g) * 0.5
    centre_b, size_b = torch.rand(2, 4, 5, 1, generator=g) * 0.8 + 0.1, torch.rand(2, 4, 5, 1, generator=g) * 0.5
    stacked = iou_of_stacked(centre_a, size_a, centre_b - size_b / 2, centre_b + size_b / 2, size_b.prod(0))
    plain = box_iou(Box(*centre_a, *size_a), Box(*centre_b, *size_b), "pj")
    assert torch.equal(stacked, plain)
    assert (stacked > 0).any() and (stacked == 0).any()


def test_iou_division_rule_per_flavor():
    empty = _box(0.5, 0.5, 0.0, 0.0)
    assert float(box_iou(empty, empty, "ab")) == 0.0            # AB: 0 when the union is 0
    assert math.isnan(float(box_iou(empty, empty, "pj")))        # PJ divides 0 by 0


def _numeric_gradient(measure, pred: Box, truth: Box, step=1e-6) -> list[float]:
    grads = []
    for k in range(4):
        up = [float(v) for v in pred]
        down = list(up)
        up[k] += step
        down[k] -= step
        grads.append((float(measure(_box(*up), truth)) - float(measure(_box(*down), truth))) / (2 * step))
    return grads


def _minus_distance(p: Box, g: Box) -> torch.Tensor:
    """−d²/c², the DIoU penalty Darknet's derivative actually differentiates (no 0.6 exponent)."""
    d, c = (p.x - g.x) ** 2 + (p.y - g.y) ** 2, 0.0
    right, left = torch.maximum(p.x + p.w / 2, g.x + g.w / 2), torch.minimum(p.x - p.w / 2, g.x - g.w / 2)
    bot, top = torch.maximum(p.y + p.h / 2, g.y + g.h / 2), torch.minimum(p.y - p.h / 2, g.y - g.h / 2)
    c = (right - left) ** 2 + (bot - top) ** 2
    return -d / c


@pytest.mark.parametrize("kind,measure", [("iou", box_iou), ("giou", box_giou)])
def test_iou_derivative_is_gradient_with_unhalved_size_terms(kind, measure):
    """Overlapping boxes: dx, dy are the true gradient; dw, dh are twice it (Darknet does not halve)."""
    pred, truth = _box(0.53, 0.47, 0.30, 0.22), _box(0.50, 0.50, 0.26, 0.30)
    d = dx_box_iou(pred, truth, kind).tolist()
    g = _numeric_gradient(measure, pred, truth)
    assert d == pytest.approx([g[0], g[1], 2 * g[2], 2 * g[3]], rel=1e-5, abs=1e-7)


def test_giou_derivative_for_apart_boxes_keeps_only_the_enclosing_term():
    """Apart boxes: GIoU = U/C − 1 with I = 0, and Darknet uses only ∂(U/C) — but with its unclamped
    intersection Iw·Ih (here one side negative, so I < 0 and U = X + X̂ − I)."""
    pred, truth = _box(0.2, 0.5, 0.1, 0.2), _box(0.6, 0.55, 0.2, 0.2)
    iw, ih = (0.25 - 0.5), (0.6 - 0.45)                  # right_p − left_g, bottom_p − top_g
    x_area, inter = 0.1 * 0.2, iw * ih
    union = x_area + 0.04 - inter
    cw, ch = 0.7 - 0.15, 0.65 - 0.4
    c = cw * ch
    # ∂U/∂e = ∂X/∂e − ∂I/∂e with ∂I/∂b = Iw (b < b_g), ∂I/∂r = Ih (r < r_g), ∂I/∂t = ∂I/∂l = 0
    du = {"t": -0.1, "b": 0.1 - iw, "l": -0.2, "r": 0.2 - ih}
    dc = {"t": -cw, "b": 0.0, "l": -ch, "r": 0.0}        # the prediction's top and left edges bound C
    p = {e: (c * du[e] - union * dc[e]) / c ** 2 for e in "tblr"}
    expected = [p["l"] + p["r"], p["t"] + p["b"], p["r"] - p["l"], p["b"] - p["t"]]
    assert dx_box_iou(pred, truth, "giou").tolist() == pytest.approx(expected, rel=1e-9)


def test_diou_derivative_inside_the_truth_is_the_gradient_of_iou_minus_distance():
    """Prediction strictly inside the truth: the enclosing box does not move with it, so Darknet's dx, dy
    equal the gradient of IoU − d²/c² and dw, dh twice the IoU part (the distance part of dw/dh is 0)."""
    pred, truth = _box(0.52, 0.47, 0.10, 0.12), _box(0.50, 0.50, 0.30, 0.30)
    d = dx_box_iou(pred, truth, "diou").tolist()
    g_iou = _numeric_gradient(box_iou, pred, truth)
    g_dist = _numeric_gradient(_minus_distance, pred, truth)
    assert d == pytest.approx([g_iou[0] + g_dist[0], g_iou[1] + g_dist[1], 2 * g_iou[2], 2 * g_iou[3]],
                              rel=1e-5, abs=1e-7)


def test_diou_derivative_sign_of_the_enclosing_term_is_flipped():
    """Prediction sticking out on the right: Darknet's dx has −2·Cw·S/C² where the true derivative of
    −d²/c² has +2·Cw·S/C² (C = c², S = d²); dw's distance term Cw·S/C² is the true one (not doubled)."""
    pred, truth = _box(0.62, 0.50, 0.30, 0.10), _box(0.50, 0.50, 0.30, 0.30)
    d = dx_box_iou(pred, truth, "diou").tolist()
    g_iou = _numeric_gradient(box_iou, pred, truth)
    g_dist = _numeric_gradient(_minus_distance, pred, truth)
    s, cw, ch = 0.12 ** 2, 0.77 - 0.35, 0.30
    c = cw ** 2 + ch ** 2
    assert d[0] == pytest.approx(g_iou[0] + g_dist[0] - 4 * cw * s / c ** 2, rel=1e-5)
    assert d[2] == pytest.approx(2 * g_iou[2] + g_dist[2], rel=1e-5)


def test_ciou_aspect_term_misses_the_atan_denominator():
    """Same centre (no distance term), nested boxes: dw − 2·∂IoU/∂w is α·8/π²·Δ·h, i.e. (w² + h²) times
    the true −α·∂v/∂w with α held constant."""
    pred, truth = _box(0.5, 0.5, 0.10, 0.20), _box(0.5, 0.5, 0.30, 0.30)
    d = dx_box_iou(pred, truth, "ciou").tolist()
    g_iou = _numeric_gradient(box_iou, pred, truth)
    inter, union = 0.02, 0.09
    gap = math.atan(1.0) - math.atan(0.5)
    v = 4 / math.pi ** 2 * gap ** 2
    alpha = v / (1 - inter / union + v + 1e-6)
    true_dw = alpha * 8 / math.pi ** 2 * gap * 0.20 / (0.10 ** 2 + 0.20 ** 2)   # −α ∂v/∂w
    assert d[2] - 2 * g_iou[2] == pytest.approx(true_dw * (0.10 ** 2 + 0.20 ** 2), rel=1e-5)
    assert d[0] == pytest.approx(0.0, abs=1e-12)


# -- option-specific behaviour on hand-built cases ----------------------------------------------------

def _layer23(cfgs, flavor="ab", **changes):
    return dataclasses.replace(cfgs[flavor].layers[23].options, **changes)


def _blank_output(value=0.1, grid=8) -> torch.Tensor:
    """(1, 24, grid, grid): x, y, w, h = 0.5, 0.5, 0, 0 and obj/class probabilities `value`."""
    out = torch.full((1, 3, 8, grid, grid), value)
    out[:, :, 0:2] = 0.5
    out[:, :, 2:4] = 0.0
    return out.view(1, 24, grid, grid)


def _truth_rows(*rows, width=6) -> torch.Tensor:
    truth = torch.zeros(1, 200 if width == 6 else 90, width)
    for k, row in enumerate(rows):
        truth[0, k, :5] = torch.tensor(row)
    return truth


def test_iou_thresh_adds_anchors_and_divides_box_deltas_by_class_count(cfgs):
    """A 30×30 px truth: best anchor 1 (24×40, IoU .63); with iou_thresh .3 anchors 2 (.63) and 0 (20×20,
    .44) of the same mask also get it. A second truth of another class on the same cell accumulates onto the
    same slots; each slot's box delta is then divided by its 2 positive classes."""
    opts = _layer23(cfgs, iou_thresh=0.3)
    out = _blank_output()
    w = 30 / 128
    truth = _truth_rows((0.53, 0.53, w, w, 0), (0.54, 0.55, w, w, 2))
    delta = yolo_deltas(opts, out, truth, 128, 128, "ab").delta.view(3, 8, 8, 8)
    i, j = int(0.53 * 8), int(0.53 * 8)
    for slot, (aw, ah) in enumerate([(20, 20), (24, 40), (40, 24)]):
        boxes = []
        for x, y in ((0.53, 0.53), (0.54, 0.55)):
            scale = 0.75 * (2 - w * w)
            boxes.append([scale * (x * 8 - i - 0.5), scale * (y * 8 - j - 0.5),
                          scale * math.log(w * 128 / aw), scale * math.log(w * 128 / ah)])
        expected = [(b0 + b1) / 2 for b0, b1 in zip(*boxes)]
        assert delta[slot, :4, j, i].tolist() == pytest.approx(expected, rel=1e-5)
        assert delta[slot, 5:, j, i].tolist() == pytest.approx([0.9, -0.1, 0.9])
        assert float(delta[slot, 4, j, i]) == pytest.approx(0.9)


def test_iou_thresh_reaches_anchors_of_a_layer_that_does_not_own_the_best_one(cfgs):
    """Truth 40×40 px: best anchor 3 (layer 16); anchors 1 and 2 of layer 23 overlap it by .6 > .5."""
    w = 40 / 128
    truth = _truth_rows((0.5, 0.5, w, w, 1))
    without = yolo_deltas(_layer23(cfgs), _blank_output(), truth, 128, 128, "ab")
    assert without.count == 0
    result = yolo_deltas(_layer23(cfgs, iou_thresh=0.5), _blank_output(), truth, 128, 128, "ab")
    assert result.count == 2
    delta = result.delta.view(3, 8, 8, 8)
    assert float(delta[0, 4, 4, 4]) == pytest.approx(-0.1)    # anchor 0 (IoU .41) not assigned
    assert float(delta[1, 4, 4, 4]) == pytest.approx(0.9) and float(delta[2, 4, 4, 4]) == pytest.approx(0.9)


def test_label_smooth_eps(cfgs):
    eps = 0.1
    w = 20 / 128
    truth = _truth_rows((0.5, 0.5, w, w, 1))
    delta = yolo_deltas(_layer23(cfgs, label_smooth_eps=eps), _blank_output(0.2), truth, 128, 128, "ab").delta
    cls = delta.view(3, 8, 8, 8)[0, 5:, 4, 4].tolist()
    positive, negative = 1 * (1 - eps) + 0.5 * eps, 0 * (1 - eps) + 0.5 * eps
    assert cls == pytest.approx([negative - 0.2, positive - 0.2, negative - 0.2])


def test_pj_later_truth_overwrites_box_and_becomes_multilabel(cfgs):
    """PJ: two truths on one slot — the box delta is the second truth's alone; class-0 delta is already
    set, so the second only switches its own class on."""
    opts = _layer23(cfgs, "pj")
    w = 20 / 128
    truth = _truth_rows((0.51, 0.52, w, w, 0), (0.55, 0.58, w, w, 2), width=5)
    delta = yolo_deltas(opts, _blank_output(0.3), truth, 128, 128, "pj").delta.view(3, 8, 8, 8)
    scale = 2 - w * w
    assert delta[0, :2, 4, 4].tolist() == pytest.approx([scale * (0.55 * 8 - 4.5), scale * (0.58 * 8 - 4.5)],
                                                        rel=1e-5)
    assert delta[0, 5:, 4, 4].tolist() == pytest.approx([0.7, -0.3, 0.7])


def test_ab_accumulates_box_deltas(cfgs):
    w = 20 / 128
    truth = _truth_rows((0.51, 0.52, w, w, 0), (0.55, 0.58, w, w, 2))
    result = yolo_deltas(_layer23(cfgs), _blank_output(0.3), truth, 128, 128, "ab")
    scale = 0.75 * (2 - w * w)
    expected = scale * (0.51 * 8 - 4.5) + scale * (0.55 * 8 - 4.5)
    assert float(result.delta.view(3, 8, 8, 8)[0, 0, 4, 4]) == pytest.approx(expected, rel=1e-5)
    assert result.rewritten_bbox == 1 and result.total_bbox == 2


def test_pj_rejects_a_class_outside_the_layer(cfgs):
    truth = _truth_rows((0.5, 0.5, 0.2, 0.2, 7), width=5)
    with pytest.raises(LabelError, match="class 7"):
        yolo_deltas(_layer23(cfgs, "pj"), _blank_output(), truth, 128, 128, "pj")


def test_ab_skips_a_class_outside_the_layer_with_a_warning(cfgs):
    truth = _truth_rows((0.5, 0.5, 20 / 128, 20 / 128, 7), (0.3, 0.3, 20 / 128, 20 / 128, 1))
    with pytest.warns(UserWarning, match="class 7"):
        result = yolo_deltas(_layer23(cfgs), _blank_output(), truth, 128, 128, "ab")
    assert result.count == 1


def test_class_map_renames_the_truth_classes(cfgs):
    """`map=` remaps the truth's class (after AB's range check on the original class)."""
    w = 20 / 128
    truth = _truth_rows((0.5, 0.5, w, w, 0))
    with pytest.raises(CfgError, match="map"):
        yolo_deltas(_layer23(cfgs, map_file="remap.txt"), _blank_output(0.2), truth, 128, 128, "ab")
    result = yolo_deltas(_layer23(cfgs, map_file="remap.txt"), _blank_output(0.2), truth, 128, 128, "ab",
                         class_map=[2, 0, 1])
    assert result.delta.view(3, 8, 8, 8)[0, 5:, 4, 4].tolist() == pytest.approx([-0.2, -0.2, 0.8])


def test_ab_zeroes_a_nan_objectness_only_in_images_with_truths(cfgs):
    out = _blank_output(0.2).repeat(2, 1, 1, 1)
    out.view(2, 3, 8, 8, 8)[:, 1, 4, 0, 0] = float("nan")
    truth = torch.cat([_truth_rows((0.5, 0.5, 20 / 128, 20 / 128, 1)), torch.zeros(1, 200, 6)])
    delta = yolo_deltas(_layer23(cfgs), out, truth, 128, 128, "ab").delta.view(2, 3, 8, 8, 8)
    assert float(delta[0, 1, 4, 0, 0]) == 0.0              # image with a truth: the NaN became 0
    assert math.isnan(float(delta[1, 1, 4, 0, 0]))         # image without one: Darknet leaves it


def test_ab_reports_wrong_labels(cfgs):
    truth = _truth_rows((0.5, 1.2, 20 / 128, 20 / 128, 1))
    with pytest.warns(UserWarning, match="Wrong label"):
        yolo_deltas(_layer23(cfgs), _blank_output(), truth, 128, 128, "ab")


@pytest.mark.parametrize("flavor", ["ab", "pj"])
def test_no_truth_gives_pure_objectness_deltas(cfgs, flavor):
    result = yolo_deltas(_layer23(cfgs, flavor), _blank_output(0.25), torch.zeros(1, 90, 5), 128, 128, flavor)
    obj = result.delta.view(3, 8, 8, 8)[:, 4]
    assert torch.allclose(obj, torch.full_like(obj, -0.25))
    assert result.cost == pytest.approx(192 * 0.25 ** 2, rel=1e-6)
    line = result.log_line(23, 1)
    # PJ divides by count = 0 (x86 prints the NaN as -nan); AB forces count to 1 first
    assert ("Avg IOU: -nan" in line and "count: 0" in line) if flavor == "pj" else "count: 1," in line


def test_surrogate_gradient_is_minus_delta_over_batch(cfgs):
    z = torch.randn(2, 24, 8, 8, requires_grad=True)
    delta = torch.randn(2, 24, 8, 8)
    yolo_surrogate(z, delta, 16).backward()
    assert torch.allclose(z.grad, -delta / 16)


# -- every option against the spec's sequential loops -------------------------------------------------

def _ref_iou(a, b, guard):
    def overlap(x1, w1, x2, w2):
        return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)
    w, h = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if w < 0 or h < 0 else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    if guard and (inter == 0 or union == 0):
        return 0.0
    return inter / union if union else math.nan


def _ref_shape_iou(anchor, wh, kind, guard):
    if kind == "iou":
        return _ref_iou((0, 0, *anchor), (0, 0, *wh), guard)
    zero = torch.tensor(0.0, dtype=torch.float64)
    as_box = [Box(zero, zero, *(torch.tensor(v, dtype=torch.float64) for v in s)) for s in (anchor, wh)]
    return float(box_iou_kind(as_box[0], as_box[1], kind))


def _reference_deltas(opts, out, truth, net, flavor):
    """Darknet's forward_yolo_layer (train mode) as plain loops over images, predictions and truths."""
    ab = flavor == "ab"
    o = out.double().view(out.shape[0], len(opts.mask), opts.classes + 5, *out.shape[2:]).numpy().copy()
    n_img, n_slot, _, grid_h, grid_w = o.shape
    d = np.zeros_like(o)
    cm = None
    if opts.counters_per_class:
        counts = [max(c, 1) for c in opts.counters_per_class]
        cm = [min(max(counts) / c, opts.max_delta) for c in counts]
    n_iou, n_obj = opts.iou_normalizer, opts.obj_normalizer
    stats = {"count": 0, "iou": 0.0}

    def pred_box(b, a, j, i):
        v = o[b, a, :, j, i]
        aw, ah = opts.anchors[opts.mask[a]]
        if opts.new_coords:
            return ((i + v[0]) / grid_w, (j + v[1]) / grid_h, v[2] ** 2 * 4 * aw / net, v[3] ** 2 * 4 * ah / net)
        return ((i + v[0]) / grid_w, (j + v[1]) / grid_h, math.exp(v[2]) * aw / net, math.exp(v[3]) * ah / net)

    def box_delta(b, a, j, i, t, anchor):
        x, y, w, h = t[:4]
        mult = n_iou * (cm[t[4]] if cm else 1.0)
        v, dv = o[b, a, :, j, i], d[b, a, :, j, i]
        if opts.iou_loss == "mse" or not ab:
            aw, ah = opts.anchors[anchor]
            if opts.new_coords:
                tw, th = math.sqrt(w * net / (4 * aw)), math.sqrt(h * net / (4 * ah))
            else:
                tw, th = math.log(w * net / aw), math.log(h * net / ah)
            s = 2 - w * h
            new = [s * (x * grid_w - i - v[0]), s * (y * grid_h - j - v[1]), s * (tw - v[2]), s * (th - v[3])]
            new = [k * mult for k in new] if ab else new
        else:
            p = pred_box(b, a, j, i)
            p = (p[0], p[1], p[2] or 1.0, p[3] or 1.0)
            g = dx_box_iou(Box(*(torch.tensor(float(k), dtype=torch.float64) for k in p)),
                           Box(*(torch.tensor(float(k), dtype=torch.float64) for k in (x, y, w, h))),
                           opts.iou_loss).tolist()
            if not opts.new_coords:
                g[2], g[3] = g[2] * math.exp(v[2]), g[3] * math.exp(v[3])
            new = [min(max(k * mult if math.isfinite(k * mult) else 0.0, -opts.max_delta), opts.max_delta)
                   for k in g]
        for k in range(4):
            dv[k] = dv[k] + new[k] if ab else new[k]

    def class_delta(b, a, j, i, c):
        v, dv = o[b, a, 5:, j, i], d[b, a, 5:, j, i]
        eps = opts.label_smooth_eps if ab else 0.0
        pos, neg = 1 * (1 - eps) + 0.5 * eps, 0 * (1 - eps) + 0.5 * eps
        if (dv[c] if ab else dv[0]) != 0:
            dv[c] = pos - v[c]
            if ab and cm:
                dv[c] *= cm[c]
            return
        if ab and opts.focal_loss:
            pt = v[c] + 1e-15
            grad = -(1 - pt) * (2 * pt * math.log(pt) + pt - 1)
            for k in range(opts.classes):
                dv[k] = ((k == c) - v[k]) * 0.5 * grad
            return
        for k in range(opts.classes):
            dv[k] = (pos if k == c else neg) - v[k]
        if ab and cm:
            dv[c] *= cm[c] * opts.cls_normalizer

    for b in range(n_img):
        truths = []
        for row in truth[b, :opts.max_boxes].tolist():
            if row[0] == 0:
                break
            if 0 <= int(row[4]) < opts.classes:
                truths.append((*row[:4], int(row[4])))
        for j in range(grid_h):
            for i in range(grid_w):
                for a in range(n_slot):
                    v = o[b, a, :, j, i]
                    p = pred_box(b, a, j, i)
                    best, best_t, best_match = 0.0, 0, 0.0
                    match = any(v[5:] > 0.25)
                    for k, t in enumerate(truths):
                        iou = _ref_iou(p, t[:4], ab)
                        if match and iou > best_match:
                            best_match = iou
                        if iou > best:
                            best, best_t = iou, k
                    d[b, a, 4, j, i] = n_obj * (0 - v[4]) if ab else -v[4]
                    ignore = best_match if ab else best
                    if ignore > opts.ignore_thresh:
                        smooth = ab and opts.objectness_smooth
                        d[b, a, 4, j, i] = max(d[b, a, 4, j, i], n_obj * (best_match - v[4])) if smooth else 0.0
                    if best > opts.truth_thresh:
                        t = truths[best_t]
                        q = best * best
                        target = q if ab and opts.objectness_smooth else 1.0
                        d[b, a, 4, j, i] = n_obj * (target - v[4]) if ab else 1 - v[4]
                        class_delta(b, a, j, i, t[4])
                        if ab and opts.objectness_smooth:
                            d[b, a, 5 + t[4], j, i] = (cm[t[4]] if cm else 1.0) * (q - v[5 + t[4]])
                        box_delta(b, a, j, i, t, opts.mask[a])
        for t in truths:
            i, j = min(max(int(t[0] * grid_w), 0), grid_w - 1), min(max(int(t[1] * grid_h), 0), grid_h - 1)
            best_iou, best_n = 0.0, 0
            for k, (aw, ah) in enumerate(opts.anchors):
                iou = _ref_shape_iou((aw / net, ah / net), t[2:4], "iou", ab)
                if iou > best_iou:
                    best_iou, best_n = iou, k
            chosen = [best_n] if best_n in opts.mask else []
            if ab and opts.iou_thresh < 1:
                chosen += [k for k in range(len(opts.anchors)) if k in opts.mask and k != best_n and
                           _ref_shape_iou(tuple(x / net for x in opts.anchors[k]), t[2:4],
                                          opts.iou_thresh_kind, ab) > opts.iou_thresh]
            for anchor in chosen:
                a = opts.mask.index(anchor)
                box_delta(b, a, j, i, t, anchor)
                target = (cm[t[4]] if ab and cm else 1.0) * (n_obj if ab else 1.0) * (1 - o[b, a, 4, j, i])
                if not (ab and opts.objectness_smooth) or d[b, a, 4, j, i] == 0:
                    d[b, a, 4, j, i] = target
                class_delta(b, a, j, i, t[4])
                stats["count"] += 1
                stats["iou"] += _ref_iou(pred_box(b, a, j, i), t[:4], ab)
        if ab and opts.iou_thresh < 1:
            for a in range(n_slot):
                for j in range(grid_h):
                    for i in range(grid_w):
                        k = int((d[b, a, 5:, j, i] > 0).sum())
                        if d[b, a, 4, j, i] != 0 and k > 0:
                            d[b, a, :4, j, i] /= k
    return torch.from_numpy(d).view(out.shape), stats


def _crowded_case(seed, flavor, n=3, grid=4, boxes=10):
    """Random outputs and truths piled onto few cells so that slots get several truths (sizes suit the
    anchors of layer 16, whose options the cases use)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.rand(n, 3, 8, grid, grid, generator=g)
    out[:, :, 2:4] = torch.randn(n, 3, 2, grid, grid, generator=g) * 0.5
    truth = torch.zeros(n, 200 if flavor == "ab" else 90, 6 if flavor == "ab" else 5)
    for b in range(n):
        k = int(torch.randint(1, boxes + 1, (1,), generator=g))
        cells = torch.randint(0, 2, (k, 2), generator=g).float()
        truth[b, :k, :2] = (cells + 0.2 + 0.6 * torch.rand(k, 2, generator=g)) / grid
        truth[b, :k, 2:4] = 0.2 + 0.4 * torch.rand(k, 2, generator=g)
        truth[b, :k, 4] = torch.randint(0, 3, (k,), generator=g).float()
    return out.view(n, 24, grid, grid), truth


CASES = [
    ("pj", {}), ("pj", {"truth_thresh": 0.3}),
    ("ab", {}), ("ab", {"iou_thresh": 0.213}), ("ab", {"iou_thresh": 0.3, "iou_thresh_kind": "giou"}),
    ("ab", {"iou_thresh": 0.2, "iou_thresh_kind": "ciou", "iou_loss": "ciou"}),
    ("ab", {"label_smooth_eps": 0.1}), ("ab", {"focal_loss": True}),
    ("ab", {"counters_per_class": (10, 50, 100), "cls_normalizer": 2.0, "max_delta": 3.0}),
    ("ab", {"objectness_smooth": True, "truth_thresh": 0.4}), ("ab", {"truth_thresh": 0.3}),
    ("ab", {"iou_loss": "giou", "iou_normalizer": 0.07, "max_delta": 0.05}),
    ("ab", {"iou_loss": "diou"}), ("ab", {"iou_loss": "iou", "obj_normalizer": 0.4}),
    ("ab", {"new_coords": True, "iou_thresh": 0.213}),
]


@pytest.mark.parametrize("flavor,changes", CASES, ids=[f"{f}-{'-'.join(c) or 'default'}" for f, c in CASES])
def test_matches_sequential_reference(cfgs, flavor, changes):
    opts = dataclasses.replace(cfgs[flavor].layers[16].options, **changes)
    for seed in range(3):
        out, truth = _crowded_case(seed, flavor)
        result = yolo_deltas(opts, out, truth, 128, 128, flavor)
        expected, stats = _reference_deltas(opts, out, truth, 128, flavor)
        assert (result.delta.double() - expected).abs().max() <= 1e-4, seed
        assert result.count == stats["count"]
        assert result.iou_sum == pytest.approx(stats["iou"], rel=1e-5, abs=1e-6)
        if opts.iou_loss == "mse" or flavor == "pj":
            assert result.cost == pytest.approx(float((expected ** 2).sum()), rel=1e-4)


def test_reference_cases_do_crowd_slots(cfgs):
    """The random cases above are only worth something if several truths share slots."""
    opts = cfgs["ab"].layers[16].options
    rewritten = sum(yolo_deltas(opts, *_crowded_case(seed, "ab"), 128, 128, "ab").rewritten_bbox
                    for seed in range(3))
    assert rewritten >= 6
