"""AB's `detector train ... -mjpeg_port P`: the live chart over HTTP (:mod:`darknet_py.http_stream`).

`/` is the MJPEG stream of the chart (a new frame after every iteration and after every `-map` pass), the same
picture as `chart.png`; `/chart.png` is the latest chart as one PNG; `/status.json` the latest figures:
iteration, loss, avg loss, rate, images, mAP, best mAP, hours left. The chart is drawn from a snapshot of its
points only when a client asks for it, once per frame."""
from __future__ import annotations

from typing import Callable, Optional

from ..http_stream import Frame, Route, StreamServer, start_server, status_text
from .chart import TrainingChart, read_background

ROUTES = {"/": Route("mjpeg"), "/chart.png": Route("png"), "/status.json": Route("json")}


class ChartStream:
    """A listener (see :mod:`.listeners`) that publishes each iteration's chart and figures."""

    def __init__(self, server: StreamServer, background_path: Optional[str]):
        self.server = server
        self.background = read_background(background_path)
        self.status: dict = {}

    def iteration(self, figures) -> None:
        r = figures.report
        self.status = dict(iteration=r.iteration, loss=r.loss, avg_loss=r.avg_loss, rate=r.rate, images=r.images,
                           map=_measured(figures.mean_average_precision), best_map=_measured(figures.best_map),
                           hours_left=r.hours_left, max_batches=figures.chart.max_batches, width=r.width,
                           height=r.height)
        self._publish(figures.chart)

    def map_pass(self, iteration: int, result, chart: TrainingChart) -> None:
        self.status.update(map=result.mean_ap, best_map=max(self.status.get("best_map") or 0.0, result.mean_ap))
        self._publish(chart)

    def chart(self, iteration: int, picture) -> None:
        pass

    def close(self) -> None:
        self.server.close()

    def _publish(self, chart: TrainingChart) -> None:
        background = self.background
        self.server.publish(Frame(lambda: chart.draw(background), status_text(**self.status)))


def _measured(value: float):
    """A mAP, or None before the first -map pass (the run keeps -1 there, as AB)."""
    return value if value >= 0 else None


def open_chart_stream(port: int, bind: str, background_path: Optional[str],
                      say: Callable[[str], None]) -> Optional[ChartStream]:
    server = start_server("-mjpeg_port", ROUTES, port, bind, say=say)
    return None if server is None else ChartStream(server, background_path)
