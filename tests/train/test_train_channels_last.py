"""`detector train --channels-last` (Network.channels_last_): weights and activations in NHWC order on every
device, the layout GPU tensor cores want. It must be the same computation in another memory order:

* every cfg in cfg/ and AlexeyAB's yolov4-csp, shrunk to 64x64, train one step in float64 to the NCHW
  network's loss and gradients within 1e-9 (in float32 the deep cfgs differ by up to 3e-2 from NCHW, and NCHW
  by up to 4e-2 from float64 for yolov4: at 64x64 their batch norms see a few values each, and rounding
  grows through the backward; float64 shows that nothing but rounding differs);
* `.weights` written from it are in Darknet's order, and `.weights` read into it land in the right places;
* the command line's flag reaches the network, and a float32 run of a tiny cfg logs the NCHW run's losses."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from darknet_py.network import Network, load_network, load_parameters, parse_cfg
from darknet_py.train.step import train_network_step
from darknet_py.train.update import make_optimizer
from darknet_py.weights import save_weights
from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.paths import FIXTURES, ROOT
from helpers.train_runs import log_records, run_train_here
from test_train_shipped_cfgs import _shrunk

CFGS = sorted((ROOT / "cfg").glob("*.cfg")) + [FIXTURES / "yolov4-csp.cfg"]


def _truth(batch: int, classes: int) -> torch.Tensor:
    rng = np.random.default_rng(3)
    truth = np.zeros((batch, 90, 5), dtype=np.float32)
    truth[:, :3, :2] = rng.uniform(0.2, 0.8, (batch, 3, 2))
    truth[:, :3, 2:4] = rng.uniform(0.1, 0.5, (batch, 3, 2))
    truth[:, :3, 4] = rng.integers(0, classes, (batch, 3))
    return torch.from_numpy(truth)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item() if b.norm() > 0 else a.norm().item()


@pytest.mark.parametrize("cfg", CFGS, ids=[c.stem for c in CFGS])
def test_channels_last_is_the_same_computation(tmp_path, cfg):
    shrunk = tmp_path / cfg.name
    shrunk.write_text(_shrunk(cfg.read_text()))
    torch.manual_seed(0)
    nchw = Network(parse_cfg(shrunk)).double()
    nhwc = copy.deepcopy(nchw).channels_last_()
    net = nchw.net_options
    batch = net.mini_batch * net.subdivisions
    images = torch.rand(batch, net.channels, net.height, net.width, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1))
    truth = _truth(batch, nchw.layers[nchw.detection_indices[-1]].options.classes)
    losses = [train_network_step(n, make_optimizer(n), images, truth).loss for n in (nchw, nhwc)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-12)
    weights = [p for p in nhwc.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    for (name, a), b in zip(nchw.named_parameters(), nhwc.parameters()):
        assert _rel(b.detach(), a.detach()) <= 1e-9, name
        if a.grad is not None:
            assert _rel(b.grad, a.grad) <= 1e-9, name


def test_weights_files_keep_darknet_order(tmp_path):
    cfg = tmp_path / "yolov4-tiny.cfg"
    cfg.write_text(_shrunk((ROOT / "cfg" / "yolov4-tiny.cfg").read_text()))
    torch.manual_seed(0)
    nhwc = Network(parse_cfg(cfg)).channels_last_()
    save_weights(nhwc, tmp_path / "nhwc.weights")
    nchw = load_network(cfg, tmp_path / "nhwc.weights")
    for (name, a), b in zip(nchw.named_parameters(), nhwc.parameters()):
        assert torch.equal(a, b), name
    torch.manual_seed(1)
    other = Network(parse_cfg(cfg)).channels_last_()
    load_parameters(other, tmp_path / "nhwc.weights")          # read into NHWC tensors
    for (name, a), b in zip(nchw.named_parameters(), other.parameters()):
        assert torch.equal(a, b), name


def test_the_flag_trains_as_nchw(tmp_path, monkeypatch):
    calls = []
    original = Network.channels_last_
    monkeypatch.setattr(Network, "channels_last_", lambda self: calls.append(self) or original(self))
    make_dataset(tmp_path / "set")
    data = write_tiny_data(tmp_path, tmp_path / "set")
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=3))
    losses = {}
    for flag in ((), ("--channels-last",)):
        for old in (tmp_path / "backup").glob("*"):
            old.unlink()
        done = run_train_here(tmp_path, data, "tiny.cfg", "--seed", "4", *flag)
        assert done.returncode == 0, done.stderr[-3000:]
        losses[flag] = [r["loss"] for r in log_records(tmp_path / "backup" / "tiny_train.jsonl", "iteration")]
    assert len(losses[()]) == 3 and len(calls) == 1       # the flag reached the training network, once
    assert np.allclose(losses[("--channels-last",)], losses[()], rtol=1e-4)
