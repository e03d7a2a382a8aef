"""The full-state side file that makes a resumed run equal an uninterrupted one.

Darknet resumes from a `.weights` file alone: momentum buffers restart at zero, the random generators are
reseeded, the multiscale schedule restarts. darknet_py writes, next to every rolling checkpoint
(`<base>_last.weights`, PJ `<base>.backup`), a `<stem>.state.pt` holding everything else a training run
carries between iterations: momentum buffers, every random generator (python, numpy, torch, CUDA), the
multiscale and loader state, the backup/mAP counters, avg_loss and best mAP. It records the sha256 of the
weights file written with it, so a state whose weights were replaced (or only half-saved when the process
was killed) is never applied to other weights.

The file holds plain tensors, numbers, strings, lists and dicts only: it loads with
``torch.load(weights_only=True)``, never unpickling objects.
"""
from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import TrainingError
from ..weights import save_with_torch

FORMAT = "darknet_py/train-state/1"
_NDARRAY = "__ndarray__"


def state_path(weights_path: str | Path) -> Path:
    """`backup/yolo_last.weights` -> `backup/yolo_last.state.pt` (PJ `backup/yolo.backup` -> `yolo.state.pt`)."""
    weights_path = Path(weights_path)
    return weights_path.with_name(weights_path.stem + ".state.pt")


def to_plain(value: Any) -> Any:
    """Numpy arrays/scalars and tuples -> tensors, Python numbers and lists, so `weights_only` loads them."""
    if isinstance(value, np.ndarray):
        return {_NDARRAY: torch.from_numpy(value.copy()), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def from_plain(value: Any) -> Any:
    """Inverse of :func:`to_plain` (tuples come back as lists)."""
    if isinstance(value, dict):
        if _NDARRAY in value:
            return value[_NDARRAY].numpy().astype(value["dtype"], copy=True)
        return {k: from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    return value


def capture_rng() -> dict:
    """Every global random generator a training iteration may draw from."""
    version, internal, gauss = random.getstate()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": to_plain(np.random.get_state(legacy=False)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(from_plain(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(path: str | Path, state: dict, weights_sha256: str) -> None:
    """Write ``state`` (plain data; see :func:`to_plain`) atomically, bound to the weights' digest."""
    payload = {"format": FORMAT, "weights_sha256": weights_sha256, **state}
    save_with_torch(payload, path, TrainingError)


def load_training_state(path: str | Path, weights_sha256: str) -> Optional[dict]:
    """The state saved with the weights whose digest is ``weights_sha256``, or None (with a warning when a
    state file exists but cannot be used: the run then resumes like Darknet, from the weights alone)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for torn or foreign files
        warnings.warn(f"{path}: unreadable training state ({type(exc).__name__}); resuming from the weights "
                      "alone, as Darknet does")
        return None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        warnings.warn(f"{path}: not a darknet_py training state; resuming from the weights alone")
        return None
    if payload.get("weights_sha256") != weights_sha256:
        warnings.warn(f"{path}: saved with other weights than the ones loaded (the process was probably "
                      "stopped between the two writes); resuming from the weights alone, as Darknet does")
        return None
    return payload
