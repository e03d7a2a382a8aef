"""What a training run writes while it trains: the backups Darknet writes (:mod:`.checkpoints` says which and
when), the full-state side file beside the rolling one (:mod:`.state`), AB's `_ema.weights` and the chart.
Rank 0 writes; every file is written atomically."""
from __future__ import annotations

from pathlib import Path

from . import state as train_state
from .chart import read_background
from .checkpoints import save_backup, weights_header
from .elastic import launch_record
from .listeners import notify
from .session import Session
from .state import RunState


def save(s: Session, run: RunState, path: Path, kind: str) -> Path:
    """Write one backup (rank 0 only); the rolling `last` one gets the full-state side file too."""
    if not s.main:
        return path
    header = weights_header(s.opts.flavor, run.seen, run.iteration, s.cfg.net.images_per_update)
    digest = save_backup(s.network, path, header)
    if kind == "last":
        s.last_digest = digest
        save_state(s, run, path)
        _save_ema(s, header)
    s.log.write("save", iteration=run.iteration, kind=kind, path=str(path))
    return path


def save_state(s: Session, run: RunState, weights: Path) -> None:
    """The side file of the rolling checkpoint ``weights``, bound to the digest of its last write."""
    if s.main:
        state = dict(train_state.training_state_dict(s.resumable_parts(run)), launch=launch_record(s.ctx))
        train_state.save_training_state(train_state.state_path(weights), state, s.last_digest,
                                        train_state.run_record(s.cfg, s.flavor))


def save_chart(s: Session, run: RunState) -> None:
    """AB saves the chart as chart.png and chart_<cfg name>.png (drawn once); listeners get the picture."""
    directory = Path(s.opts.chart_dir)
    picture = run.chart.save([directory / "chart.png", directory / f"chart_{s.cfg.base_name}.png"],
                             read_background(s.opts.chart_background))
    notify(s, "chart", run.iteration, picture)


def _save_ema(s: Session, header) -> None:
    """AB writes `<base>_ema.weights` (the averages, live rolling statistics) with every `_last.weights`."""
    if s.ema is None or not s.ema.initialized:
        return
    path = s.rule.directory / f"{s.rule.base}_ema.weights"
    with s.ema.swapped_in():
        save_backup(s.network, path, header)
    print(f" EMA weights are saved to the file: {path} ", flush=True)
