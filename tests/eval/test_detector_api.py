"""`from darknet_py import Detector`: `predict` gives, line for line, what `detector test` prints for the same
image (the real yolov3-tiny on Debian's sample images; for pjreddie, what the Debian darknet itself prints),
with the boxes in pixels of the original image; wrong array layouts are one clear ValueError."""
from __future__ import annotations

import re
import subprocess

import cv2
import numpy as np
import pytest
import torch

from darknet_py import Detection, Detector
from darknet_py.errors import DarknetError
from darknet_py.eval.printout import c_round, percent
from helpers.cli import run_cli
from helpers.datasets import write_data_file

SAMPLES = ("dog", "eagle", "giraffe", "horses", "person", "kite")
AB_LINE = re.compile(r"^(\w[\w ]*): (\d+)%\t\(left_x: +(-?\d+) +top_y: +(-?\d+) +width: +(\d+) +height: +(\d+)\)$")
PJ_LINE = re.compile(r"^(\w[\w ]*): (\d+)%$")


@pytest.fixture(scope="module")
def files(debian_share, yolov3_tiny_weights, tmp_path_factory):
    data = write_data_file(tmp_path_factory.mktemp("api") / "coco.data", classes=80,
                           names=debian_share / "data" / "coco.names")
    return {"cfg": str(debian_share / "cfg" / "yolov3-tiny.cfg"), "weights": str(yolov3_tiny_weights),
            "data": str(data), "images": [str(debian_share / "data" / f"{name}.jpg") for name in SAMPLES]}


def printed_per_image(text: str, images: list[str], pattern: re.Pattern) -> list[list[tuple]]:
    """The detection lines `detector test` printed after each image's "Predicted in" line."""
    blocks, current = [], None
    for line in text.replace("Enter Image Path: ", "\n").splitlines():
        if ": Predicted in " in line:
            current = []
            blocks.append(current)
        elif current is not None and pattern.match(line):
            current.append(pattern.match(line).groups())
    assert len(blocks) == len(images)
    return blocks


def run_test_command(monkeypatch, tmp_path, files, *flags) -> str:
    monkeypatch.chdir(tmp_path)
    result = run_cli("detector", "test", files["data"], files["cfg"], files["weights"], *flags,
                     input="".join(p + "\n" for p in files["images"]))
    assert result.code == 0, result.err
    return result.out


def test_ab_predict_equals_detector_test_ext_output(files, monkeypatch, tmp_path):
    out = run_test_command(monkeypatch, tmp_path, files, "-ext_output", "-dont_show")
    detector = Detector(files["cfg"], files["weights"], data=files["data"])
    got = detector.predict(files["images"])
    printed = printed_per_image(out, files["images"], AB_LINE)
    assert sum(map(len, printed)) >= 10
    for image, dets, lines in zip(files["images"], got, printed):
        h, w = cv2.imread(image).shape[:2]
        assert len(dets) == len(lines), image
        for det, (name, pct, left, top, width, height) in zip(dets, lines):
            assert isinstance(det, Detection) and det.name == name and detector.names[det.class_id] == name
            assert percent(np.float32(det.confidence)) == pct + "%"
            assert (c_round(det.x1), c_round(det.y1)) == (int(left), int(top))
            assert abs(det.x2 - det.x1 - int(width)) <= .5 + 1e-6 and abs(det.y2 - det.y1 - int(height)) <= .5 + 1e-6
            assert -w < det.x1 < det.x2 < 2 * w and -h < det.y1 < det.y2 < 2 * h


@pytest.mark.oracle
def test_pj_predict_equals_debian_darknet(files, darknet_binary, tmp_path):
    image = files["images"][0]
    theirs = subprocess.run([darknet_binary, "detector", "test", files["data"], files["cfg"], files["weights"],
                             image, "-thresh", ".25", "-out", "pred"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300).stdout
    want = [m.groups() for m in map(PJ_LINE.match, theirs.splitlines()) if m]
    got = Detector(files["cfg"], files["weights"], data=files["data"], flavor="pj").predict(image)
    assert len(want) >= 3
    assert [(d.name, percent(np.float32(d.confidence))) for d in got] == [(n, p + "%") for n, p in want]


def test_arrays_lists_and_names(files):
    detector = Detector(files["cfg"], files["weights"], batch=2)
    by_path = detector.predict(files["images"][:3])
    by_array = detector.predict([cv2.imread(p) for p in files["images"][:3]])
    assert by_path == by_array
    assert detector.predict(files["images"][1]) == by_path[1]
    assert all(d.name == str(d.class_id) for dets in by_path for d in dets)   # no names: the class ids


def test_names_from_a_file_or_a_list(files, debian_share):
    names_file = debian_share / "data" / "coco.names"
    assert Detector(files["cfg"], files["weights"], names=names_file).names[16] == "dog"
    assert Detector(files["cfg"], files["weights"], names=[f"c{i}" for i in range(80)]).names[16] == "c16"
    with pytest.raises(DarknetError, match="has 3 names but the cfg's last detection layer has classes=80"):
        Detector(files["cfg"], files["weights"], names=["a", "b", "c"])
    with pytest.raises(ValueError, match="names or data, not both"):
        Detector(files["cfg"], files["weights"], names=names_file, data=files["data"])


@pytest.mark.parametrize("bad, expected", [
    (np.zeros((3, 416, 416), np.uint8), r"channels first"),
    (np.zeros((64, 64, 3), np.float32), r"dtype float32"),
    (np.zeros((64, 64), np.uint8), r"2-D grayscale"),
    (np.zeros((64, 64, 4), np.uint8), r"4 channels"),
])
def test_wrong_layouts_are_value_errors(files, bad, expected):
    detector = Detector(files["cfg"], files["weights"])
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) BGR uint8 image.*" + expected):
        detector.predict(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_darknet_error(files):
    with pytest.raises(DarknetError, match="CUDA"):
        Detector(files["cfg"], files["weights"], device="cuda")
