"""`[net] weights_reject_freq` as AlexeyAB's `reject_similar_weights` (network.c) does it, followed step by step
with plain loops: skip layer 0 and the 3 layers before a [yolo], only non-linear convolutions, the first most
similar pair by cosine (k < j, strict >), redraw filter k when the cosine is above 0.4."""
from __future__ import annotations

import math

import numpy as np
import torch

from darknet_py.network import parse_cfg
from darknet_py.network import Network
from darknet_py.train.reject_weights import candidate_layers, reject_similar_weights, rejection_due
from helpers.datasets import tiny_cfg


def _cosine(a, b) -> float:
    mul = sum(x * y for x, y in zip(a, b))
    d_a, d_b = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return mul / (d_a * d_b) if d_a * d_b > 0 else 0.0


def _ab_pair(weight: np.ndarray):
    rows = weight.reshape(weight.shape[0], -1).tolist()
    best, pair = -1000.0, (0, 0)
    for k in range(len(rows)):
        for j in range(k + 1, len(rows)):
            sim = _cosine(rows[k], rows[j])
            if sim > best:
                best, pair = sim, (k, j)
    return pair, best


def test_due_before_three_quarters_every_freq():
    assert [i for i in range(1, 40) if rejection_due(i, 10, 40)] == [10, 20]
    assert not any(rejection_due(i, 0, 40) for i in range(1, 40))


def test_reject_similar_weights_step_by_step(tmp_path):
    cfg = tmp_path / "r.cfg"
    cfg.write_text(tiny_cfg())      # conv0 pool conv2 pool conv4 pool conv6 conv7(linear) yolo8
    torch.manual_seed(0)
    network = Network(parse_cfg(cfg))
    # layers 5..7 precede the [yolo]: skipped; 0 skipped; pools are not convolutions
    assert candidate_layers(network) == [2, 4]
    layer = network.layers[4]
    with torch.no_grad():
        layer.conv.weight[7] = layer.conv.weight[3] * 2.0          # cosine 1 between filters 3 and 7
        layer.bn.weight[3] = 5.0
        layer.bn.bias[3] = 7.0
    before = {i: network.layers[i].conv.weight.detach().numpy().copy() for i in (2, 4)}
    expected = {i: _ab_pair(w) for i, w in before.items()}
    assert expected[4][0] == (3, 7)
    said = reject_similar_weights(network, torch.Generator().manual_seed(5))
    for i in (2, 4):
        (k, j), sim = expected[i]
        line = f" reject_similar_weights: i = {i}, l.n = {before[i].shape[0]}, w1 = {k}, w2 = {j}, "
        assert any(s.startswith(line) and abs(float(s.split("sim = ")[1].split(",")[0]) - sim) < 1e-5
                   for s in said)
        after = network.layers[i].conv.weight.detach().numpy()
        changed = [f for f in range(after.shape[0]) if not np.array_equal(after[f], before[i][f])]
        assert changed == ([k] if sim > 0.4 else [])
        if sim > 0.4:
            bound = math.sqrt(2.0 / before[i][k].size)
            assert np.abs(after[k]).max() <= bound and np.abs(after[k]).max() > bound / 2
    assert float(layer.bn.weight[3].detach()) == 1.0 and float(layer.bn.bias[3].detach()) == 0.0
    assert said.count(" rejecting... ") == sum(1 for i in (2, 4) if expected[i][1] > 0.4)
