"""chart.png: the loss axis is AlexeyAB's `[net] max_chart_loss` when the cfg sets it, not the first loss;
unset, it follows the data (a round number above the avg loss after the first iterations: every run shows
its curve); the iteration axis has distinct whole-number ticks; `-chart PATH` draws on an earlier picture."""
from __future__ import annotations

import numpy as np

from darknet_py.network import parse_cfg
from darknet_py.train.chart import MARGIN, SIZE, BLUE, TrainingChart, iteration_ticks, round_up
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
    chart = TrainingChart(max_batches=100, max_loss=20.0)
    chart.add_loss(10, 50.0)
    chart.add_loss(50, 2.0)
    image = chart.draw()
    x50 = left + round(plot_w * 0.5)
    assert top + round(plot_h * (1 - 2 / 20)) in _blue_rows(image, x50)
    assert top in _blue_rows(image, left + round(plot_w * 0.1))
    capped = TrainingChart(max_batches=100, max_loss=4.0)
    capped.add_loss(50, 2.0)
    assert top + round(plot_h * 0.5) in _blue_rows(capped.draw(), x50)


def test_unset_loss_axis_follows_the_data():
    """The issue's run: avg loss 40 at first, then 4.2 falling to 2. AB's fixed 0..20 axis would draw the start
    above the picture; the axis is 5 (the round number above 4.2, the first 10 points left out), so the loss
    of 2 sits at 2/5 of the height and the curve fills the picture."""
    left, top, right, bottom = MARGIN
    plot_w, plot_h = SIZE[0] - left - right, SIZE[1] - top - bottom
    chart = TrainingChart(max_batches=100)
    for iteration in range(1, 11):
        chart.add_loss(iteration, 40.0)
    for iteration, loss in zip(range(11, 51), np.linspace(4.2, 2.0, 40)):
        chart.add_loss(iteration, float(loss))
    assert chart.loss_axis() == 5.0
    x50 = left + round(plot_w * 0.5)
    assert top + round(plot_h * (1 - 2 / 5)) in _blue_rows(chart.draw(), x50)
    assert [round_up(v) for v in (0.3, 0.9, 1.2, 3.0, 9.0, 45.0, 180.0, 1234.0)] == [
        0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 200.0, 2000.0]


def test_max_chart_loss_is_read_from_net(tmp_path):
    cfg = tmp_path / "c.cfg"
    cfg.write_text(tiny_cfg().replace("[net]\n", "[net]\nmax_chart_loss=7.5\n"))
    assert parse_cfg(cfg).net.max_chart_loss == 7.5
    cfg.write_text(tiny_cfg())
    assert parse_cfg(cfg).net.max_chart_loss is None       # not set: the axis follows the data


def test_chart_draws_on_a_background_picture():
    background = np.zeros((SIZE[1] // 2, SIZE[0] // 2, 3), np.uint8)
    background[:, :] = (0, 200, 0)
    image = TrainingChart(max_batches=10).draw(background)
    assert image.shape == (SIZE[1], SIZE[0], 3)
    assert tuple(image[5, 5]) == (0, 200, 0)            # outside the grid: the old picture shows through
    assert tuple(TrainingChart(max_batches=10).draw()[5, 5]) == (255, 255, 255)
