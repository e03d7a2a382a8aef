"""Backup naming and timing (spec §7.7), the full-state side file, the chart: the pieces of the training loop
that do not need a training step. Expected values are re-derived here from the spec's wording."""
from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
import torch

from darknet_py.train.chart import TrainingChart
from darknet_py.train.checkpoints import (BackupCounters, due_backups, make_backup_rule, save_backup,
                                          weights_header)
from darknet_py.train.state import (capture_rng, from_plain, load_training_state, restore_rng,
                                    save_training_state, state_path, to_plain)
from darknet_py.weights import parse_header


def _names(rule, start, stop, counters=None):
    counters = counters or BackupCounters(start, start)
    written = []
    for it in range(start + 1, stop + 1):
        written += [path.name for _, path in due_backups(rule, counters, it)]
    return written


def test_ab_defaults_numbered_every_1000_and_last_every_100(tmp_path):
    rule = make_backup_rule("ab", tmp_path, "yolo", max_batches=2500)
    assert (rule.save_every, rule.save_last) == (1000, 100)
    written = _names(rule, 0, 2500)
    assert [n for n in written if n != "yolo_last.weights"] == ["yolo_1000.weights", "yolo_2000.weights"]
    assert written.count("yolo_last.weights") == 25
    assert written.index("yolo_1000.weights") < written.index("yolo_last.weights", 9)   # numbered first


def test_ab_saveweights_default_grows_with_max_batches(tmp_path):
    assert make_backup_rule("ab", tmp_path, "b", max_batches=9999).save_every == 1000
    assert make_backup_rule("ab", tmp_path, "b", max_batches=10000).save_every == 10000


def test_ab_data_keys_and_no_last_when_saveweights_not_larger(tmp_path):
    rule = make_backup_rule("ab", tmp_path, "b", max_batches=100, saveweights=50, savelast=100)
    written = _names(rule, 0, 100)
    assert written == ["b_50.weights", "b_100.weights"]        # save_every <= save_last: no _last at all


def test_ab_counters_start_at_resumed_iteration(tmp_path):
    rule = make_backup_rule("ab", tmp_path, "b", max_batches=5000, saveweights=1000, savelast=100)
    counters = BackupCounters(1050, 1050)
    saved_at = [it for it in range(1051, 2101) if due_backups(rule, counters, it)]
    # `_last` when it % 100 == 0 (1100 first; 1150 = 1050 + 100 comes after the 1100 save); numbered at 2000
    assert saved_at == list(range(1100, 2101, 100))
    assert counters.last_save == 2000


def test_pj_backup_rule(tmp_path):
    rule = make_backup_rule("pj", tmp_path, "tiny", max_batches=1200)
    written = _names(rule, 0, 1200)
    numbered = [f"tiny_{i}.weights" for i in range(100, 1000, 100)]      # i < 1000 and i % 100 == 0
    assert [n for n in written if n != "tiny.backup"] == numbered       # 1000 is not < 1000, nor % 10000
    assert written.count("tiny.backup") == 12
    assert rule.last_path.name == "tiny.backup" and rule.final_path.name == "tiny_final.weights"


def test_headers_per_flavor(tmp_path):
    assert weights_header("ab", seen=1234, iteration=10, images_per_update=16).seen == 160
    h = weights_header("pj", seen=1234, iteration=10, images_per_update=16)
    assert (h.major, h.minor, h.revision, h.seen) == (0, 2, 0, 1234)


RECORD = {"flavor": "ab", "batch": 8, "width": 64, "height": 64, "classes": [2], "subdivisions": 2,
          "max_batches": 100}


def test_save_backup_is_a_weights_file_with_digest(tmp_path):
    from darknet_py.network import parse_cfg
    from darknet_py.network import Network
    cfg = tmp_path / "t.cfg"
    cfg.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                   "activation=leaky\n")
    network = Network(parse_cfg(cfg))
    path = tmp_path / "backup" / "t_last.weights"
    digest = save_backup(network, path, weights_header("ab", 0, 3, 8))
    raw = path.read_bytes()
    import hashlib
    assert hashlib.sha256(raw).hexdigest() == digest
    assert parse_header(raw, str(path)).seen == 24
    assert len(raw) == 20 + 4 * (4 + 4 * 3 * 9)
    assert [p.name for p in path.parent.iterdir()] == ["t_last.weights"]    # no temp file left


def test_state_round_trip_loads_with_weights_only(tmp_path):
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    rng = capture_rng()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    state = {"iteration": 7, "rng": rng, "extra": to_plain({"a": np.arange(3, dtype=np.uint32), "b": (1, 2.5)})}
    path = state_path(tmp_path / "x_last.weights")
    assert path.name == "x_last.state.pt"
    assert state_path(tmp_path / "x.backup").name == "x.state.pt"
    save_training_state(path, state, "abc", RECORD)
    raw = torch.load(path, weights_only=True)               # plain data only
    assert raw["iteration"] == 7
    loaded = load_training_state(path, "abc", RECORD)
    restore_rng(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    extra = from_plain(loaded["extra"])
    assert extra["a"].dtype == np.uint32 and extra["a"].tolist() == [0, 1, 2] and extra["b"] == [1, 2.5]


def test_state_with_other_weights_or_torn_is_ignored(tmp_path):
    path = tmp_path / "x_last.state.pt"
    save_training_state(path, {"iteration": 1}, "abc", RECORD)
    with pytest.warns(UserWarning, match="other weights"):
        assert load_training_state(path, "def", RECORD) is None
    path.write_bytes(path.read_bytes()[:20])
    with pytest.warns(UserWarning, match="unreadable"):
        assert load_training_state(path, "abc", RECORD) is None
    assert load_training_state(tmp_path / "missing.state.pt", "abc", RECORD) is None


def test_chart_draws_loss_and_map(tmp_path):
    chart = TrainingChart(max_batches=200)
    for it in range(1, 101):
        chart.add_loss(it, 50.0 / it)
    chart.add_map(100, 0.5)
    chart = TrainingChart.from_plain(to_plain(chart.to_plain()))
    chart.save([tmp_path / "chart.png"])
    image = cv2.imread(str(tmp_path / "chart.png"))
    assert image is not None and image.shape == (700, 1000, 3)
    blue = (image[:, :, 0] > 200) & (image[:, :, 1] < 60) & (image[:, :, 2] < 60)
    red = (image[:, :, 2] > 200) & (image[:, :, 0] < 60) & (image[:, :, 1] < 60)
    assert blue.sum() > 100 and red.sum() > 10
    # the loss points sit in the left half (iterations 1..100 of 200)
    assert np.nonzero(blue)[1].max() < 70 + (1000 - 100) // 2 + 5
