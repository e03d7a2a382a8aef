"""Every JSON file darknet_py writes is valid JSON (darknet_py/json_text.py): an untrained network whose
boxes overflow to inf still gives files a strict reader (no `inf`, `NaN`, `Infinity`) accepts, the
non-finite numbers as null; names with quotes are escaped. AlexeyAB writes `inf` there (README)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from darknet_py.eval.detections import DetectionArrays
from darknet_py.eval.valid import coco_lines, coco_document
from darknet_py.json_text import json_dumps
from darknet_py.network import Network, parse_cfg
from darknet_py.weights import load_weights, save_weights
from helpers.cli import run_cli
from helpers.datasets import write_data_file, write_names
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = EVAL / "synth" / "cfg" / "tiny3.cfg"
WEIGHTS = EVAL / "tiny3" / "trained.weights"
PICTURE = EVAL / "synth" / "JPEGImages" / "valid" / "00003.jpg"


def strict_json(path: Path):
    """json.loads refusing the non-standard constants Python accepts (NaN, Infinity)."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(Path(path).read_text(), parse_constant=refuse)


@pytest.fixture
def overflowing(tmp_path, monkeypatch) -> Path:
    """tiny3 with the w/h biases of its [yolo] inputs at 100: exp(100) is inf in float32, as an untrained
    network's can be; objectness biases at 10 so that the boxes are detected. Working directory: tmp_path."""
    network = Network(parse_cfg(CFG, batch=1))
    load_weights(network, WEIGHTS)
    with torch.no_grad():
        for index in network.detection_indices:
            biases = network.layers[index - 1].biases.view(3, 8)     # 3 anchors x (x, y, w, h, obj, 3 classes)
            biases[:, 2:4], biases[:, 4] = 100., 10.
    save_weights(network, tmp_path / "inf.weights")
    write_names(tmp_path / "quoted.names", ['say "cheese"', "back\\slash", "plain"])
    write_data_file(tmp_path / "obj.data", classes=3, names=tmp_path / "quoted.names")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "inf.weights"


def test_test_out_json_of_an_overflowing_network_is_valid(overflowing):
    result = run_cli("detector", "test", "obj.data", CFG, overflowing, PICTURE, "-out", "r.json", "-dont_show")
    assert result.code == 0, result.output
    objects = strict_json("r.json")[0]["objects"]
    assert objects and all(o["relative_coordinates"]["width"] is None for o in objects)
    assert all(math.isfinite(o["relative_coordinates"]["center_x"]) for o in objects)
    assert {o["name"] for o in objects} <= {'say "cheese"', "back\\slash", "plain"}
    assert any('"' in o["name"] or "\\" in o["name"] for o in objects)


def test_demo_json_of_an_overflowing_network_is_valid(overflowing, tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "in.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 120))
    picture = cv2.imread(str(PICTURE))
    for _ in range(2):
        writer.write(cv2.resize(picture, (160, 120)))
    writer.release()
    result = run_cli("detector", "demo", "obj.data", CFG, overflowing, "in.avi", "-json_file_output", "d.json",
                     "-dont_show")
    assert result.code == 0, result.output
    frames = strict_json("d.json")
    assert len(frames) == 2 and all(o["relative_coordinates"]["height"] is None
                                    for frame in frames for o in frame["objects"])


def test_coco_results_write_non_finite_numbers_as_null():
    dets = DetectionArrays(np.array([[10, 10, np.nan, 4]], np.float32), np.ones(1, np.float32),
                           np.array([[np.nan, .5]], np.float32))
    document = json.loads(coco_document(coco_lines(42, dets, 100, 100, "ab")),
                          parse_constant=lambda c: pytest.fail(c))
    assert [d["score"] for d in document] == [.5] and document[0]["bbox"][2] is None


def test_json_dumps_writes_null_for_inf_and_nan():
    """map -coco_out and the training log go through json_dumps."""
    assert json_dumps({"loss": math.inf, "boxes": [[-math.inf, 1.5]], "avg": (math.nan,)}) == \
        '{"loss": null, "boxes": [[null, 1.5]], "avg": [null]}'
