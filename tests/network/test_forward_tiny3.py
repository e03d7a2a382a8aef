"""Forward pass of `tiny3` (a yolov3-tiny-shaped net, 128x128, 3 classes) against real Darknet dumps.

Golden data (tests/fixtures/tiny3, copied from the shared oracle fixtures): AlexeyAB (CPU build) ran
`trained.weights` on `ab_resize/input.f32` and dumped every layer's output (`ab_resize/plain`), the yolo
outputs of the BN-folded network that `detector test` runs (`ab_resize/fused`), and the detections after
`get_network_boxes` + `do_nms_sort(.45)`; pjreddie did the same on the same tensor (`pj_same_input`, yolo layers
only). `ab_letterbox` is the same image letterboxed.

Relative error of a layer: ``max|ours - darknet| / max(max|darknet|, 1e-12)``: one number per layer that does
not blow up on near-zero elements (leaky outputs are full of them) and that scales with the layer's range.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from darknet_py import load_network
from darknet_py.data.image import letterbox_size
from helpers.paths import FIXTURES

TINY3 = FIXTURES / "tiny3"
MAX_REL_ERR = 1e-4


def rel_err(ours: np.ndarray, darknet: np.ndarray) -> float:
    return float(np.abs(ours - darknet).max() / max(float(np.abs(darknet).max()), 1e-12))


def read_index(folder: str) -> dict:
    return json.loads((TINY3 / folder / "index.json").read_text())


def read_input(folder: str) -> torch.Tensor:
    return torch.from_numpy(np.fromfile(TINY3 / folder / "input.f32", dtype="<f4").reshape(1, 3, 128, 128))


def read_layer(folder: str, entry: dict) -> np.ndarray:
    return np.fromfile(TINY3 / folder / entry["file"], dtype="<f4").reshape(entry["out_chw"])


@pytest.fixture(scope="module")
def networks() -> dict:
    """The trained tiny3 network in eval mode, per flavor."""
    return {flavor: load_network(str(TINY3 / "tiny3.cfg"), str(TINY3 / "trained.weights"), flavor=flavor,
                                 batch=1).eval()
            for flavor in ("ab", "pj")}


def run(network, folder: str) -> list[np.ndarray]:
    with torch.inference_mode():
        return [o[0].numpy() for o in network.forward_all(read_input(folder))]


def yolo_entries(index: dict) -> list[dict]:
    return [e for e in index["layers"] if e["type"] == "yolo"]


# -- per-layer outputs ------------------------------------------------------------------------------------

def test_every_layer_matches_ab(networks):
    network = networks["ab"]
    index = read_index("ab_resize/plain")
    outputs = run(network, "ab_resize")
    assert len(outputs) == len(index["layers"]) == 24
    errors = {e["index"]: rel_err(outputs[e["index"]], read_layer("ab_resize/plain", e)) for e in index["layers"]}
    assert max(errors.values()) <= MAX_REL_ERR, errors


@pytest.mark.parametrize("folder", ["ab_resize/fused", "ab_letterbox/fused", "ab_letterbox/plain"])
def test_yolo_outputs_match_ab_variants(networks, folder):
    """`fused`: Darknet folded BN into the conv weights (same maths, other rounding)."""
    network = networks["ab"]
    index = read_index("ab_resize/plain")
    outputs = run(network, folder.split("/")[0])
    for entry in yolo_entries(index):
        assert rel_err(outputs[entry["index"]], read_layer(folder, entry)) <= MAX_REL_ERR


def test_yolo_outputs_match_pj(networks):
    """pjreddie's CPU batch norm divides by sqrt(var) + 1e-6: flavor pj must reproduce it."""
    network = networks["pj"]
    index = read_index("pj_same_input")
    outputs = run(network, "ab_resize")
    for entry in yolo_entries(index):
        assert rel_err(outputs[entry["index"]], read_layer("pj_same_input", entry)) <= MAX_REL_ERR


# -- detections -------------------------------------------------------------------------------------------
# Box correction and do_nms_sort are restated here from spec §12.2/§12.3 so that this test checks the
# model's decoding against Darknet without depending on the evaluation package.

def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one (x, y, w, h) box with many; zero overlap when either axis overlap is negative."""
    def overlap(c1, s1, c2, s2):
        return np.minimum(c1 + s1 / 2, c2 + s2 / 2) - np.maximum(c1 - s1 / 2, c2 - s2 / 2)
    ow = overlap(a[0], a[2], b[:, 0], b[:, 2])
    oh = overlap(a[1], a[3], b[:, 1], b[:, 3])
    inter = np.where((ow < 0) | (oh < 0), 0.0, ow * oh)
    return inter / (a[2] * a[3] + b[:, 2] * b[:, 3] - inter)


def do_nms_sort(boxes: np.ndarray, objectness: np.ndarray, probs: np.ndarray, thresh: float) -> np.ndarray:
    """Per class: sort by that class's prob, zero the prob of every later box overlapping an earlier
    non-zero one by IoU > thresh. Detections with objectness 0 take no part. Returns the new probs."""
    probs = probs.copy()
    live = np.flatnonzero(objectness != 0)
    for k in range(probs.shape[1]):
        order = live[np.argsort(-probs[live, k], kind="stable")]
        for n, i in enumerate(order):
            if probs[i, k] == 0:
                continue
            later = order[n + 1:]
            probs[later[box_iou(boxes[i], boxes[later]) > thresh], k] = 0
    return probs


def correct_boxes(boxes: np.ndarray, image_wh, net_wh, letterbox: bool) -> np.ndarray:
    if not letterbox:
        return boxes
    (iw, ih), (nw, nh) = image_wh, net_wh
    new_w, new_h = letterbox_size(iw, ih, nw, nh)
    out = boxes.copy()
    out[:, 0] = (boxes[:, 0] - (nw - new_w) / 2.0 / nw) / (new_w / nw)
    out[:, 1] = (boxes[:, 1] - (nh - new_h) / 2.0 / nh) / (new_h / nh)
    out[:, 2] = boxes[:, 2] * nw / new_w
    out[:, 3] = boxes[:, 3] * nh / new_h
    return out


def our_detections(network, outputs, thresh: float, image_wh, letterbox: bool):
    parts = [network.layers[i].detections(torch.from_numpy(outputs[i]), thresh) for i in network.detection_indices]
    boxes = torch.cat([p.boxes for p in parts]).numpy().astype(np.float64)
    objectness = torch.cat([p.objectness for p in parts]).numpy().astype(np.float64)
    probs = torch.cat([p.probs for p in parts]).numpy().astype(np.float64)
    return correct_boxes(boxes, image_wh, (network.net_options.width, network.net_options.height), letterbox), objectness, probs


def darknet_detections(index: dict, key: str):
    dets = index[key]
    return (np.array([d["bbox"] for d in dets]).reshape(-1, 4), np.array([d["objectness"] for d in dets]),
            np.array([d["prob"] for d in dets]).reshape(len(dets), -1))


def assert_same_detections(ours, theirs, tol=1e-4):
    """Same detections as a multiset: each Darknet detection has exactly one of ours with the same box
    (qsort is unstable, so the order after NMS is not compared)."""
    boxes, obj, probs = ours
    ref_boxes, ref_obj, ref_probs = theirs
    assert len(boxes) == len(ref_boxes)
    unmatched = set(range(len(boxes)))
    for b, o, p in zip(ref_boxes, ref_obj, ref_probs):
        hits = [i for i in unmatched if np.abs(boxes[i] - b).max() <= tol]
        assert len(hits) == 1, f"no unique match for Darknet box {b}"
        i = hits[0]
        unmatched.remove(i)
        assert abs(obj[i] - o) <= tol
        np.testing.assert_allclose(probs[i], p, atol=tol)


CASES = {  # fixture folder holding index.json, flavor, input folder
    "ab_resize": ("ab_resize/plain", "ab", "ab_resize"),
    "ab_letterbox": ("ab_letterbox/plain", "ab", "ab_letterbox"),
    "pj_same_input": ("pj_same_input", "pj", "ab_resize"),
}


@pytest.mark.parametrize("thresh", [0.25, 0.005])
@pytest.mark.parametrize("case", sorted(CASES))
def test_detections_reproduced(networks, case, thresh):
    folder, flavor, input_folder = CASES[case]
    network = networks[flavor]
    index = read_index(folder)
    boxes, obj, probs = our_detections(network, run(network, input_folder), thresh, index["image_wh"],
                                       bool(index["letterbox"]))
    assert_same_detections((boxes, obj, probs), darknet_detections(index, f"dets_thresh_{thresh}_pre_nms"))
    after = do_nms_sort(boxes, obj, probs, 0.45)
    assert_same_detections((boxes, obj, after), darknet_detections(index, f"dets_thresh_{thresh}_post_nms_0.45"))


def test_flavor_picks_the_forks_batch_norm(networks):
    """The two forks differ by ~3e-5 here (BN epsilon inside vs outside the sqrt); each flavor must be
    clearly closer to its own fork's dump, so the 1e-4 bound above is not hiding a flavor mix-up."""
    ab_index, pj_index = read_index("ab_resize/plain"), read_index("pj_same_input")
    for flavor, own, other in (("ab", ("ab_resize/plain", ab_index), ("pj_same_input", pj_index)),
                               ("pj", ("pj_same_input", pj_index), ("ab_resize/plain", ab_index))):
        outputs = run(networks[flavor], "ab_resize")
        for entry in yolo_entries(ab_index):
            i = entry["index"]
            near = rel_err(outputs[i], read_layer(own[0], own[1]["layers"][i]))
            far = rel_err(outputs[i], read_layer(other[0], other[1]["layers"][i]))
            assert near * 4 < far, (flavor, i, near, far)
