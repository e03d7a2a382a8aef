"""AlexeyAB's `[net] weights_reject_freq`: every that many iterations, before 3/4 of max_batches, the most
similar pair of filters of each convolution is found and, when too similar, one of them is drawn anew
(`reject_similar_weights` in network.c, called from `train_network_waitkey` after the update).

Which layers: every [convolutional] with a non-linear activation except layer 0 and the three layers before
each [yolo]. Similarity: the cosine of two filters' weights (0 when one is all zeros); the first pair with the
largest value wins (k < j, strict >). Above 0.4 filter k gets Darknet's uniform initialisation
`sqrt(2 / (size² · c / groups)) · U(-1, 1)`, bias (BN β) 0 and BN scale 1. AlexeyAB draws from C `rand()`;
darknet_py from a generator seeded by (seed, iteration), so a resumed run redraws the same values."""
from __future__ import annotations

import torch

from ..layers.convolutional import ConvolutionalLayer

SIMILARITY_THRESHOLD = 0.4


def rejection_due(iteration: int, freq: int, max_batches: int) -> bool:
    return bool(freq) and iteration < max_batches * 3 // 4 and iteration % freq == 0


def candidate_layers(network) -> list[int]:
    """Indices of the convolutions AB checks."""
    layers, kinds = network.layers, [layer.kind for layer in network.layers]
    out = []
    for i, layer in enumerate(layers):
        if i == 0 or "yolo" in kinds[i + 1:i + 4]:
            continue
        if isinstance(layer, ConvolutionalLayer) and layer.options.activation != "linear":
            out.append(i)
    return out


def most_similar_filters(weight: torch.Tensor) -> tuple[int, int, float]:
    """(k, j, cosine) of the first most similar pair of filters (rows of ``weight`` flattened)."""
    rows = weight.detach().reshape(weight.shape[0], -1).double()
    norms = rows.norm(dim=1)
    dots = rows @ rows.T
    divider = norms[:, None] * norms[None, :]
    cosine = torch.where(divider > 0, dots / divider.clamp_min(1e-300), torch.zeros_like(dots))
    n = rows.shape[0]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    cosine = torch.where(upper, cosine, torch.full_like(cosine, -1000.0))
    flat = int(torch.argmax(cosine))        # the first maximum in row-major (k, j) order, as AB's loops
    return flat // n, flat % n, float(cosine.reshape(-1)[flat])


@torch.no_grad()
def reject_similar_weights(network, generator: torch.Generator) -> list[str]:
    """AB's `reject_similar_weights(net, 0.4)`; returns its console lines."""
    said = []
    for i in candidate_layers(network):
        layer = network.layers[i]
        weight = layer.conv.weight
        if weight.shape[0] < 2:
            continue
        k, j, similarity = most_similar_filters(weight)
        said.append(f" reject_similar_weights: i = {i}, l.n = {weight.shape[0]}, w1 = {k}, w2 = {j}, "
                    f"sim = {similarity:f}, thresh = {SIMILARITY_THRESHOLD:f} ")
        if similarity > SIMILARITY_THRESHOLD:
            said.append(" rejecting... ")
            scale = (2.0 / weight[k].numel()) ** 0.5
            fresh = torch.rand(weight[k].shape, generator=generator, dtype=torch.float32) * 2 - 1
            weight[k] = (scale * fresh).to(weight.device, weight.dtype)
            if layer.biases is not None:
                layer.biases[k] = 0.0
            if layer.bn is not None:
                layer.bn.weight[k] = 1.0
    return said
