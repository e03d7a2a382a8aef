"""`detector train --tensorboard DIR`: the event files read back with tensorboard's own EventAccumulator hold
the scalars (loss, avg loss, learning rate, each detection layer's cost, images/s; mAP and per-class AP at the
-map pass; the chart picture) with step = iteration, and a resumed run continues the same curves. The values
are the ones the run printed and logged (its JSON-lines log), not a second computation."""
from __future__ import annotations

import pytest

from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.train_runs import log_records, run_train_here

pytest.importorskip("tensorboard", reason="the [tensorboard] extra is not installed (the test extra has it)")


def _scalars(directory) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in tags["scalars"]}
    return scalars, {tag: [e.step for e in accumulator.Images(tag)] for tag in tags["images"]}


def test_tensorboard_scalars_continue_across_a_resume(tmp_path):
    make_dataset(tmp_path / "set", count=4, valid=2)
    data = write_tiny_data(tmp_path, tmp_path / "set")
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=6, batch=2, subdivisions=1, burn_in=0))
    first = run_train_here(tmp_path, data, "tiny.cfg", "--tensorboard", "tb", "--max-batches", "3")
    assert first.returncode == 0, first.stderr
    # resume: the final weights of 3 iterations hold seen = 6 images, so the run goes on at iteration 4
    second = run_train_here(tmp_path, data, "tiny.cfg", "backup/tiny_final.weights", "--tensorboard", "tb", "-map")
    assert second.returncode == 0, second.stderr
    scalars, images = _scalars(tmp_path / "tb")
    logged = log_records(tmp_path / "backup" / "tiny_train.jsonl", "iteration")
    assert [r["iteration"] for r in logged] == [1, 2, 3, 4, 5, 6]
    layer = [tag for tag in scalars if tag.startswith("train/cost_layer_")]
    assert layer == ["train/cost_layer_8"]                     # the tiny cfg's [yolo] is layer 8
    # one detection layer: its cost summed over the iteration's 2 images is 2 x Darknet's loss (Σ cost / B)
    assert [v for _, v in scalars[layer[0]]] == pytest.approx([2 * r["loss"] for r in logged], rel=1e-5)
    for tag, field in (("train/loss", "loss"), ("train/avg_loss", "avg_loss"), ("train/learning_rate", "rate")):
        assert [step for step, _ in scalars[tag]] == [1, 2, 3, 4, 5, 6], tag
        assert [value for _, value in scalars[tag]] == pytest.approx([r[field] for r in logged], rel=1e-6), tag
    assert [step for step, _ in scalars["train/images_per_second"]] == [1, 2, 3, 4, 5, 6]
    # -map at max_batches: the mAP the run logged, and one AP per class
    maps = log_records(tmp_path / "backup" / "tiny_train.jsonl", "map")
    assert scalars["map/mAP"] == [(6, pytest.approx(maps[-1]["map"], abs=1e-7))]
    assert {tag for tag in scalars if tag.startswith("map/AP_")} == {"map/AP_rect", "map/AP_ellipse"}
    assert images["chart"] == [3, 6]                            # with each chart.png (here: at each run's end)


def test_tensorboard_missing_is_one_clear_error(tmp_path, monkeypatch):
    import importlib.util
    from helpers.cli import run_cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    result = run_cli("detector", "train", tmp_path / "x.data", "x.cfg", "--tensorboard", str(tmp_path / "tb"))
    assert result.code == 1 and "Traceback" not in result.err
    assert "--tensorboard needs the tensorboard package" in result.err and "darknet_py[tensorboard]" in result.err
