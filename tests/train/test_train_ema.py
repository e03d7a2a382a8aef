"""`[net] ema_alpha` as AlexeyAB's `train_network_waitkey` (network.c) does it, step by step: from iteration
max_batches/2 the averages are initialised with the weights (`ema_update(net, 0)`), then every iteration
`ema = alpha·ema + (1-alpha)·w` (`ema_update`) until max_batches-1000, where the averages replace the weights
(`ema_apply`). Only [convolutional] weights, biases and BN scales; `<base>_ema.weights` holds the averages
with the live rolling statistics and is written with every `_last.weights` (detector.c)."""
from __future__ import annotations

import numpy as np
import torch

from darknet_py.network import parse_cfg
from darknet_py.network import Network
from darknet_py.train.ema import make_ema
from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.train_runs import run_train_here, weights_arrays


def _network(tmp_path, max_batches):
    cfg = tmp_path / "ema.cfg"
    cfg.write_text(tiny_cfg(max_batches=max_batches).replace("[net]\n", "[net]\nema_alpha=0.9\n"))
    model = parse_cfg(cfg)
    torch.manual_seed(0)
    return model, Network(model)


def _conv_tensors(network):
    """(weight, bias or BN beta, BN scale or None) of every [convolutional], as numpy copies."""
    out = []
    for layer in network.layers:
        if layer.kind == "convolutional":
            scale = None if layer.bn is None else layer.bn.weight.detach().numpy().copy()
            out.append([layer.conv.weight.detach().numpy().copy(), layer.biases.detach().numpy().copy(), scale])
    return out


def test_ema_follows_alexeyab_iteration_by_iteration(tmp_path):
    model, network = _network(tmp_path, max_batches=2010)     # start 1005, apply at 1010
    assert model.net.ema_alpha == 0.9
    ema = make_ema(network, model.net.ema_alpha, model.net.max_batches)
    alpha, reference = 0.9, None
    rng = np.random.default_rng(1)
    for iteration in range(1000, 1013):
        with torch.no_grad():                                   # "the update": new weights every iteration
            for p in network.parameters():
                p.add_(torch.from_numpy(rng.normal(0, 0.1, tuple(p.shape)).astype(np.float32)))
        weights = _conv_tensors(network)
        said = ema.after_update(iteration)
        # AlexeyAB's branches, written out on plain arrays
        if iteration >= 1005:
            if reference is None:
                reference = [[None if a is None else a.copy() for a in t] for t in weights]
                assert " EMA initialization " in said
            if iteration == 1010:
                assert said[-1] == " ema_apply() "
                applied = _conv_tensors(network)
                for ref, now in zip(reference, applied):
                    for r, n in zip(ref, now):
                        assert (r is None) == (n is None)
                        if r is not None:
                            np.testing.assert_allclose(n, r, rtol=1e-6, atol=1e-7)
            elif iteration < 1010:
                reference = [[None if r is None else alpha * r + (1 - alpha) * w for r, w in zip(ref, now)]
                             for ref, now in zip(reference, weights)]
                assert said[-1] == " ema_update(), ema_alpha = 0.900000 "
            else:
                assert said == []
        else:
            assert said == [] and not ema.initialized
    # after the apply point the averages stay as they were at the apply
    flat = [a.numpy() for a in ema.averages]
    ref_flat = [a for t in reference for a in t if a is not None]
    for got, want in zip(flat, ref_flat):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_ema_weights_file_written_with_last(tmp_path):
    """max_batches=8: start 4, apply point -992 (never): the averages are the weights of iteration 4, and
    `_ema.weights` = those with the rolling statistics of the moment it is written."""
    make_dataset(tmp_path / "set", count=6, valid=2)
    data = write_tiny_data(tmp_path, tmp_path / "set", saveweights=4, savelast=2)
    (tmp_path / "ema.cfg").write_text(tiny_cfg(max_batches=8, batch=4, subdivisions=1)
                                      .replace("[net]\n", "[net]\nema_alpha=0.9998\n"))
    done = run_train_here(tmp_path, data, "ema.cfg")
    assert done.returncode == 0, done.stderr
    assert " EMA initialization " in done.stdout and "ema_apply()" not in done.stdout
    backup = tmp_path / "backup"
    assert done.stdout.count("EMA weights are saved to the file") == 3            # _last at 4, 6, 8
    _, ema = weights_arrays(backup / "ema_ema.weights")
    _, at4 = weights_arrays(backup / "ema_4.weights")
    _, last = weights_arrays(backup / "ema_last.weights")
    rolling = _rolling_mask(tmp_path / "ema.cfg")
    assert ema.shape == at4.shape == rolling.shape
    np.testing.assert_array_equal(ema[~rolling], at4[~rolling])
    np.testing.assert_array_equal(ema[rolling], last[rolling])
    assert not np.array_equal(at4[~rolling], last[~rolling])                     # training went on after 4


def _rolling_mask(cfg) -> np.ndarray:
    """True where the .weights payload holds a BN rolling mean/variance (file order of each conv layer:
    biases, scales, rolling mean, rolling variance, weights)."""
    mask = []
    for layer in Network(parse_cfg(cfg)).layers:
        if layer.kind != "convolutional":
            continue
        n = layer.conv.out_channels
        if layer.bn is not None:
            mask += [False] * 2 * n + [True] * 2 * n
        else:
            mask += [False] * n
        mask += [False] * layer.conv.weight.numel()
    return np.array(mask)


def test_ema_state_round_trip(tmp_path):
    """The averages travel in the full-state side file, so a resumed run continues them."""
    model, network = _network(tmp_path, max_batches=2010)
    ema = make_ema(network, 0.9, 2010)
    ema.after_update(1005)
    saved = ema.state_dict()
    fresh = make_ema(network, 0.9, 2010)
    assert not fresh.initialized
    fresh.load_state_dict(saved)
    assert fresh.initialized
    for a, b in zip(ema.averages, fresh.averages):
        assert torch.equal(a, b)
