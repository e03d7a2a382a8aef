"""Fault corpus (issue 23 item 3): images are decoded as Darknet decodes them, by OpenCV's file reader.

A JPEG cut short is read by libjpeg as far as it goes ("Premature end of JPEG file") and Darknet detects on
it: darknet_py does the same in `detector test`/`valid` and `Detector`, with a warning naming the file, and
gives Debian darknet's detections (live oracle). `Detector.predict(path)` equals
`Detector.predict(cv2.imread(path))`; inputs that are neither a path nor an array are one TypeError saying
what is accepted."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from darknet_py import Detector
from helpers.cli import run_cli
from helpers.datasets import write_data_file, write_list

PJ_LINE = re.compile(r"^\w[\w ]*: \d+%$")
CUT = 0.6          # keep 60 % of dog.jpg: the bottom of the picture (and the dog) is gone


@pytest.fixture(scope="module")
def cut_dog(debian_share, tmp_path_factory) -> Path:
    data = (debian_share / "data" / "dog.jpg").read_bytes()
    path = tmp_path_factory.mktemp("cut") / "dog_cut.jpg"
    path.write_bytes(data[:int(len(data) * CUT)])
    return path


@pytest.fixture(scope="module")
def coco_data(debian_share, tmp_path_factory) -> Path:
    return write_data_file(tmp_path_factory.mktemp("coco") / "coco.data", classes=80,
                           names=debian_share / "data" / "coco.names")


@pytest.mark.oracle
def test_a_truncated_jpeg_gives_debian_darknets_detections(darknet_binary, debian_share, yolov3_tiny_weights,
                                                          cut_dog, coco_data, tmp_path, monkeypatch):
    args = ["detector", "test", str(coco_data), str(debian_share / "cfg" / "yolov3-tiny.cfg"),
            str(yolov3_tiny_weights), str(cut_dog), "-thresh", ".25", "-out", "pred"]
    theirs = subprocess.run([darknet_binary, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "Premature end of JPEG file" in theirs.stderr + theirs.stdout
    want = [line for line in theirs.stdout.splitlines() if PJ_LINE.match(line)]
    assert len(want) >= 3 and not any(line.startswith("dog:") for line in want)   # the cut really changed them
    monkeypatch.chdir(tmp_path)
    ours = run_cli(*args, "--flavor", "pj")
    assert ours.code == 0, ours.output
    assert [line for line in ours.out.splitlines() if PJ_LINE.match(line)] == want
    assert f"warning: {cut_dog}: JPEG data ends before the image does" in ours.err


@pytest.mark.oracle
def test_valid_on_a_truncated_jpeg_writes_debian_darknets_lines(darknet_binary, debian_share, yolov3_tiny_weights,
                                                                cut_dog, tmp_path, monkeypatch):
    """comp4 lines (probabilities and corners) of `detector valid`, in the same order as Debian's (with three
    whole sample photos: pjreddie's valid loads 4 images at a time and crashes on shorter lists)."""
    names = debian_share / "data" / "coco.names"
    write_list(tmp_path / "list.txt", [cut_dog, *(debian_share / "data" / f"{n}.jpg" for n in ("eagle", "giraffe",
                                                                                                "horses"))])
    cfg = str(debian_share / "cfg" / "yolov3-tiny.cfg")
    for results in ("theirs", "ours"):
        (tmp_path / results).mkdir()
        write_data_file(tmp_path / f"{results}.data", classes=80, valid="list.txt", names=names, results=results)
    subprocess.run([darknet_binary, "detector", "valid", "theirs.data", cfg, str(yolov3_tiny_weights)],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)
    monkeypatch.chdir(tmp_path)
    ours = run_cli("detector", "valid", "ours.data", cfg, str(yolov3_tiny_weights), "--flavor", "pj")
    assert ours.code == 0, ours.output
    compared = cut = 0
    for theirs_file in sorted((tmp_path / "theirs").glob("comp4_det_test_*.txt")):
        want = [[float(v) for v in row.split()[1:]] for row in theirs_file.read_text().splitlines()]
        got = [[float(v) for v in row.split()[1:]] for row in (tmp_path / "ours" / theirs_file.name).read_text()
               .splitlines()]
        assert len(got) == len(want), theirs_file.name
        if want:
            np.testing.assert_allclose(np.array(got)[:, 0], np.array(want)[:, 0], atol=0.01)   # probability
            np.testing.assert_allclose(np.array(got)[:, 1:], np.array(want)[:, 1:], atol=1.0)  # corners, px
        compared += len(want)
        cut += sum(row.startswith("dog_cut ") for row in theirs_file.read_text().splitlines())
    assert compared > 20 and cut > 5


def test_predict_on_a_truncated_path_equals_predict_on_its_imread_array(debian_share, yolov3_tiny_weights,
                                                                         cut_dog, coco_data):
    detector = Detector(str(debian_share / "cfg" / "yolov3-tiny.cfg"), str(yolov3_tiny_weights), data=str(coco_data))
    with pytest.warns(UserWarning, match=re.escape(f"{cut_dog}: JPEG data ends before the image does")):
        from_path = detector.predict(str(cut_dog))
    from_array = detector.predict(cv2.imread(str(cut_dog)))
    assert len(from_path) >= 3 and from_path == from_array


@pytest.mark.parametrize("bad, expected", [
    (None, r"got None \(what cv2.imread returns for a file it cannot read\)"),
    (5, "got int"),
    (3.5, "got float"),
    ([None], r"got None"),
])
def test_predict_on_what_is_not_an_image_is_one_type_error(bad, expected):
    from helpers.paths import FIXTURES
    detector = Detector(str(FIXTURES / "eval" / "synth" / "cfg" / "tiny3.cfg"),
                        str(FIXTURES / "eval" / "tiny3" / "trained.weights"))
    with pytest.raises(TypeError, match=r"expected an image path \(str or os.PathLike\) or an \(H, W, 3\) BGR "
                                        r"uint8 numpy array as cv2.imread returns, " + expected):
        detector.predict(bad)
