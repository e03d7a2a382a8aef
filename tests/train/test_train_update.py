"""DarknetSGD / make_optimizer against Darknet's update rule written out in its own accumulator form
(spec §7.5): ``U += -G; U -= decay·B·W; W += (η/B)·U; U *= momentum`` — independent of the PyTorch form."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py.network import parse_cfg
from darknet_py.network import Network
from darknet_py.train.update import make_optimizer

CFG = """[net]
batch=8
subdivisions=2
width=8
height=8
channels=3
momentum=0.9
decay=0.01
{net_extra}
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky
{first_extra}
[convolutional]
filters=2
size=1
activation=linear
learning_rate=0.5
"""


def _network(tmp_path, flavor="ab", net_extra="", first_extra=""):
    path = tmp_path / "u.cfg"
    path.write_text(CFG.format(net_extra=net_extra, first_extra=first_extra))
    return Network(parse_cfg(path, flavor=flavor))


def _decayed(name):
    return name.endswith("conv.weight")


def _darknet_sgd(weights, sums, rates, scale, decayed, momentum=0.9, decay=0.01, B=8):
    """Darknet's CPU update, literally: accumulator U, negative gradient sums, momentum after the step."""
    w = weights.astype(np.float64).copy()
    u = np.zeros_like(w)
    for g, rate in zip(sums, rates):
        u += -g
        if decayed:
            u -= decay * B * w
        w += rate * scale / B * u
        u *= momentum
    return w


def test_sgd_equals_darknet_accumulator_rule(tmp_path):
    net = _network(tmp_path)
    opt = make_optimizer(net)
    start = {n: p.detach().double().numpy().copy() for n, p in net.named_parameters()}
    rng = np.random.default_rng(0)
    sums = {n: [rng.normal(size=p.shape) for _ in range(3)] for n, p in net.named_parameters()}
    rates = [0.1, 0.05, 0.2]
    for t, rate in enumerate(rates):
        for n, p in net.named_parameters():
            p.grad = torch.from_numpy(sums[n][t] / 8).float()      # the step's surrogate gives G / B
        opt.set_rate(rate, t + 1)
        opt.step()
    for n, p in net.named_parameters():
        scale = 0.5 if n.startswith("layers.1.") else 1.0
        expected = _darknet_sgd(start[n], sums[n], rates, scale, _decayed(n))
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=n)


def test_groups_decay_only_conv_weights_and_carry_layer_rate(tmp_path):
    net = _network(tmp_path)
    opt = make_optimizer(net)
    by_param = {id(p): g for g in opt.param_groups for p in g["params"]}
    for name, p in net.named_parameters():
        group = by_param[id(p)]
        assert group["weight_decay"] == (0.01 if _decayed(name) else 0.0), name
        assert group["lr_scale"] == (0.5 if name.startswith("layers.1.") else 1.0), name
    opt.set_rate(0.1, 1)
    assert sorted({g["lr"] for g in opt.param_groups}) == [0.05, 0.1]


def test_parameter_without_gradient_still_decays(tmp_path):
    # Darknet updates every trained layer; with no delta the accumulator only holds the decay term.
    net = _network(tmp_path)
    opt = make_optimizer(net)
    w0 = net.layers[0].conv.weight.detach().clone()
    b0 = net.layers[0].bn.bias.detach().clone()
    opt.set_rate(0.1, 1)
    opt.step()
    torch.testing.assert_close(net.layers[0].conv.weight.detach(), w0 * (1 - 0.1 * 0.01))
    torch.testing.assert_close(net.layers[0].bn.bias.detach(), b0)


@pytest.mark.parametrize("flavor,updated_first", [("ab", False), ("pj", True)])
def test_stopbackward_layers(tmp_path, flavor, updated_first):
    # AB marks layers before the last stopbackward=1 layer train=0 (never updated); PJ updates (decays) them.
    path = tmp_path / "s.cfg"
    path.write_text(CFG.format(net_extra="", first_extra="") +
                    "stopbackward=1\n[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")
    net = Network(parse_cfg(path, flavor=flavor))
    opt = make_optimizer(net)
    params = {id(p) for g in opt.param_groups for p in g["params"]}
    assert (id(net.layers[0].conv.weight) in params) == updated_first
    assert id(net.layers[1].conv.weight) in params          # the stopbackward layer itself is updated
    assert id(net.layers[2].conv.weight) in params


def test_adam_matches_darknet_gpu_rule(tmp_path):
    net = _network(tmp_path, net_extra="adam=1\nB1=0.8\nB2=0.95\neps=0.001")
    opt = make_optimizer(net)
    p = net.layers[1].conv.bias
    x0 = p.detach().double().numpy().copy()
    rng = np.random.default_rng(1)
    sums = [rng.normal(size=p.shape) for _ in range(3)]
    for t, g in enumerate(sums, start=1):
        for q in net.parameters():
            q.grad = torch.zeros_like(q)
        p.grad = torch.from_numpy(g / 8).float()
        opt.set_rate(0.01, 100 + t)
        opt.step()
    # Darknet: d = U - decay·B·x (all tensors), m/v moments, t = current iteration (AB), η not divided by B
    x, m, v = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
    for t, g in enumerate(sums, start=1):
        d = -g - 0.01 * 8 * x
        m = 0.8 * m + 0.2 * d
        v = 0.95 * v + 0.05 * d * d
        it = 100 + t
        x = x + 0.01 * 0.5 * (m / (1 - 0.8 ** it)) / (np.sqrt(v / (1 - 0.95 ** it)) + 0.001)
    np.testing.assert_allclose(p.detach().numpy(), x, rtol=1e-5, atol=1e-7)


def test_state_dict_round_trip(tmp_path):
    net = _network(tmp_path)
    opt = make_optimizer(net)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    opt.set_rate(0.1, 1)
    opt.step()
    state = opt.state_dict()
    fresh = make_optimizer(net)
    fresh.load_state_dict(state)
    for p in net.parameters():
        torch.testing.assert_close(fresh.state[p]["momentum_buffer"], opt.state[p]["momentum_buffer"])
