"""`chart.png`: AB Darknet's training chart — avg loss per iteration (blue) and, with `-map`, the mAP of each
evaluation (red) on a 0..max_batches axis — drawn with OpenCV and written atomically (spec §7.8). Like AB's
`-chart PATH`, the chart can be drawn on the picture of an earlier run.

The loss axis is 0..`[net] max_chart_loss` when the cfg sets it (AB's fixed axis; larger losses are drawn at
the top). When it does not, the axis follows the data: a round number (1, 2 or 5 × 10^k) above the largest avg
loss after the run's first :data:`SETTLE` iterations, whose avg loss is still about the first, often huge,
losses. AB's fixed default of 20 showed an empty chart for a run whose loss stays above 20, and a flat line
for one whose loss is below 1."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import TrainingError
from ..atomic_write import write_atomically

SIZE = (1000, 700)           # width, height of the picture
MARGIN = (70, 30, 30, 60)    # left, top, right, bottom
BLUE, RED, GREY, BLACK = (255, 0, 0), (0, 0, 255), (220, 220, 220), (0, 0, 0)   # BGR
SETTLE = 10                  # points left out of the data-following loss axis (the run's first iterations)


@dataclass
class TrainingChart:
    """The points drawn so far; kept in the training state so a resumed run continues the same chart."""
    max_batches: int
    max_loss: Optional[float] = None   # AB's max_chart_loss (top of the loss axis); None: follow the data
    losses: list[tuple[int, float]] = field(default_factory=list)    # (iteration, avg_loss)
    maps: list[tuple[int, float]] = field(default_factory=list)      # (iteration, mAP in [0, 1])

    def add_loss(self, iteration: int, avg_loss: float) -> None:
        self.losses.append((iteration, float(avg_loss)))

    def add_map(self, iteration: int, mean_average_precision: float) -> None:
        self.maps.append((iteration, float(mean_average_precision)))

    def to_plain(self) -> dict:
        return {"max_batches": self.max_batches, "max_loss": self.max_loss,
                "losses": [list(p) for p in self.losses], "maps": [list(p) for p in self.maps]}

    @classmethod
    def from_plain(cls, data: dict) -> "TrainingChart":
        return cls(data["max_batches"], data.get("max_loss", 20.0), [tuple(p) for p in data["losses"]],
                   [tuple(p) for p in data["maps"]])

    def snapshot(self) -> "TrainingChart":
        """A copy the training loop no longer changes (drawn later by another thread)."""
        return TrainingChart(self.max_batches, self.max_loss, self.losses[:], self.maps[:])

    def loss_axis(self) -> float:
        """The top of the loss axis: max_chart_loss, else a round number above the settled avg losses."""
        if self.max_loss is not None:
            return self.max_loss
        settled = [v for _, v in (self.losses[SETTLE:] or self.losses[-1:]) if np.isfinite(v)]
        return round_up(max(settled)) if settled else 20.0

    def draw(self, background: np.ndarray | None = None) -> np.ndarray:
        width, height = SIZE
        left, top, right, bottom = MARGIN
        image = np.full((height, width, 3), 255, np.uint8) if background is None else \
            cv2.resize(background, SIZE, interpolation=cv2.INTER_AREA)
        plot_w, plot_h = width - left - right, height - top - bottom
        y_max = self.loss_axis()

        def px(iteration: float, value: float, scale: float) -> tuple[int, int]:
            x = left + plot_w * min(max(iteration / max(self.max_batches, 1), 0.0), 1.0)
            y = top + plot_h * (1.0 - min(max(value / scale, 0.0), 1.0))
            return int(round(x)), int(round(y))

        for k in range(11):
            y = top + plot_h * k // 10
            cv2.line(image, (left, y), (left + plot_w, y), GREY, 1)
            cv2.putText(image, f"{y_max * (10 - k) / 10:.3g}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, BLACK, 1)
        for iteration in iteration_ticks(self.max_batches):
            x, _ = px(iteration, 0.0, 1.0)
            cv2.line(image, (x, top), (x, top + plot_h), GREY, 1)
            cv2.putText(image, str(iteration), (x - 15, top + plot_h + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, BLACK, 1)
        cv2.rectangle(image, (left, top), (left + plot_w, top + plot_h), BLACK, 1)
        for iteration, value in self.losses:
            if np.isfinite(value):
                cv2.circle(image, px(iteration, value, y_max), 1, BLUE, -1)
        points = [px(i, m, 1.0) for i, m in self.maps]
        for a, b in zip(points, points[1:]):
            cv2.line(image, a, b, RED, 2)
        for (iteration, value), point in zip(self.maps, points):
            cv2.putText(image, f"{100 * value:.1f}%", (point[0] - 20, point[1] - 6),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, RED, 1)
        caption = f"Loss (blue, 0..{y_max:.3g})" + (", mAP% (red, 0..100)" if self.maps else "")
        current = f"   iteration {self.losses[-1][0]}  avg loss {self.losses[-1][1]:.4f}" if self.losses else ""
        cv2.putText(image, caption + current, (left, height - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, BLACK, 1)
        return image

    def save(self, paths: list[Path], background: np.ndarray | None = None) -> np.ndarray:
        """Draw once, write the PNG to every path; returns the picture."""
        picture = self.draw(background)
        ok, encoded = cv2.imencode(".png", picture)
        if ok:
            for path in paths:
                write_atomically(Path(path), encoded.tobytes(), TrainingError)
        return picture


def read_background(path: Optional[str]) -> Optional[np.ndarray]:
    """AB -chart PATH: the picture to draw on; None when unset or missing (AB then starts a new chart)."""
    return cv2.imread(path) if path else None


def round_up(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above ``value`` (with a little room above the curve)."""
    value = max(float(value) * 1.05, 1e-6)
    scale = 10.0 ** np.floor(np.log10(value))
    return float(next(m * scale for m in (1, 2, 5, 10) if m * scale >= value))


def iteration_ticks(max_batches: int) -> list[int]:
    """At most 11 distinct whole iterations from 0 to max_batches, evenly spaced."""
    step = max(1, -(-max_batches // 10))
    return list(range(0, max_batches + 1, step))
