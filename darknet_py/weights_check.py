"""Whether loaded weights can be trusted with a result: inference on a backbone file runs its detection
layers on random values, and NaN/Inf values give no detections or garbage — both without a word, as in
Darknet. Inference commands refuse both; training accepts backbones (that is what they are for) and, when
the very first loss after loading is not finite, names the weights file as the likely cause."""
from __future__ import annotations

from typing import Optional

import torch

from .errors import WeightsError


def non_finite_layer(network) -> Optional[str]:
    """``"layer K [kind]"`` of the first layer holding a NaN or an infinity, or None."""
    for index, layer in enumerate(network.layers):
        if not all(_finite(array) for array in layer.darknet_arrays()):
            return f"layer {index} [{layer.kind}]"
    return None


def _finite(array: torch.Tensor) -> bool:
    """No NaN or infinity in ``array``: its minimum and maximum are finite (NaN propagates into both), one
    pass without the bool copy `isfinite(array).all()` makes (20x faster; it runs at every inference start)."""
    return array.numel() == 0 or bool(torch.isfinite(torch.stack(torch.aminmax(array.detach()))).all())


def check_for_inference(network, report, path: str) -> None:
    """Refuse weights that leave layers before a detection layer uninitialised (``report``: the
    :class:`~darknet_py.weights.LoadReport`, None for a `.pt`) or hold NaN/Inf."""
    if report is not None and report.partial:
        detection = [i for i in network.detection_indices if i >= report.loaded_upto]
        raise WeightsError(
            f"holds {report.layers_loaded} of the cfg's {report.layers_total} layers with parameters: layers "
            f"{report.loaded_upto} on (up to detection layer {detection[-1] if detection else '?'}) would run on "
            "random values", file=path,
            hint="a backbone (*.conv.N) or partial file is for training; detect with trained weights, e.g. "
                 "backup/<cfg>_final.weights")
    bad = non_finite_layer(network)
    if bad is not None:
        raise WeightsError(f"{bad} holds NaN/Inf values", file=path,
                           hint="the file was saved after training diverged or is damaged; use an earlier backup")


def weights_suspicion(weights: str) -> tuple[str, str]:
    """(message tail, hint) for a non-finite loss on the first iteration after loading ``weights``: the
    weights, not the labels or the learning rate, are the first suspect."""
    return (f"; this is the first iteration after loading {weights}: the weights file is the likely cause",
            f"check {weights} with `darknet_py detector test` (it refuses NaN/Inf weights) or start from another "
            "file")


def warn_non_finite(network, path: str, say) -> None:
    """Training still starts (the loss check stops it with the diagnosis), but says it at once."""
    bad = non_finite_layer(network)
    if bad is not None:
        say(f"warning: {path}: {bad} holds NaN/Inf values", flush=True)
