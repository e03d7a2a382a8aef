"""bench/bench_map.py's photo workload keeps working: at 6 pictures it makes distinct photo-sized JPEGs, turns
the reference's detections into labels, and `detector map` finds those boxes (no timing is checked)."""
from __future__ import annotations

import sys

import cv2

from helpers.paths import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import bench_map  # noqa: E402


def test_photo_workload_makes_labels_that_map_finds(tmp_path, darknet_binary, yolov3_tiny_weights, capsys):
    bench_map.bench_photos(darknet_binary, tmp_path, 6)
    photos = sorted((tmp_path / "photos").glob("*.jpg"))
    assert len(photos) == 6
    sizes = {cv2.imread(str(p)).shape[:2] for p in photos}
    assert all(h >= 480 and w >= 640 for h, w in sizes)
    assert len({p.read_bytes() for p in photos}) == 6
    labels = [p.with_suffix(".txt").read_text().splitlines() for p in photos]
    assert all(labels), "every sample photo holds an object Darknet finds with probability >= 0.5"
    for line in (line for lines in labels for line in lines):
        class_id, *box = line.split()
        assert 0 <= int(class_id) < 80 and all(0 < float(v) <= 1 for v in box)
    out = capsys.readouterr().out
    assert "darknet_py detector map" in out and "darknet_py detector valid --flavor pj" in out
    mean_ap = float(next(line for line in out.splitlines() if "mean average precision" in line).split("=")[1]
                    .split(",")[0])
    assert mean_ap > 0.05          # 12 present classes of 80 found again: ~0.1; mislaid labels give 0
