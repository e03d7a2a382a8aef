"""chart.png: the loss axis is AlexeyAB's `[net] max_chart_loss` (default 20, parser.c), not the first loss;
the iteration axis has distinct whole-number ticks; `-chart PATH` draws on an earlier picture."""
from __future__ import annotations

import numpy as np

from darknet_py.network import parse_cfg
from darknet_py.train.chart import MARGIN, SIZE, BLUE, TrainingChart, iteration_ticks
from helpers.datasets import tiny_cfg


def test_iteration_ticks_are_distinct_whole_numbers():
    assert iteration_ticks(5) == [0, 1, 2, 3, 4, 5]
    assert iteration_ticks(25) == [0, 3, 6, 9, 12, 15, 18, 21, 24]
    assert iteration_ticks(10000) == list(range(0, 10001, 1000))
    for n in (1, 7, 13, 99):
        ticks = iteration_ticks(n)
        assert len(set(ticks)) == len(ticks) <= 11 and ticks[0] == 0 and ticks[-1] <= n


def _blue_rows(image: np.ndarray, column: int) -> list[int]:
    return [y for y in range(image.shape[0]) if tuple(image[y, column]) == BLUE]


def test_loss_axis_is_max_chart_loss_not_the_first_loss():
    """A first loss of 50 must not stretch the axis: a loss of 2 sits at 2/20 of the height, a loss above
    the cap is drawn at the top (AB clips to the top row)."""
    left, top, right, bottom = MARGIN
    plot_w, plot_h = SIZE[0] - left - right, SIZE[1] - top - bottom
    chart = TrainingChart(max_batches=100)
    assert chart.max_loss == 20.0
    chart.add_loss(10, 50.0)
    chart.add_loss(50, 2.0)
    image = chart.draw()
    x50 = left + round(plot_w * 0.5)
    assert top + round(plot_h * (1 - 2 / 20)) in _blue_rows(image, x50)
    assert top in _blue_rows(image, left + round(plot_w * 0.1))
    capped = TrainingChart(max_batches=100, max_loss=4.0)
    capped.add_loss(50, 2.0)
    assert top + round(plot_h * 0.5) in _blue_rows(capped.draw(), x50)


def test_max_chart_loss_is_read_from_net(tmp_path):
    cfg = tmp_path / "c.cfg"
    cfg.write_text(tiny_cfg().replace("[net]\n", "[net]\nmax_chart_loss=7.5\n"))
    assert parse_cfg(cfg).net.max_chart_loss == 7.5
    cfg.write_text(tiny_cfg())
    assert parse_cfg(cfg).net.max_chart_loss == 20.0


def test_chart_draws_on_a_background_picture():
    background = np.zeros((SIZE[1] // 2, SIZE[0] // 2, 3), np.uint8)
    background[:, :] = (0, 200, 0)
    image = TrainingChart(max_batches=10).draw(background)
    assert image.shape == (SIZE[1], SIZE[0], 3)
    assert tuple(image[5, 5]) == (0, 200, 0)            # outside the grid: the old picture shows through
    assert tuple(TrainingChart(max_batches=10).draw()[5, 5]) == (255, 255, 255)
