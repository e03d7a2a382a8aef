"""The full-state side file that makes a resumed run equal an uninterrupted one, and the one convention
every resumable piece of a training run follows.

Darknet resumes from a `.weights` file alone: momentum buffers restart at zero, the random generators are
reseeded, the multiscale schedule restarts. darknet_py writes, next to every rolling checkpoint
(`<base>_last.weights`, PJ `<base>.backup`), a `<stem>.state.pt` holding everything else a training run
carries between iterations, as nanoGPT's checkpoint does: one plain dict, one entry per resumable part,
each written by the part's ``state_dict()`` and read back by its ``load_state_dict()``:

* ``loop``: :class:`RunState` (iteration, `seen`, network size, avg_loss, the backup and `-map` counters, best
  mAP, the chart's history);
* ``optimizer``: momentum buffers (and Adam's moments and step);
* ``multiscale``: the resize count and the multiscale generator;
* ``rate_rng``: the glibc generator of ``policy=random``;
* ``rng``: every process-wide generator (python, numpy, torch, CUDA);
* ``ema``: AB's `ema_alpha` averages.

The data loader has no entry: each slot of each iteration is drawn from (seed, iteration, slot) alone, so a
loader started at the saved iteration continues the saved run's batches. The file records the sha256 of the
weights file written with it, so a state whose weights were replaced (or only half-saved when the process
was killed) is never applied to other weights.

The file also records the run it belongs to (:func:`run_record`: fork, batch, network size, classes,
subdivisions, max_batches). Resuming with a cfg whose fork, batch, size or classes changed ignores the side
file with one warning saying what changed, and continues as Darknet does, from the weights' `seen`;
a changed `subdivisions` or `max_batches` keeps the state (nothing in it depends on them). A side file from
another run, torn, or from an older darknet_py is ignored with a warning; one that does not fit the run it
claims to be is refused with one error.

The file holds plain tensors, numbers, strings, lists and dicts only: it loads with
``torch.load(weights_only=True)``, never unpickling objects.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np
import torch

from ..atomic_write import save_with_torch
from ..errors import DarknetError, TrainingError, warn
from .chart import TrainingChart
from .checkpoints import BackupCounters

FORMAT = "darknet_py/train-state/2"
OLDER_FORMATS = ("darknet_py/train-state/1",)           # no run record: cannot tell whether the cfg changed
STATE_BOUND = ("flavor", "batch", "width", "height", "classes")   # a change makes the saved state meaningless
_NDARRAY = "__ndarray__"


class Resumable(Protocol):
    """What every part of the side file is: PyTorch's `state_dict` convention."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> None: ...


@dataclass
class RunState:
    """What one iteration hands to the next besides the weights and the other parts; the side file's ``loop``.

    `seen` has one owner, the network (its `.weights` header value): ``seen`` here reads and writes it."""
    network: Any                           # the Network being trained
    iteration: int
    width: int
    height: int
    avg_loss: float = -1.0
    avg_time: float = -1.0                 # AB's smoothed hours-left estimate
    mean_average_precision: float = -1.0
    best_map: float = -1.0
    last_map_iteration: int = 0            # AB iter_map: the iteration of the last -map pass
    counters: BackupCounters = field(default_factory=lambda: BackupCounters(0, 0))
    chart: Optional[TrainingChart] = None
    started_at: int = 0                    # the iteration this process started from (not saved)

    @property
    def seen(self) -> int:
        return self.network.seen

    @seen.setter
    def seen(self, value: int) -> None:
        self.network.seen = value

    def state_dict(self) -> dict:
        # the key names are the side file's since its first version
        return {"iteration": self.iteration, "seen": self.seen, "width": self.width, "height": self.height,
                "avg_loss": self.avg_loss, "avg_time": self.avg_time,
                "mean_average_precision": self.mean_average_precision, "best_map": self.best_map,
                "last_map": self.last_map_iteration,
                "counters": [self.counters.last_save, self.counters.last_last], "chart": self.chart.to_plain()}

    def load_state_dict(self, state: dict) -> None:
        self.iteration, self.seen = state["iteration"], state["seen"]
        self.width, self.height = state["width"], state["height"]
        self.avg_loss, self.avg_time = state["avg_loss"], state["avg_time"]
        self.mean_average_precision, self.best_map = state["mean_average_precision"], state["best_map"]
        self.last_map_iteration = state["last_map"]
        self.counters = BackupCounters(*state["counters"])
        self.chart = TrainingChart.from_plain(state["chart"])


class GlobalRandom:
    """The process-wide generators (python, numpy, torch, CUDA) as one resumable part."""

    def state_dict(self) -> dict:
        return capture_rng()

    def load_state_dict(self, state: dict) -> None:
        restore_rng(state)


def training_state_dict(parts: dict[str, Optional[Resumable]]) -> dict:
    """The side file's content: each part's plain ``state_dict()`` under its name (None: this run has no
    such part, e.g. no multiscale)."""
    return {name: None if part is None else to_plain(part.state_dict()) for name, part in parts.items()}


def load_training_state_dict(parts: dict[str, Optional[Resumable]], state: dict) -> None:
    """Hand each part its entry of a loaded side file (parts the run or the file lacks are left as they are)."""
    for name, part in parts.items():
        if part is not None and state.get(name) is not None:
            part.load_state_dict(from_plain(state[name]))


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


def run_record(cfg, flavor) -> dict:
    """What the saved state of a run depends on, from the cfg it trains (as trained: --max-batches applied)."""
    net = cfg.net
    return {"flavor": flavor.name, "batch": net.images_per_update, "width": net.width, "height": net.height,
            "classes": [spec.options.classes for spec in cfg.layers if spec.kind in ("yolo", "region")],
            "subdivisions": net.subdivisions, "max_batches": net.max_batches}


def record_changes(saved: dict, now: dict) -> list[str]:
    """``key saved -> now`` for every entry of the run record that differs."""
    return [f"{key} {saved.get(key)} -> {value}" for key, value in now.items() if saved.get(key) != value]


def save_training_state(path: str | Path, state: dict, weights_sha256: str, record: dict) -> None:
    """Write ``state`` (plain data; see :func:`to_plain`) atomically, bound to the weights' digest and to the
    run's :func:`run_record`."""
    payload = {"format": FORMAT, "weights_sha256": weights_sha256, "run": record, **state}
    save_with_torch(payload, path, TrainingError)


def load_training_state(path: str | Path, weights_sha256: str, record: dict, say=print) -> Optional[dict]:
    """The state saved with the weights whose digest is ``weights_sha256`` by a run that ``record`` (this
    run's :func:`run_record`) can continue, or None (with a warning when a state file exists but cannot be
    used: the run then resumes like Darknet, from the weights alone)."""
    path = Path(path)
    if not path.is_file():
        return None
    alone = "resuming from the weights alone, as Darknet does"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for torn or foreign files
        warn(f"unreadable training state ({type(exc).__name__}); {alone}", file=str(path))
        return None
    if isinstance(payload, dict) and payload.get("format") in OLDER_FORMATS:
        warn(f"written by an older darknet_py ({payload['format']}), which did not record the cfg it trained; "
             f"{alone}", file=str(path))
        return None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(payload.get("run"), dict):
        warn(f"not a darknet_py training state (or one from a newer version); {alone}", file=str(path))
        return None
    if payload.get("weights_sha256") != weights_sha256:
        warn("saved with other weights than the ones loaded (the process was probably stopped between the two "
             f"writes, or the file comes from another run); {alone}", file=str(path))
        return None
    changes = record_changes(payload["run"], record)
    bound = [change for change in changes if change.split()[0] in STATE_BOUND]
    if bound:
        warn(f"the run was saved with another cfg ({', '.join(bound)}); {alone} (iteration = seen / batch)",
             file=str(path))
        return None
    if changes:
        say(f"{path}: since the run was saved: {', '.join(changes)}; continuing with the cfg's values", flush=True)
    return payload


def explain_weights_mismatch(error: DarknetError, weights_path: str | Path, record: dict) -> DarknetError:
    """``error`` (weights that do not fit the cfg) with, as its hint, what changed in the cfg since the run
    that wrote them saved its side file (e.g. ``classes [2] -> [3]``), when there is one."""
    try:
        saved = torch.load(state_path(weights_path), map_location="cpu", weights_only=True)["run"]
        changes = record_changes(saved, record)
    except Exception:  # no side file, or not one of ours: nothing to add
        return error
    if changes:
        error.hint = (f"the run that saved these weights trained another cfg: {', '.join(changes)}; train the "
                      "cfg they were saved with, or cut a backbone with `darknet_py partial` and start from it")
    return error


def apply_training_state(parts: dict[str, Optional[Resumable]], state: dict, path: str | Path) -> None:
    """:func:`load_training_state_dict`, with a side file whose content does not fit the run it claims to be
    (edited, or written by a darknet_py with other parts) refused as one error instead of a traceback."""
    try:
        load_training_state_dict(parts, state)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise TrainingError(f"training state does not fit this run ({type(exc).__name__}: {exc})", file=str(path),
                            hint="delete it to resume from the weights alone, as Darknet does") from None
