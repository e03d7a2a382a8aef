"""Who watches a training run from outside: the `-mjpeg_port` chart stream (:mod:`.chart_stream`) and
`--tensorboard` (:mod:`.tensorboard`). Both are listeners of figures the loop and the `-map` pass have already
computed (the iteration's report, the layers' costs, the mAP result, the chart picture); none computes
anything of training again. Rank 0 owns them.

``s`` below is the run's :class:`.session.Session` (not imported: the session closes its listeners).

Watching must never cost training: a listener that fails is warned about once and dropped, and the run goes
on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import warn
from .chart import TrainingChart
from .progress import IterationReport


@dataclass(frozen=True)
class IterationFigures:
    """What one iteration computed, as the listeners receive it."""
    report: IterationReport
    layer_costs: dict[int, float]        # detection layer index -> its summed cost (all micro-batches)
    images_per_second: float
    mean_average_precision: float        # the last -map pass's (0 before the first)
    best_map: float
    chart: TrainingChart                 # the chart with this iteration's point (a snapshot)


class Listener(Protocol):
    def iteration(self, figures: IterationFigures) -> None: ...

    def map_pass(self, iteration: int, result, chart: TrainingChart) -> None: ...   # result: eval.map.MapResult

    def chart(self, iteration: int, picture: np.ndarray) -> None: ...

    def close(self) -> None: ...


def open_listeners(s, start_iteration: int) -> list[Listener]:
    """The listeners the options ask for (rank 0 only); each cleans up after itself in ``close``."""
    listeners: list[Listener] = []
    if not s.main:
        return listeners
    try:
        if s.opts.mjpeg_port:
            from .chart_stream import open_chart_stream
            stream = open_chart_stream(s.opts.mjpeg_port, s.opts.bind, s.opts.chart_background, s.console.print)
            if stream is not None:
                listeners.append(stream)
        if s.opts.tensorboard_dir:
            from .tensorboard import TensorBoardListener
            listeners.append(TensorBoardListener(s.opts.tensorboard_dir, start_iteration))
            s.console.print(f"TensorBoard: writing to {s.opts.tensorboard_dir} "
                            f"(tensorboard --logdir {s.opts.tensorboard_dir})")
    except BaseException:
        close_listeners(listeners)
        raise
    return listeners


def iteration_figures(s, run, report: IterationReport, layer_costs: list[float]) -> IterationFigures:
    seconds = report.seconds + report.load_seconds
    return IterationFigures(report, dict(zip(s.network.detection_indices, layer_costs)),
                            s.cfg.net.images_per_update / seconds if seconds > 0 else 0.0,
                            run.mean_average_precision, run.best_map, run.chart.snapshot())


def notify(s, event: str, *args) -> None:
    """Hand an event to every listener; one that fails is warned about and dropped."""
    for listener in list(s.listeners):
        try:
            getattr(listener, event)(*args)
        except Exception as exc:     # noqa: BLE001 - watching must never stop training
            warn(f"{type(listener).__name__} failed ({type(exc).__name__}: {exc}); training goes on without it")
            s.listeners.remove(listener)
            close_listeners([listener])


def close_listeners(listeners: list[Listener]) -> None:
    for listener in listeners:
        try:
            listener.close()
        except Exception as exc:     # noqa: BLE001 - closing a watcher must not hide the run's own outcome
            warn(f"closing {type(listener).__name__} failed ({type(exc).__name__}: {exc})")
