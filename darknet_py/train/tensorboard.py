"""`detector train --tensorboard DIR`: the run's figures as TensorBoard scalars (needs the optional
`[tensorboard]` extra: torch's SummaryWriter writes through the tensorboard package).

Step = iteration. Scalars: `train/loss`, `train/avg_loss`, `train/learning_rate`, `train/images_per_second`,
`train/cost_layer_<index>` (each detection layer's cost summed over the iteration's images; Darknet's loss
is the layers' mean cost / B); at every `-map` pass `map/mAP` and
`map/AP_<class name>`; the chart picture (`chart`) whenever chart.png is written (every 100 iterations and at
the end). A resumed run writes to the same folder with ``purge_step`` = its first iteration, so TensorBoard
continues the same curves and hides what the stopped run logged after the checkpoint it resumed from."""
from __future__ import annotations

import importlib.util
import re

from ..errors import UsageError

INSTALL_HINT = "pip install 'darknet_py[tensorboard]' (or: pip install tensorboard)"


def require_tensorboard() -> None:
    """One clear error before training when the tensorboard package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise UsageError("--tensorboard needs the tensorboard package, which is not installed", hint=INSTALL_HINT)


class TensorBoardListener:
    """A listener (see :mod:`.listeners`) writing TensorBoard event files."""

    def __init__(self, log_dir: str, start_iteration: int):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        # what an earlier run in this folder logged after this run's start is hidden (it is trained again)
        self.writer = SummaryWriter(log_dir, purge_step=start_iteration + 1)

    def iteration(self, figures) -> None:
        r, step, add = figures.report, figures.report.iteration, self.writer.add_scalar
        add("train/loss", r.loss, step)
        add("train/avg_loss", r.avg_loss, step)
        add("train/learning_rate", r.rate, step)
        add("train/images_per_second", figures.images_per_second, step)
        for layer, cost in figures.layer_costs.items():
            add(f"train/cost_layer_{layer}", cost, step)

    def map_pass(self, iteration: int, result, chart) -> None:
        self.writer.add_scalar("map/mAP", result.mean_ap, iteration)
        for c in result.per_class:
            self.writer.add_scalar(f"map/AP_{tag_name(c.name)}", c.ap, iteration)
        self.writer.flush()

    def chart(self, iteration: int, picture) -> None:
        self.writer.add_image("chart", picture[:, :, ::-1].copy(), iteration, dataformats="HWC")   # BGR -> RGB
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def tag_name(name: str) -> str:
    """A class name as a TensorBoard tag part (letters, digits, `_ - .`)."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "_"
