"""Darknet's `update_network` (spec §7.5) as a ``torch.optim.Optimizer``.

Darknet accumulates the *negative* gradient summed over the B images of an iteration in `*_updates`, then
per layer: ``U -= decay·B·W`` (weights only), ``W += (η/B)·U``, ``U *= momentum``. With ``buf = -U/B`` and
``p.grad = G/B`` (the step divides its surrogate loss by B) this is exactly
``buf = momentum·buf + p.grad + decay·W;  W -= η·buf`` — PyTorch's SGD with dampening 0, no Nesterov, decay
only on conv/connected/shortcut weights, never on biases or BN γ/β. η = rate(iteration) × the layer's
`learning_rate=` multiplier.

Darknet updates every layer it trains whether or not a gradient reached it (a layer behind `stopbackward`
still decays), so a parameter without ``.grad`` is updated with a zero gradient.

``[net] adam=1`` switches to Darknet's GPU Adam, which works on the un-normalised sums: ``d = -B·(grad +
decay·W)`` for every tensor (biases and scales decay too), ``m = β1·m + (1-β1)·d``, ``v = β2·v + (1-β2)·d²``,
``W += η·m̂/(sqrt(v̂)+eps)`` (η not divided by B), ``d`` reset (no momentum carry); ``t`` is the iteration (AB)
or the number of updates done so far (PJ). CPU builds of Darknet ignore `adam` — we do not."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..flavor import AB, Flavor, flavor_of

# Parameter names (relative to their layer) that Darknet decays: conv/connected weights, AB shortcut weights.
DECAYED_PARAMETERS = frozenset({"conv.weight", "linear.weight", "weights"})


class DarknetSGD(torch.optim.Optimizer):
    """Param groups carry ``lr_scale`` (the layer's `learning_rate=` multiplier) and ``weight_decay``
    (``decay`` or 0). Call :meth:`set_rate` with ``get_current_rate(...)`` before each :meth:`step`."""

    def __init__(self, groups: Iterable[dict], momentum: float, decay: float, images_per_update: int,
                 adam: bool = False, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 flavor: Flavor | str = AB):
        defaults = dict(lr=0.0, lr_scale=1.0, weight_decay=0.0, momentum=momentum)
        super().__init__(list(groups), defaults)
        self.decay = decay
        self.images_per_update = images_per_update
        self.adam = adam
        self.betas = betas
        self.eps = eps
        self.flavor = flavor_of(flavor)
        self.adam_t = 0

    def set_rate(self, rate: float, iteration: int) -> None:
        """The rate of this update (already burn-in/policy adjusted) and the 1-based iteration it ends."""
        for group in self.param_groups:
            group["lr"] = rate * group["lr_scale"]
        # AB counts Adam's t from the iteration (so it survives a resume), PJ per update of this process
        self.adam_t = iteration if self.flavor.alexeyab else self.adam_t + 1

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if self.adam:
                self._adam_group(group)
            else:
                self._sgd_group(group)
        return loss

    def _sgd_group(self, group: dict) -> None:
        lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        for p in group["params"]:
            d_p = p.grad if p.grad is not None else torch.zeros_like(p)
            if decay:
                d_p = d_p.add(p, alpha=decay)
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d_p.clone()
            else:
                buf.mul_(momentum).add_(d_p)
            p.add_(buf, alpha=-lr)

    def _adam_group(self, group: dict) -> None:
        b1, b2 = self.betas
        t = max(self.adam_t, 1)
        B = self.images_per_update
        # Darknet decays every tensor under Adam; `weight_decay` only marks the SGD-decayed ones
        for p in group["params"]:
            grad = p.grad if p.grad is not None else torch.zeros_like(p)
            d = (grad + self.decay * p) * -B
            state = self.state[p]
            if "m" not in state:
                state["m"] = torch.zeros_like(p)
                state["v"] = torch.zeros_like(p)
            m, v = state["m"], state["v"]
            m.mul_(b1).add_(d, alpha=1 - b1)
            v.mul_(b2).addcmul_(d, d, value=1 - b2)
            m_hat = m / (1 - b1 ** t)
            v_hat = v / (1 - b2 ** t)
            p.add_(group["lr"] * m_hat / (v_hat.sqrt() + self.eps))

    def state_dict(self):
        state = super().state_dict()
        state["adam_t"] = self.adam_t
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        self.adam_t = int(state_dict.pop("adam_t", 0))
        super().load_state_dict(state_dict)


def trained_layers(network) -> list[int]:
    """Indices of the layers Darknet updates. AB marks every layer before the last `stopbackward=1` layer
    `train=0` and never updates it; PJ updates all layers (those behind `stopbackward` only decay)."""
    indices = range(len(network.layers))
    if network.net_options.flavor.pjreddie:
        return list(indices)
    frozen = [i for i, layer in enumerate(network.layers) if layer.common.stopbackward == 1]
    first = frozen[-1] if frozen else 0
    return [i for i in indices if i >= first]


def parameter_groups(network) -> list[dict]:
    """Group the parameters of the updated layers by (learning-rate multiplier, decayed or not)."""
    decay = network.net_options.decay
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for index in trained_layers(network):
        layer = network.layers[index]
        scale = layer.common.learning_rate_scale
        for name, p in layer.named_parameters():
            decayed = name in DECAYED_PARAMETERS
            groups.setdefault((scale, decayed), []).append(p)
    return [dict(params=params, lr_scale=scale, weight_decay=decay if decayed else 0.0)
            for (scale, decayed), params in groups.items()]


def make_optimizer(network) -> DarknetSGD:
    """The optimizer Darknet's `[net]` describes (momentum, decay, adam/B1/B2/eps) for ``network``."""
    net = network.net_options
    return DarknetSGD(parameter_groups(network), momentum=net.momentum, decay=net.decay,
                      images_per_update=net.images_per_update, adam=net.adam, betas=(net.b1, net.b2),
                      eps=net.eps, flavor=net.flavor)
