"""Batched inference (eval/inference.py): the detections of every image do not depend on the batch size, on
the loader's worker processes or on whether the image came as a path or as `cv2.imread`'s array, and equal
the one-image path (`detect_arrays`, itself checked against Darknet in test_detect.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from darknet_py.data.image import load_image
from darknet_py.errors import ImageError
from darknet_py.eval.detect import detect_arrays
from darknet_py.eval.inference import detect_images
from darknet_py.network import load_network
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = EVAL / "synth" / "cfg" / "tiny3.cfg"
WEIGHTS = EVAL / "tiny3" / "trained.weights"
PATHS = [str(p) for p in sorted((EVAL / "synth" / "JPEGImages" / "valid").glob("*.jpg"))[:11]]
THRESH = .005


@pytest.fixture(scope="module")
def network():
    net = load_network(str(CFG), str(WEIGHTS), batch=1)
    net.eval()
    return net


def assert_same(got, want) -> None:
    assert len(got) == len(want)
    np.testing.assert_allclose(got.probs, want.probs, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.objectness, want.objectness, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.boxes, want.boxes, rtol=0, atol=1e-4)


@pytest.mark.parametrize("letter_box", [False, True])
def test_batch_1_and_8_give_the_same_detections(network, letter_box):
    one = list(detect_images(network, PATHS, THRESH, .45, letter_box, batch=1, workers=0))
    eight = list(detect_images(network, PATHS, THRESH, .45, letter_box, batch=8, workers=0))
    assert [d.source for d in one] == [d.source for d in eight] == PATHS
    assert [d.index for d in eight] == list(range(len(PATHS)))
    for a, b, path in zip(one, eight, PATHS):
        image = load_image(path)
        assert (b.height, b.width) == (a.height, a.width) == image.shape[1:]
        assert_same(b.detections, a.detections)
        assert_same(a.detections, detect_arrays(network, image, THRESH, .45, letter_box))
    assert sum(len(d.detections) for d in eight) > 50          # the comparison is not vacuous


def test_worker_processes_and_arrays_change_nothing(network):
    big = np.full((1500, 1500, 3), 7, np.uint8)       # OpenCV starts its thread pool in this process first:
    cv2.resize(cv2.cvtColor(big, cv2.COLOR_BGR2RGB), (1000, 1000))   # workers forked after it must not hang
    reference = list(detect_images(network, PATHS, THRESH, batch=4, workers=0))
    in_workers = list(detect_images(network, PATHS, THRESH, batch=4, workers=2, keep_images=True))
    arrays = list(detect_images(network, [cv2.imread(p) for p in PATHS], THRESH, batch=4, workers=0))
    for a, b, c, path in zip(reference, in_workers, arrays, PATHS):
        np.testing.assert_array_equal(b.image, load_image(path))
        assert c.source == a.index and a.image is None
        for other in (b, c):
            np.testing.assert_array_equal(other.detections.probs, a.detections.probs)
            np.testing.assert_array_equal(other.detections.boxes, a.detections.boxes)


def test_unreadable_images_are_reported_in_place(network, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(Path(PATHS[0]).read_bytes()[:40])
    shutil.copy(PATHS[1], tmp_path / "good.jpg")
    sources = [str(corrupt), str(tmp_path / "good.jpg"), str(tmp_path / "missing.jpg"), PATHS[2]]
    for workers in (0, 1):
        found = list(detect_images(network, sources, THRESH, batch=3, workers=workers, skip_errors=True))
        assert [d.source for d in found] == sources
        assert [d.error is None for d in found] == [False, True, False, True]
        assert isinstance(found[0].error, ImageError) and found[0].error.file == str(corrupt)
        assert "cannot decode" in str(found[0].error)
        assert found[2].error.file == str(tmp_path / "missing.jpg") and found[2].detections is None
        assert_same(found[3].detections, detect_arrays(network, load_image(PATHS[2]), THRESH))
    with pytest.raises(ImageError, match="corrupt.jpg"):
        list(detect_images(network, sources, THRESH, batch=2, workers=1))


@pytest.mark.parametrize("bad, expected", [
    (np.zeros((3, 20, 30), np.uint8), "channels first"),
    (np.zeros((20, 30, 3), np.float32), "dtype float32"),
    (np.zeros((20, 30), np.uint8), "2-D grayscale"),
    (np.zeros((20, 30, 4), np.uint8), "4 channels"),
])
def test_wrong_array_layouts_are_one_clear_value_error(network, bad, expected):
    with pytest.raises(ValueError, match=expected):
        list(detect_images(network, [bad], THRESH))


def test_default_batch_per_device_and_input_size(network):
    from types import SimpleNamespace
    from darknet_py.eval.inference import default_batch
    assert default_batch("cuda:1", network) == default_batch("cuda") == 32
    assert default_batch("cpu", network) == 4                       # tiny3, 128x128
    assert default_batch("cpu", SimpleNamespace(net_options=SimpleNamespace(width=416, height=416))) == 1
    assert default_batch("cpu") == 1


@pytest.mark.parametrize("cores, workers", [(1, 0), (2, 0), (3, 2), (4, 3), (8, 4), (64, 4)])
def test_default_workers_follow_the_cores_this_process_may_use(monkeypatch, cores, workers):
    """Counted by affinity (taskset), not the machine's CPUs; on 2 cores or fewer images are decoded in the
    main process (a loader process would take turns with the network's threads there)."""
    import os
    from darknet_py.eval.inference import default_workers
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert default_workers() == workers


def test_cpu_threads_never_exceed_the_usable_cores(monkeypatch):
    import os
    import torch
    from darknet_py.device import limit_cpu_threads
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(8)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
        assert limit_cpu_threads() == 2 == torch.get_num_threads()
        torch.set_num_threads(1)                        # a lower setting (OMP_NUM_THREADS=1) is kept
        assert limit_cpu_threads() == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_map_cli_batch_invariant_and_coco_opt_in(tmp_path):
    from helpers.cli import run_cli
    from helpers.datasets import write_data_file, write_list
    write_list(tmp_path / "valid.txt", PATHS[:6])
    write_data_file(tmp_path / "obj.data", classes=3, valid=tmp_path / "valid.txt", names=EVAL / "synth" / "obj.names")
    args = ["detector", "map", tmp_path / "obj.data", CFG, WEIGHTS]
    one = run_cli(*args, "--batch", "1", "--workers", "0")
    four = run_cli(*args, "--batch", "4", "--workers", "1")
    coco = run_cli(*args, "-coco")
    assert one.code == four.code == coco.code == 0
    assert "mean average precision (mAP@0.50)" in one.out and one.out == four.out
    assert "pycocotools" not in one.out
    assert "COCO (pycocotools, not Darknet's metric)" in coco.out and coco.out.startswith(one.out.split(" mean")[0])
