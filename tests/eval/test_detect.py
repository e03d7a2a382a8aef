"""`detect()` and `darknet_py detector test` against real Darknet (tests/fixtures/eval, from AlexeyAB and
pjreddie CPU builds on the synth set with tiny3/trained.weights)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from darknet_py.errors import DarknetError
from darknet_py.eval.detect import detect, detect_arrays
from darknet_py.network import load_network
from helpers.cli import run_cli
from helpers.datasets import write_data_file
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = EVAL / "synth" / "cfg" / "tiny3.cfg"
WEIGHTS = EVAL / "tiny3" / "trained.weights"
IMAGE = "synth/JPEGImages/valid/00003.jpg"


@pytest.fixture(scope="module")
def decoded_00003() -> np.ndarray:
    """valid/00003.jpg exactly as Darknet's stb_image decoded it (no JPEG decoder difference)."""
    return np.fromfile(EVAL / "forward" / "valid_00003_decoded.f32", dtype=np.float32).reshape(3, 160, 120)


def _reference(name: str, thresh: str):
    dets = json.loads((EVAL / "forward" / name).read_text())[f"dets_thresh_{thresh}_post_nms_0.45"]
    return (np.array([d["bbox"] for d in dets], np.float32), np.array([d["objectness"] for d in dets]),
            np.array([d["prob"] for d in dets], np.float32))


@pytest.mark.parametrize("flavor,letter_box,name", [("ab", False, "ab_resize_index.json"),
                                                    ("ab", True, "ab_letterbox_index.json"),
                                                    ("pj", True, "pj_letterbox_index.json")])
@pytest.mark.parametrize("thresh", ["0.25", "0.005"])
def test_detections_equal_darknet_in_order(decoded_00003, flavor, letter_box, name, thresh):
    """Same input tensor as Darknet: every detection after do_nms_sort, in Darknet's array order."""
    network = load_network(str(CFG), str(WEIGHTS), flavor=flavor, batch=1)
    got = detect_arrays(network, decoded_00003, float(thresh), .45, letter_box)
    boxes, objectness, probs = _reference(name, thresh)
    assert len(got) == len(boxes)
    np.testing.assert_allclose(got.boxes, boxes, atol=2e-6)
    np.testing.assert_allclose(got.objectness, objectness, atol=2e-6)
    np.testing.assert_allclose(got.probs, probs, atol=2e-6)


def test_detect_returns_frozen_detections(decoded_00003):
    network = load_network(str(CFG), str(WEIGHTS), batch=1)
    dets = detect(network, decoded_00003, thresh=.005)
    boxes, _, probs = _reference("ab_resize_index.json", "0.005")
    assert [d.x for d in dets] == pytest.approx(boxes[:, 0].tolist(), abs=2e-6)
    assert dets[0].probs == pytest.approx(probs[0].tolist(), abs=2e-6)
    with pytest.raises(AttributeError):
        dets[0].x = 0.0
    pixels = detect(network, decoded_00003, thresh=.25, relative=False)
    assert pixels[0].w == pytest.approx(boxes[0, 2] * 120, abs=1e-3)


@pytest.fixture
def synth_cwd(tmp_path, monkeypatch) -> Path:
    """A working directory where `synth/...` resolves like in the Darknet runs behind the fixtures."""
    (tmp_path / "synth").symlink_to(EVAL / "synth")
    write_data_file(tmp_path / "obj.data", classes=3, names="synth/obj.names")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args: str) -> str:
    result = run_cli(*args)
    assert result.code == 0, result.output
    return result.output


BOX = re.compile(r"^(\w+): (\d+)%\t\(left_x: +(-?\d+) +top_y: +(-?\d+) +width: +(\d+) +height: +(\d+)\)$")


def _ab_lines(text: str) -> list[tuple]:
    return [tuple(int(v) if i else v for i, v in enumerate(m.groups()))
            for m in map(BOX.match, text.splitlines()) if m]


def _json_objects(path: Path) -> list[dict]:
    return [o for frame in json.loads(path.read_text()) for o in frame["objects"]]


@pytest.mark.parametrize("flags,suffix", [((), ""), (("-letter_box",), "_letterbox"),
                                          (("-thresh", "0.05"), "_thresh005")])
def test_detector_test_ab_matches_darknet(synth_cwd, flags, suffix):
    out = _run("detector", "test", "obj.data", str(CFG), str(WEIGHTS), IMAGE, "-ext_output", "-out",
               "result.json", *flags)
    reference = (EVAL / "cli" / "ab_tiny3" / f"test{suffix}.txt").read_text()
    assert f"{IMAGE}: Predicted in " in out and "milli-seconds." in out
    got, want = _ab_lines(out), _ab_lines(reference)
    assert [g[0] for g in got] == [w[0] for w in want]
    for g, w in zip(got, want):
        assert abs(g[1] - w[1]) <= 1 and max(abs(a - b) for a, b in zip(g[2:], w[2:])) <= 1
    got_objects = _json_objects(synth_cwd / "result.json")
    want_objects = _json_objects(EVAL / "cli" / "ab_tiny3" / f"result{suffix}.json")
    assert [o["class_id"] for o in got_objects] == [o["class_id"] for o in want_objects]
    for g, w in zip(got_objects, want_objects):
        assert g["confidence"] == pytest.approx(w["confidence"], abs=.005)
        for key, size in (("center_x", 120), ("center_y", 160), ("width", 120), ("height", 160)):
            assert abs(g["relative_coordinates"][key] - w["relative_coordinates"][key]) * size <= 1
    assert (synth_cwd / "predictions.jpg").stat().st_size > 0
    text = (synth_cwd / "result.json").read_text()
    assert text.startswith("[\n{\n \"frame_id\":1, \n \"filename\":\"synth/JPEGImages/valid/00003.jpg\", \n")
    assert text.endswith("\n ] \n}\n]")


@pytest.mark.parametrize("thresh,name", [(".25", "test.txt"), (".05", "test_thresh005.txt")])
def test_detector_test_pj_matches_darknet(synth_cwd, thresh, name):
    out = _run("detector", "test", "obj.data", str(CFG), str(WEIGHTS), IMAGE, "-thresh", thresh,
               "-out", "pjpred", "--flavor", "pj")
    reference = (EVAL / "cli" / "pj_tiny3" / name).read_text()
    pattern = re.compile(r"^(\w+): (\d+)%$")
    got = [m.groups() for m in map(pattern.match, out.splitlines()) if m]
    want = [m.groups() for m in map(pattern.match, reference.splitlines()) if m]
    assert [g[0] for g in got] == [w[0] for w in want]
    assert all(abs(int(g[1]) - int(w[1])) <= 1 for g, w in zip(got, want))
    assert re.search(r"Predicted in \d+\.\d{6} seconds\.", out)
    assert (synth_cwd / "pjpred.jpg").is_file()


def test_detector_test_rejects_too_few_names(synth_cwd):
    (synth_cwd / "two.names").write_text("a\nb\n")
    write_data_file(synth_cwd / "bad.data", names="two.names")
    with pytest.raises(DarknetError) as error:
        run_cli("--debug", "detector", "test", "bad.data", CFG, WEIGHTS, IMAGE)
    assert "two.names" in str(error.value) and "classes=3" in str(error.value)


def test_detector_test_reads_paths_from_stdin_and_saves_labels(tmp_path, monkeypatch):
    """No IMAGE: Darknet's `Enter Image Path: ` loop. -save_labels writes `class x y w h` (%2.4f) for each
    box whose best class is > thresh into the label path AB derives (/JPEGImages/ -> /labels/)."""
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "JPEGImages" / "a.jpg").write_bytes((EVAL / "synth" / "JPEGImages" / "valid" / "00003.jpg")
                                                    .read_bytes())
    write_data_file(tmp_path / "obj.data", classes=3, names=EVAL / "synth" / "obj.names")
    monkeypatch.chdir(tmp_path)
    result = run_cli("detector", "test", "obj.data", CFG, WEIGHTS, "-thresh", ".05", "-save_labels",
                     input=f"{tmp_path}/JPEGImages/a.jpg\n")
    assert result.code == 0, result.output
    assert result.output.startswith(f"Enter Image Path: {tmp_path}/JPEGImages/a.jpg: Predicted in ")
    assert result.output.rstrip().endswith("Enter Image Path:")
    rows = [line.split() for line in (tmp_path / "labels" / "a.txt").read_text().splitlines()]
    # result_thresh005.json: three boxes, best classes triangle, triangle, rect
    assert [r[0] for r in rows] == ["2", "2", "0"]
    assert [float(v) for v in rows[0][1:]] == pytest.approx([0.1725, 0.6187, 0.2870, 0.3417], abs=2e-4)


def test_network_predict_restores_training_mode(decoded_00003):
    from darknet_py.eval.detect import network_predict
    network = load_network(str(CFG), str(WEIGHTS), batch=1)
    network.train()
    network_predict(network, np.zeros((3, 128, 128), np.float32))
    assert network.training


@pytest.mark.oracle
def test_detector_test_pj_equals_debian_darknet(darknet_binary, debian_share, yolov3_tiny_weights, tmp_path,
                                                monkeypatch):
    """The real Debian darknet and darknet_py --flavor pj print the same lines for dog.jpg (yolov3-tiny)."""
    import subprocess
    (tmp_path / "t.data").write_text(f"names={debian_share}/data/coco.names\n")
    args = ["detector", "test", "t.data", str(debian_share / "cfg" / "yolov3-tiny.cfg"), str(yolov3_tiny_weights),
            str(debian_share / "data" / "dog.jpg"), "-thresh", ".25", "-out", "pred"]
    theirs = subprocess.run([darknet_binary, *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300).stdout
    monkeypatch.chdir(tmp_path)
    ours = _run(*args, "--flavor", "pj")
    pattern = re.compile(r"^\w[\w ]*: \d+%$")
    want = [line for line in theirs.splitlines() if pattern.match(line)]
    assert len(want) >= 5
    assert [line for line in ours.splitlines() if pattern.match(line)] == want
    assert (tmp_path / "pred.jpg").is_file()
