"""Networks with random weights for the inference-network tests: batch-norm statistics far from the identity,
so that a wrong fold (eps inside/outside the square root, the mean's sign, a missed scale) shows."""
from __future__ import annotations

import dataclasses

import torch

from darknet_py.network import Network, parse_cfg
from helpers.paths import ROOT

SIZE = 128          # folding is per channel, so a small input checks every layer at a fraction of the cost


def random_network(cfg_name: str, flavor: str) -> Network:
    cfg = parse_cfg(ROOT / "cfg" / cfg_name, flavor=flavor, batch=1)
    cfg = dataclasses.replace(cfg, net=dataclasses.replace(cfg.net, width=SIZE, height=SIZE))
    torch.manual_seed(0)
    network = Network(cfg).eval()
    with torch.no_grad():
        for layer in network.layers:
            bn = getattr(layer, "bn", None)
            if bn is not None:
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.05, 2.0)
    return network


def relative_difference(reference: torch.Tensor, other: torch.Tensor) -> float:
    return float((reference - other).abs().max() / reference.abs().max().clamp_min(1e-30))
