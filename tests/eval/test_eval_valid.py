"""`detector valid` against real Darknet: AlexeyAB and pjreddie comp4 files on the synth set
(tests/fixtures/eval/cli/*/results, images 00000-00004), the live Debian `darknet` (pjreddie) on its sample
images with the real yolov3-tiny, and a .weights file written by darknet_py and read by the real Darknet.

Matching of lines: per (class file, image id), every reference line must have its own line in ours with
prob within 0.01 and corners within 1 px. With the synth fixtures (decoded by Darknet's stb_image, by
OpenCV here; up to 2/255 apart on some pixels) a line whose prob is within 0.01 of the detection threshold
may exist on one side only: its objectness sits at the threshold; so may a line whose box overlaps a stronger
box of its class with an IoU within 0.01 of the NMS threshold (an NMS near-tie: suppressed on one side only).
The Debian binary decodes with OpenCV like darknet_py, so there both files must have the same lines in the
same order."""
from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from darknet_py.eval.detections import DetectionArrays
from darknet_py.eval.valid import basecfg, c_atoi, coco_document, coco_image_id, coco_lines, imagenet_lines, voc_lines
from darknet_py.network import load_network
from darknet_py.weights import save_weights
from helpers.cli import run_cli
from helpers.datasets import write_data_file, write_list
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = EVAL / "synth" / "cfg" / "tiny3.cfg"
WEIGHTS = EVAL / "tiny3" / "trained.weights"
CLASSES = ("rect", "ellipse", "triangle")
DEBIAN_IMAGES = ("dog", "eagle", "giraffe", "horses", "person", "kite")


def read_comp4(folder: Path, names) -> dict:
    """{(class, image id): [(prob, xmin, ymin, xmax, ymax), ...]} in file order."""
    lines = defaultdict(list)
    for name in names:
        for row in (folder / f"comp4_det_test_{name}.txt").read_text().splitlines():
            image_id, *values = row.split()
            lines[(name, image_id)].append(tuple(float(v) for v in values))
    return lines


def _close(a, b) -> bool:
    return abs(a[0] - b[0]) <= 0.01 and max(abs(x - y) for x, y in zip(a[1:], b[1:])) <= 1.0


def _corner_iou(a, b) -> float:
    w = min(a[3], b[3]) - max(a[1], b[1])
    h = min(a[4], b[4]) - max(a[2], b[2])
    inter = max(w, 0) * max(h, 0)
    return inter / ((a[3] - a[1]) * (a[4] - a[2]) + (b[3] - b[1]) * (b[4] - b[2]) - inter)


def _near_tie(line, lines, near_thresh: float, nms: float) -> bool:
    """May ``line`` exist on one side only? (prob at the detection threshold, or an NMS near-tie)"""
    return line[0] < near_thresh or any(other[0] > line[0] and abs(_corner_iou(line, other) - nms) <= .01
                                        for other in lines)


def assert_same_detections(got: dict, want: dict, near_thresh: float, nms: float = 0,
                           same_order: bool = False) -> None:
    for key in set(got) | set(want):
        mine, theirs = list(got.get(key, [])), want.get(key, [])
        if same_order:
            assert len(mine) == len(theirs), key
            assert all(_close(m, t) for m, t in zip(mine, theirs)), key
            continue
        for line in theirs:
            match = next((m for m in mine if _close(m, line)), None)
            if match is None:
                assert _near_tie(line, theirs, near_thresh, nms), (key, line)
            else:
                mine.remove(match)
        assert all(_near_tie(m, got[key], near_thresh, nms) for m in mine), (key, mine)


def _synth_setup(root: Path, results: str) -> Path:
    (root / "synth").symlink_to(EVAL / "synth")
    write_list(root / "valid.txt", (f"synth/JPEGImages/valid/{i:05d}.jpg" for i in range(5)))
    return write_data_file(root / "obj.data", classes=3, valid="valid.txt", names="synth/obj.names", results=results)


@pytest.mark.parametrize("flavor,thresh,nms", [("ab", .001, .6), ("pj", .005, .45)])
def test_valid_reproduces_darknet_comp4_files(tmp_path, monkeypatch, flavor, thresh, nms):
    _synth_setup(tmp_path, "out")
    monkeypatch.chdir(tmp_path)
    result = run_cli("detector", "valid", "obj.data", CFG, WEIGHTS, "--flavor", flavor)
    assert result.code == 0, result.output
    want = read_comp4(EVAL / "cli" / f"{flavor}_tiny3" / "results", CLASSES)
    got = read_comp4(tmp_path / "out", CLASSES)
    assert sum(map(len, want.values())) > 100
    assert_same_detections(got, want, near_thresh=thresh + 0.01, nms=nms)


def test_valid_out_prefix_and_formats(tmp_path, monkeypatch):
    _synth_setup(tmp_path, "r")
    with open(tmp_path / "obj.data", "a") as handle:
        handle.write("eval=coco\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli("detector", "valid", "obj.data", CFG, WEIGHTS, "-out", "mine")
    assert result.code == 0, result.output
    text = (tmp_path / "r" / "mine.json").read_text()
    assert text.startswith('[\n{"image_id":0, "category_id":') and text.endswith("}\n]\n")
    import json
    assert {d["image_id"] for d in json.loads(text)} == {0, 1, 2, 3, 4}


# -- writers, by hand -------------------------------------------------------------------------------
def _pixel_dets():
    # box 0: centre (10, 20) size 30x10 in a 100x50 image -> corners (-5, 15) .. (25, 25)
    # box 1: centre (90, 45) size 40x20 -> corners (70, 35) .. (110, 55), beyond the image
    return DetectionArrays(np.array([[10, 20, 30, 10], [90, 45, 40, 20]], np.float32), np.array([.9, .8], np.float32),
                           np.array([[.5, 0], [0, .25]], np.float32))


def test_voc_lines_are_one_based_and_clamped():
    lines = voc_lines("img", _pixel_dets(), 100, 50)
    assert lines == {0: ["img 0.500000 1.000000 16.000000 26.000000 26.000000\n"],
                     1: ["img 0.250000 71.000000 36.000000 100.000000 50.000000\n"]}


def test_coco_and_imagenet_lines():
    assert coco_lines(42, _pixel_dets(), 100, 50, "ab") == [
        '{"image_id":42, "category_id":1, "bbox":[0.000000, 15.000000, 25.000000, 10.000000], "score":0.500000},\n',
        '{"image_id":42, "category_id":2, "bbox":[70.000000, 35.000000, 30.000000, 15.000000], "score":0.250000},\n']
    assert imagenet_lines(3, _pixel_dets(), 100, 50) == [
        "3 1 0.500000 0.000000 15.000000 25.000000 25.000000\n",
        "3 2 0.250000 70.000000 35.000000 100.000000 50.000000\n"]
    assert coco_document(["a,\n", "b,\n"]) == "[\na,\nb\n]\n"


def test_image_ids():
    assert basecfg("a/b/COCO_val2014_000000000042.jpg") == "COCO_val2014_000000000042"
    assert basecfg("dir/x.y.jpg") == "x"
    assert coco_image_id("val2014/COCO_val2014_000000000042.jpg", "pj") == 42
    assert coco_image_id("val2014/COCO_val2014_000000000042.jpg", "ab") == 0
    assert coco_image_id("val2017/000000000139.jpg", "ab") == 139
    assert coco_image_id("val2017/000000000139.jpg", "pj") == 139
    assert c_atoi("12abc") == 12 and c_atoi("abc") == 0


# -- the live Debian darknet (pjreddie) -------------------------------------------------------------
def _debian_valid(binary: str, root: Path, cfg: Path, weights: Path, images) -> Path:
    write_list(root / "list.txt", (f"/usr/share/darknet/data/{n}.jpg" for n in images))
    (root / "res").mkdir()
    write_data_file(root / "d.data", classes=80, valid="list.txt", names="/usr/share/darknet/data/coco.names",
                    results="res")
    subprocess.run([binary, "detector", "valid", "d.data", str(cfg), str(weights)], cwd=root, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return root / "res"


def _ours_valid(root: Path, cfg: Path, weights: Path, monkeypatch) -> Path:
    write_data_file(root / "p.data", classes=80, valid="list.txt", names="/usr/share/darknet/data/coco.names",
                    results="mine")
    monkeypatch.chdir(root)
    result = run_cli("detector", "valid", "p.data", cfg, weights, "--flavor", "pj")
    assert result.code == 0, result.output
    return root / "mine"


@pytest.mark.slow
@pytest.mark.oracle
def test_valid_equals_debian_darknet_on_sample_images(darknet_binary, debian_share, yolov3_tiny_weights, tmp_path,
                                                      monkeypatch):
    """Issue #2 item 3: the six Debian sample images, real yolov3-tiny, pjreddie semantics."""
    cfg = debian_share / "cfg" / "yolov3-tiny.cfg"
    names = (debian_share / "data" / "coco.names").read_text().split("\n")[:80]
    theirs = read_comp4(_debian_valid(darknet_binary, tmp_path, cfg, yolov3_tiny_weights, DEBIAN_IMAGES), names)
    mine = read_comp4(_ours_valid(tmp_path, cfg, yolov3_tiny_weights, monkeypatch), names)
    assert sum(map(len, theirs.values())) > 100
    assert {k[1] for k in theirs} == set(DEBIAN_IMAGES)
    assert_same_detections(mine, theirs, near_thresh=0, same_order=True)
    strong = {k[1] for k, v in theirs.items() if k[0] in ("dog", "person", "horse", "kite") and max(v)[0] > .5}
    assert {"dog", "person", "horses", "kite"} <= strong


@pytest.mark.slow
@pytest.mark.oracle
def test_weights_written_by_darknet_py_give_same_detections_in_darknet(darknet_binary, debian_share,
                                                                       yolov3_tiny_weights, tmp_path, monkeypatch):
    """Issue #2 item 5: change parameters deterministically, save_weights, let the real Darknet load the file."""
    import torch

    cfg = debian_share / "cfg" / "yolov3-tiny.cfg"
    network = load_network(str(cfg), str(yolov3_tiny_weights), flavor="pj", batch=1)
    with torch.no_grad():
        for layer in network.layers:
            conv = getattr(layer, "conv", None)
            if conv is not None:
                signs = torch.where(torch.arange(conv.weight.numel()) % 7 == 0, -0.05, 0.03)
                conv.weight.mul_(1 + signs.view_as(conv.weight))
        biases = network.layers[-2].biases
        biases.add_(torch.linspace(-.2, .2, biases.numel()))
    written = tmp_path / "changed.weights"
    save_weights(network, written)
    names = (debian_share / "data" / "coco.names").read_text().split("\n")[:80]
    theirs = read_comp4(_debian_valid(darknet_binary, tmp_path, cfg, written, DEBIAN_IMAGES[:4]), names)
    mine = read_comp4(_ours_valid(tmp_path, cfg, written, monkeypatch), names)
    original = read_comp4(_ours_valid_original(tmp_path, cfg, yolov3_tiny_weights, monkeypatch), names)
    assert sum(map(len, theirs.values())) > 20
    assert_same_detections(mine, theirs, near_thresh=0, same_order=True)
    assert mine != original    # the change is visible in the detections


def _ours_valid_original(root: Path, cfg: Path, weights: Path, monkeypatch) -> Path:
    sub = root / "orig"
    sub.mkdir()
    (sub / "list.txt").write_text((root / "list.txt").read_text())
    return _ours_valid(sub, cfg, weights, monkeypatch)
