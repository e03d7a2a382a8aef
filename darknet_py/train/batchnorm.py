"""Which training semantics the network's batch normalisation follows (spec §5.1, §5.3, §15.1): the GPU
builds ("cudnn", the default) or one of Darknet's CPU builds, whose forward and backward live with the layer
in :mod:`darknet_py.layers.batchnorm`."""
from __future__ import annotations

from torch import nn

from ..layers.batchnorm import MODES, BatchNorm


def set_batchnorm_mode(network: nn.Module, mode: str, freeze_beta: bool = False) -> None:
    """Choose the training semantics of every BN in ``network``: "cudnn" (default; AB/PJ GPU builds),
    "ab_cpu" or "pj_cpu". ``freeze_beta=True`` also reproduces stock AlexeyAB CPU, which never computes the
    β gradient of convolutional and [batchnorm] layers (spec §5.3); its [connected] layers do train β."""
    if mode not in MODES:
        raise ValueError(f"unknown batch-norm mode {mode!r}; expected one of {', '.join(MODES)}")
    for layer in network.modules():
        bn = getattr(layer, "bn", None)
        if not isinstance(bn, BatchNorm):
            continue
        bn.train_mode = mode
        bn.momentum = 0.01                     # nn.BatchNorm2d's running update, used by "cudnn" only
        trainable = not (freeze_beta and getattr(layer, "kind", "") in ("convolutional", "batchnorm"))
        bn.bias.requires_grad_(trainable)
