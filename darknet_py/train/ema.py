"""AlexeyAB's `[net] ema_alpha`: an exponential moving average of the convolutional weights (network.c).

After every update from iteration max_batches/2 on (`train_network_waitkey`), AB:

* initialises the averages with the weights (`ema_update(net, 0)`) while none is non-zero yet
  (`is_ema_initialized`),
* at iteration max_batches - 1000 copies the averages into the weights (`ema_apply`),
* before that iteration: average = alpha · average + (1 - alpha) · weight (`ema_update`).

Only `[convolutional]` layers take part: their weights, biases (BN β when batch-normalised) and BN scales;
rolling mean/variance are not averaged. `<base>_ema.weights` (the averages with the live rolling statistics)
is written next to every `_last.weights` once the averages exist (detector.c)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Optional

import torch

from ..layers.convolutional import ConvolutionalLayer


class ConvolutionEma:
    """The averages (AB's weights_ema, biases_ema, scales_ema) of one network."""

    def __init__(self, network, alpha: float, max_batches: int):
        self.alpha = alpha
        self.start = max_batches // 2
        self.apply_point = max_batches - 1000
        layers = [layer for layer in network.layers if isinstance(layer, ConvolutionalLayer)]
        self.params = [t for layer in layers for t in _averaged(layer)]
        self.averages = [torch.zeros_like(p) for p in self.params]
        self._weight_averages = [a for p, a in zip(self.params, self.averages)
                                 if any(p is layer.conv.weight for layer in layers)]

    @property
    def initialized(self) -> bool:
        """AB's `is_ema_initialized`: some average of a convolution weight is non-zero."""
        return any(bool(torch.count_nonzero(a)) for a in self._weight_averages)

    @torch.no_grad()
    def after_update(self, iteration: int) -> list[str]:
        """AB's step after the update that made the iteration count ``iteration``; returns its messages."""
        if iteration < self.start:
            return []
        said = []
        if not self.initialized:
            self._update(0.0)
            said.append(" EMA initialization ")
        if iteration == self.apply_point:
            for param, average in zip(self.params, self.averages):
                param.copy_(average)
            said.append(" ema_apply() ")
        elif iteration < self.apply_point:
            self._update(self.alpha)
            said.append(f" ema_update(), ema_alpha = {self.alpha:f} ")
        return said

    def _update(self, alpha: float) -> None:
        for param, average in zip(self.params, self.averages):
            average.mul_(alpha).add_(param.detach(), alpha=1.0 - alpha)

    @contextmanager
    def swapped_in(self):
        """The network holds the averages inside the block (to save `_ema.weights`), its weights after."""
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for param, average in zip(self.params, self.averages):
                param.copy_(average)
            try:
                yield
            finally:
                for param, value in zip(self.params, live):
                    param.copy_(value)

    def state_dict(self) -> list[torch.Tensor]:
        return [a.detach().cpu().clone() for a in self.averages]

    def load_state_dict(self, saved: Optional[list]) -> None:
        if saved is None:
            return
        for average, value in zip(self.averages, saved):
            average.copy_(value)


def _averaged(layer: ConvolutionalLayer) -> list[torch.Tensor]:
    tensors = [layer.conv.weight, layer.biases]
    if layer.bn is not None:
        tensors.append(layer.bn.weight)
    return tensors


def make_ema(network, alpha: float, max_batches: int) -> Optional[ConvolutionEma]:
    """The EMA of a cfg with `ema_alpha` (AB reads it as a float; 0 means off)."""
    return ConvolutionEma(network, alpha, max_batches) if alpha else None
