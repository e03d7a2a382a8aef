"""BN training modes against an independent float64 restatement of spec §5.1/§5.3 (written out here from the
spec's formulas, not from darknet_py), plus the mode switch and the AB-CPU β freeze."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py.layers.batchnorm import BatchNorm
from darknet_py.network import Network
from darknet_py.network import parse_cfg
from darknet_py.train.batchnorm import set_batchnorm_mode


def _reference(x, gamma, beta, g, mode):
    """Spec §5: forward y and Darknet's backward (input delta, dγ, dβ), per channel over (N, H, W)."""
    x = x.astype(np.float64)
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).sum(axis=(0, 2, 3), keepdims=True) / (n - 1)     # unbiased
    if mode == "ab_cpu":
        x_hat = (x - mu) / np.sqrt(var + 1e-5)
        direct = 1 / (np.sqrt(var) + 1e-5)
    else:
        x_hat = (x - mu) / (np.sqrt(var) + 1e-6)
        direct = 1 / np.sqrt(var + 1e-5)
    gm, bt = gamma.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1)
    y = gm * x_hat + bt
    d_gamma = (g * x_hat).sum(axis=(0, 2, 3))
    d_beta = g.sum(axis=(0, 2, 3))
    g = g * gm
    mean_delta = g.sum(axis=(0, 2, 3), keepdims=True) * (-1 / np.sqrt(var + 1e-5))
    var_delta = (g * (x - mu)).sum(axis=(0, 2, 3), keepdims=True) * (-0.5) * (var + 1e-5) ** -1.5
    dx = g * direct + var_delta * 2 * (x - mu) / n + mean_delta / n
    return y, dx, d_gamma, d_beta, mu.ravel(), var.ravel()


@pytest.mark.parametrize("mode", ["ab_cpu", "pj_cpu"])
def test_cpu_modes_match_spec_formulas(mode):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 4, 5, 6)) * [[[[0.5]], [[2.0]], [[0.01]], [[1.0]]]] + 0.3).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    gamma = np.array([1.0, 0.5, 2.0, -1.0], dtype=np.float32)
    beta = np.array([0.0, 0.1, -0.2, 0.3], dtype=np.float32)
    bn = BatchNorm(4, "ab" if mode == "ab_cpu" else "pj")
    bn.train_mode = mode
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    xt = torch.from_numpy(x).requires_grad_(True)
    y = bn(xt)
    y.backward(torch.from_numpy(g))
    ref_y, ref_dx, ref_dg, ref_db, mu, var = _reference(x, gamma, beta, g.astype(np.float64), mode)
    np.testing.assert_allclose(y.detach().numpy(), ref_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xt.grad.numpy(), ref_dx, rtol=1e-4, atol=1e-4 * np.abs(ref_dx).max())
    np.testing.assert_allclose(bn.weight.grad.numpy(), ref_dg, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(bn.bias.grad.numpy(), ref_db, rtol=1e-5, atol=1e-4)
    momentum = 0.1 if mode == "ab_cpu" else 0.01     # fresh running stats are 0
    np.testing.assert_allclose(bn.running_mean.numpy(), momentum * mu, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(bn.running_var.numpy(), momentum * var, rtol=1e-5)


def test_ab_cpu_backward_is_not_the_exact_gradient():
    # The direct term 1/(sqrt(v)+1e-5) differs from the forward's 1/sqrt(v+1e-5): for a channel with a tiny
    # variance the Darknet input delta is far from autograd's; a sanity check that the quirk is really used.
    x = torch.tensor([[[[0.0, 1e-3]], [[2e-3, 3e-3]]]]).reshape(2, 1, 1, 2).requires_grad_(True)
    g = torch.tensor([1.0, -2.0, 0.5, 3.0]).reshape(2, 1, 1, 2)
    bn = BatchNorm(1, "ab")
    bn.train_mode = "ab_cpu"
    bn(x).backward(g)
    ours = x.grad.clone()
    x.grad = None
    mu = x.mean()                          # exact gradient of the same (unbiased-variance) forward
    var = ((x - mu) ** 2).sum() / 3
    ((x - mu) / torch.sqrt(var + 1e-5) * g).sum().backward()
    assert not torch.allclose(ours, x.grad, rtol=1e-2)


def test_connected_bn_uses_95_05_on_ab_cpu():
    bn = BatchNorm(3, "ab")
    bn.train_mode = "ab_cpu"
    x = torch.tensor([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]])
    bn(x)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.05 * np.array([2.0, 4.0, 6.0]), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.05 * np.array([2.0, 8.0, 18.0]), rtol=1e-6)


def test_cudnn_mode_is_torch_batchnorm():
    bn = BatchNorm(2, "ab")
    ref = torch.nn.BatchNorm2d(2, eps=1e-5, momentum=0.01)
    torch.nn.init.zeros_(ref.running_var)
    x = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(bn(x), ref(x))
    torch.testing.assert_close(bn.running_var, ref.running_var)


def _network(tmp_path):
    cfg = tmp_path / "n.cfg"
    cfg.write_text("[net]\nbatch=2\nwidth=8\nheight=8\nchannels=3\n"
                   "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
                   "[connected]\nbatch_normalize=1\noutput=5\nactivation=linear\n")
    return Network(parse_cfg(cfg))


def test_set_batchnorm_mode_and_beta_freeze(tmp_path):
    net = _network(tmp_path)
    set_batchnorm_mode(net, "ab_cpu", freeze_beta=True)
    conv, conn = net.layers[0], net.layers[1]
    assert conv.bn.train_mode == conn.bn.train_mode == "ab_cpu"
    assert not conv.bn.bias.requires_grad          # stock AB CPU never trains conv BN β
    assert conn.bn.bias.requires_grad              # ... but its [connected] backward does
    set_batchnorm_mode(net, "cudnn")
    assert conv.bn.train_mode == "cudnn" and conv.bn.bias.requires_grad
    with pytest.raises(ValueError):
        set_batchnorm_mode(net, "gpu")


def test_sequential_mean_rounding_is_darknets():
    # Darknet sums a channel left to right in float: 2^24 + 1 + 1 + ... stays 2^24 in float32.
    from darknet_py.layers.batchnorm import _darknet_mean_variance
    values = np.array([2.0 ** 24] + [1.0] * 7, dtype=np.float32)
    mean, _ = _darknet_mean_variance(torch.from_numpy(values).view(8, 1), 8)
    assert mean.item() == np.float32(2.0 ** 24 / 8)
