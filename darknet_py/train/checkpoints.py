"""Darknet's backup files (spec §7.7): which `.weights` a training run writes, when, and under what name.

``<backup>/<base>...`` where ``base`` is the cfg file name without directory and extension and ``backup``
the `.data` key. Both forks' rules are kept apart because users compare the folder with what Darknet
would have written:

* AB: ``<base>_<N>.weights`` every ``saveweights`` iterations (`.data`; default 1000, or 10000 when
  ``max_batches >= 10000``), ``<base>_last.weights`` every ``savelast`` (default 100) iterations,
  ``<base>_best.weights`` whenever a `-map` evaluation is at least the best so far, ``<base>_final.weights``
  at the end. Header 0.2.5 with ``seen = iteration * B``.
* PJ: ``<base>.backup`` every 100 iterations, ``<base>_<N>.weights`` every 10000 iterations and every 100
  below 1000, ``<base>_final.weights`` at the end. Header 0.2.0 with the live ``seen``.

Every file is written atomically (temp file + rename), so a killed process never leaves a torn backup.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..atomic_write import write_atomically
from ..errors import TrainingError
from ..flavor import Flavor, flavor_of
from ..weights import WeightsHeader, weights_payload
from ..weights_check import non_finite_layer



@dataclass(frozen=True)
class BackupRule:
    """Where and how often one training run writes its weights."""
    flavor: Flavor
    directory: Path
    base: str
    save_every: int      # AB `saveweights`
    save_last: int       # AB `savelast`

    @property
    def last_path(self) -> Path:
        """The rolling checkpoint a resume starts from (AB `_last.weights`, PJ `.backup`)."""
        return self.directory / self.flavor.backup_name(self.base)

    def numbered_path(self, iteration: int) -> Path:
        return self.directory / f"{self.base}_{iteration}.weights"

    @property
    def final_path(self) -> Path:
        return self.directory / f"{self.base}_final.weights"

    @property
    def best_path(self) -> Path:
        return self.directory / f"{self.base}_best.weights"


def make_backup_rule(flavor: Flavor | str, directory: str | Path, base: str, max_batches: int,
                     saveweights: Optional[int] = None, savelast: int = 100) -> BackupRule:
    """AB's defaults: `saveweights` 1000 below 10000 max_batches, else 10000; `savelast` 100."""
    save_every = saveweights or (1000 if max_batches < 10000 else 10000)
    return BackupRule(flavor_of(flavor), Path(directory), base, save_every, savelast)


@dataclass
class BackupCounters:
    """AB's `iter_save` / `iter_save_last`: the iteration of the last numbered and `_last` save. Both start
    at the iteration the run starts from."""
    last_save: int
    last_last: int


def due_backups(rule: BackupRule, counters: BackupCounters, iteration: int) -> list[tuple[str, Path]]:
    """The periodic saves Darknet makes after ``iteration``, as ``(kind, path)`` with kind "numbered" or
    "last", in Darknet's order. Updates ``counters`` (AB) like Darknet does."""
    if rule.flavor.pjreddie:
        due = []
        if iteration % 100 == 0:
            due.append(("last", rule.last_path))
        if iteration % 10000 == 0 or (iteration < 1000 and iteration % 100 == 0):
            due.append(("numbered", rule.numbered_path(iteration)))
        return due
    due = []
    every, last = rule.save_every, rule.save_last
    if iteration >= counters.last_save + every or iteration % every == 0:
        counters.last_save = iteration
        due.append(("numbered", rule.numbered_path(iteration)))
    if every > last and (iteration >= counters.last_last + last or (iteration % last == 0 and iteration > 1)):
        counters.last_last = iteration
        due.append(("last", rule.last_path))
    return due


def weights_header(flavor: Flavor | str, seen: int, iteration: int, images_per_update: int) -> WeightsHeader:
    """AB rewrites `seen` from its iteration counter when saving; PJ writes the live `seen`."""
    flavor = flavor_of(flavor)
    if flavor.saves_seen_from_iteration:
        return WeightsHeader(*flavor.weights_version, iteration * images_per_update)
    return WeightsHeader(*flavor.weights_version, seen)


def save_backup(network, path: Path, header: WeightsHeader) -> str:
    """Write ``network`` to ``path`` atomically; returns the sha256 of the bytes written (the full-state
    side file records it to prove it belongs to exactly these weights)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = weights_payload(network)
    if not np.isfinite(payload).all():
        raise _non_finite_error(network, path, header)
    data = header.pack() + payload.tobytes()
    write_atomically(path, data)
    print(f"Saving weights to {path}", flush=True)
    return hashlib.sha256(data).hexdigest()


def _non_finite_error(network, path: Path, header: WeightsHeader) -> TrainingError:
    """An update that overflowed must not replace the last good backup (the loss check only sees it one
    iteration later)."""
    bad = non_finite_layer(network) or "a layer"
    return TrainingError(f"not saved: {bad} holds non-finite parameters after the update that reached seen="
                         f"{header.seen}", file=str(path),
                         hint=f"{path.name} keeps the last good weights; lower learning_rate (or lengthen burn_in)")


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
