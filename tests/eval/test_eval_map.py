"""`detector map` against AlexeyAB's real printouts on the synth valid set (tests/fixtures/eval/cli/ab_tiny3),
and AP arithmetic on hand-built cases whose values are derived here by hand."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from darknet_py.config.data import parse_data
from darknet_py.data.image import load_image
from darknet_py.eval.average_precision import average_precision
from darknet_py.eval.detect import detect_arrays
from darknet_py.eval.detections import DetectionArrays
from darknet_py.eval.images import read_truth, valid_list
from darknet_py.eval.map import MAP_DETECTION_THRESH, MAP_NMS, MapAccumulator
from darknet_py.network import load_network
from helpers.cli import run_cli
from helpers.datasets import write_data_file, write_list
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = EVAL / "synth" / "cfg" / "tiny3.cfg"
WEIGHTS = EVAL / "tiny3" / "trained.weights"
CLASS_LINE = re.compile(r"class_id = (\d+), name = (\w+), ap = ([\d.]+)%   \t \(TP = (\d+), FP = (\d+)\) ")
MAP_LINE = re.compile(r" mean average precision \(mAP@([\d.]+)\) = ([\d.]+), or ([\d.]+) % ")


def parse_map(text: str) -> dict:
    return {"classes": [(int(a), b, float(c), int(d), int(e)) for a, b, c, d, e in CLASS_LINE.findall(text)],
            "map": float(MAP_LINE.search(text).group(2)),
            "totals": re.search(r"TP = (\d+), FP = (\d+), FN = (\d+)", text).groups()}


def assert_same_map(got: dict, want: dict) -> None:
    assert [c[:2] for c in got["classes"]] == [c[:2] for c in want["classes"]]
    for g, w in zip(got["classes"], want["classes"]):
        assert abs(g[2] - w[2]) <= 0.05, (g, w)      # AP in percent
        assert g[3:] == w[3:], (g, w)                # TP, FP at -thresh
    assert abs(got["map"] - want["map"]) <= 0.0005
    assert got["totals"] == want["totals"]


def synth_dir(root: Path) -> Path:
    """``root`` laid out like the Darknet runs' directory: synth/, valid.txt (relative paths), obj.data."""
    (root / "synth").symlink_to(EVAL / "synth")
    images = sorted((EVAL / "synth" / "JPEGImages" / "valid").glob("*.jpg"))
    write_list(root / "valid.txt", (f"synth/JPEGImages/valid/{p.name}" for p in images))
    write_data_file(root / "obj.data", classes=3, valid="valid.txt", names="synth/obj.names")
    return root


@pytest.fixture(scope="module")
def map_run(tmp_path_factory):
    """One `detector map ... -coco_out` run in a directory laid out like the Darknet run's: (cwd, output)."""
    root = synth_dir(tmp_path_factory.mktemp("map"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = run_cli("detector", "map", "obj.data", CFG, WEIGHTS, "-coco_out", "coco_results.json")
    assert result.code == 0, result.output
    return root, result.output


@pytest.fixture(scope="module")
def synth_detections(tmp_path_factory):
    """Detections (map settings) and truth of all 100 valid images, computed once."""
    root = synth_dir(tmp_path_factory.mktemp("synth"))
    network = load_network(str(CFG), str(WEIGHTS), batch=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        paths = [str(root / p) for p in valid_list(parse_data("obj.data"))]
    images = [(path, load_image(path, 3)) for path in paths]
    return [(detect_arrays(network, image, MAP_DETECTION_THRESH, MAP_NMS), read_truth(path, 3), image.shape)
            for path, image in images]


def test_detector_map_cli_reproduces_darknet(map_run):
    root, output = map_run
    want = (EVAL / "cli" / "ab_tiny3" / "map.txt").read_text()
    assert_same_map(parse_map(output), parse_map(want))
    for line in (" for conf_thresh = 0.25, precision = 0.33, recall = 0.05, F1-score = 0.09 ",
                 " IoU threshold = 50 %, used Area-Under-Curve for each unique Recall ",
                 " `-points 0` (AUC) for ImageNet, PascalVOC 2010-2012, your custom dataset"):
        assert line in output.splitlines() and line in want.splitlines()
    assert "COCO (pycocotools" in output
    assert json.loads((root / "coco_results.json").read_text())


@pytest.mark.parametrize("points,iou,name", [(11, .5, "map_points11.txt"), (101, .5, "map_points101.txt"),
                                             (0, .75, "map_iou75.txt")])
def test_map_variants_reproduce_darknet(synth_detections, points, iou, name):
    acc = MapAccumulator(3, .25, iou, points)
    for dets, truth, _ in synth_detections:
        acc.add_image(dets, truth)
    result = acc.result(("rect", "ellipse", "triangle"), coco=False)
    got = parse_map("\n".join(result.report_lines()))
    assert_same_map(got, parse_map((EVAL / "cli" / "ab_tiny3" / name).read_text()))
    assert f"used {points} Recall-points" in "\n".join(result.report_lines()) or points == 0


def test_coco_numbers_equal_pycocotools_on_written_json(map_run):
    """The COCO line equals pycocotools run here on the JSON the command wrote and on ground truth built
    here from the label files."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    import contextlib
    import io
    import cv2

    root, output = map_run
    out_json = root / "coco_results.json"
    printed = re.search(r"mAP@\[\.5:\.95\] = ([\d.]+), mAP@0.50 = ([\d.]+)", output).groups()
    images, annotations = [], []
    for image_id, line in enumerate((root / "valid.txt").read_text().split()):
        line = str(root / line)
        h, w = cv2.imread(line).shape[:2]
        images.append({"id": image_id, "width": w, "height": h})
        label = Path(line.replace("JPEGImages", "labels").replace(".jpg", ".txt")).read_text().split("\n")
        for row in filter(None, label):
            c, x, y, bw, bh = row.split()
            x, y, bw, bh = float(x) * w, float(y) * h, float(bw) * w, float(bh) * h
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(c),
                                "bbox": [x - bw / 2, y - bh / 2, bw, bh], "area": bw * bh, "iscrowd": 0})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c} for c in range(3)]}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(str(out_json)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert float(printed[0]) == pytest.approx(evaluation.stats[0], abs=1e-6)
    assert float(printed[1]) == pytest.approx(evaluation.stats[1], abs=1e-6)


# -- hand-built cases -------------------------------------------------------------------------------
def test_ap_by_hand_one_class():
    """Ranked TP, FP, TP, FP, TP with 4 ground-truth boxes.
    precision after each: 1, 1/2, 2/3, 2/4, 3/5; recall: .25, .25, .5, .5, .75.
    AUC: recall steps .25 at ranks 1, 3, 5 times the best precision from there on (1, 2/3, 3/5)
         = .25·1 + .25·2/3 + .25·3/5 = 0.5666...
    11 points: r = 0, .1, .2 -> 1; .3, .4, .5 -> 2/3; .6, .7 -> 3/5; .8, .9, 1 -> 0: (3 + 2 + 1.2)/11.
    101 points: r <= .25 (26 points) -> 1; .26...50 (25) -> 2/3; .51...75 (25) -> 3/5; rest 0."""
    tp = np.array([1, 0, 1, 0, 1], dtype=bool)
    assert average_precision(tp, 4, 0) == pytest.approx(.25 + .25 * 2 / 3 + .25 * 3 / 5)
    assert average_precision(tp, 4, 11) == pytest.approx((3 * 1 + 3 * 2 / 3 + 2 * 3 / 5) / 11)
    assert average_precision(tp, 4, 101) == pytest.approx((26 * 1 + 25 * 2 / 3 + 25 * 3 / 5) / 101)
    assert average_precision(np.zeros(0, bool), 4, 0) == 0


def _dets(boxes, probs):
    boxes = np.array(boxes, np.float32)
    probs = np.array(probs, np.float32)
    return DetectionArrays(boxes, probs.max(axis=1), probs)


def test_map_records_by_hand():
    """Image 1: truth A (class 0) at (.25,.25,.2,.2); truth B (class 1) at (.75,.75,.2,.2).
    Detections: d0 on A, class 0 .9 and class 1 .3 (class-1 record matches nothing: FP);
                d1 on A slightly shifted (IoU .6), class 0 .8 -> same truth again: FP in the ranking;
                d2 far away, class 1 .2 (below -thresh .25, FP in the ranking only).
    Image 2 (no truth of class 2, one truth of class 0 never found): d0 class 2 .5 -> FP.
    Ranking by prob: .9 (c0 TP), .8 (c0 FP, truth used), .5 (c2 FP), .3 (c1 FP), .2 (c1 FP).
    Class 0: 2 truths, TP at rank 1 only -> precision 1 at recall .5 -> AUC AP .5.
    Class 1: 1 truth, no TP -> 0. Class 2: no truth -> 0, still counted: mAP = .5/3."""
    acc = MapAccumulator(classes=3, thresh=.25, iou_thresh=.5, points=0)
    truth1 = np.array([[0, .25, .25, .2, .2], [1, .75, .75, .2, .2]], np.float32)
    shifted = .30   # 0.05 to the right: intersection .15·.2 = .03, union .08 − .03 -> IoU .6 > .5
    acc.add_image(_dets([[.25, .25, .2, .2], [shifted, .25, .2, .2], [.5, .1, .1, .1]],
                        [[.9, .3, 0], [.8, 0, 0], [0, .2, 0]]), truth1)
    acc.add_image(_dets([[.5, .5, .3, .3]], [[0, 0, .5]]), np.array([[0, .1, .1, .05, .05]], np.float32))
    result = acc.result(("a", "b", "c"), coco=False)
    assert [c.ap for c in result.per_class] == pytest.approx([.5, 0, 0])
    assert result.mean_ap == pytest.approx(.5 / 3)
    assert [(c.tp, c.fp) for c in result.per_class] == [(1, 1), (0, 1), (0, 1)]
    assert result.detections_count == 5 and result.unique_truth_count == 3
    assert result.avg_iou == pytest.approx(1 / 4)    # one TP with IoU 1, over TP + FP = 4


def test_difficult_boxes_are_not_false_positives_in_ap():
    """A detection matching only a 'difficult' box is dropped from AP (but Darknet still counts it FP at
    the threshold)."""
    acc = MapAccumulator(classes=1, thresh=.25, iou_thresh=.5)
    acc.add_image(_dets([[.25, .25, .2, .2], [.75, .75, .2, .2]], [[.9], [.95]]),
                  np.array([[0, .25, .25, .2, .2]], np.float32),
                  difficult=np.array([[0, .75, .75, .2, .2]], np.float32))
    result = acc.result(("a",), coco=False)
    assert result.detections_count == 1
    assert result.per_class[0].ap == pytest.approx(1.0)
    assert (result.per_class[0].tp, result.per_class[0].fp) == (1, 1)


def test_map_on_a_network_resized_by_multiscale_training(tmp_path, monkeypatch):
    """`-map` during training: a network that multiscale resized to 96x96 is evaluated at the cfg's 128x128
    (same numbers as a fresh network) and handed back at 96x96."""
    from darknet_py.eval.map import validate_detector_map
    root = synth_dir(tmp_path)
    monkeypatch.chdir(root)
    (root / "few.txt").write_text("".join(f"synth/JPEGImages/valid/{i:05d}.jpg\n" for i in range(4)))
    (root / "obj.data").write_text("classes=3\nvalid=few.txt\nnames=synth/obj.names\n")
    fresh = validate_detector_map(load_network(str(CFG), str(WEIGHTS), batch=1), "obj.data", coco=False)
    network = load_network(str(CFG), str(WEIGHTS), batch=1)
    network.resize(96, 96)
    network.train()
    resized = validate_detector_map(network, "obj.data", coco=False)
    assert resized.report_lines() == fresh.report_lines()
    assert network.training and network.layers[16].net_w == 96


def test_map_plots_are_drawn_from_the_printed_matches(tmp_path, monkeypatch, synth_detections):
    """`detector map --plots DIR`: the area under each drawn precision-recall curve is the printed AP of
    that class; the confusion matrix's diagonal is each class's printed TP, a column sums to TP + FP and a
    row to the class's truths; the PNGs open and are not blank."""
    pytest.importorskip("matplotlib", reason="the [plots] extra is not installed (the test extra has it)")
    import cv2
    from darknet_py.eval.map_plots import confusion_matrix
    trapezoid = getattr(np, "trapezoid", None) or np.trapz          # numpy < 2 names it trapz

    root = synth_dir(tmp_path)
    monkeypatch.chdir(root)
    result = run_cli("detector", "map", "obj.data", CFG, WEIGHTS, "--plots", "plots")
    assert result.code == 0, result.output
    printed = parse_map(result.output)
    curves = json.loads((root / "plots" / "pr_curves.json").read_text())
    for class_id, name, ap_percent, tp, fp in printed["classes"]:
        area = trapezoid(curves[name]["precision"], curves[name]["recall"])
        assert abs(area * 100 - ap_percent) <= 0.005, name          # the printout has 2 decimals
    for picture in ("pr_curve.png", "f1_curve.png", "confusion_matrix.png"):
        image = cv2.imread(str(root / "plots" / picture))
        assert image is not None and image.shape[0] >= 400 and image.std() > 10, picture

    acc = MapAccumulator(classes=3, thresh=.25, iou_thresh=.5)
    for dets, truth, _ in synth_detections:
        acc.add_image(dets, truth)
    matrix = confusion_matrix(acc.records, acc.truths, 3, .25, .5)
    assert list(np.diag(matrix)[:3]) == [c[3] for c in printed["classes"]]
    assert list(matrix[:, :3].sum(axis=0)) == [c[3] + c[4] for c in printed["classes"]]
    assert list(matrix[:3].sum(axis=1)) == list(acc.gt_counts())
    assert matrix[3, 3] == 0


def test_map_plots_without_matplotlib_is_one_clear_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    result = run_cli("detector", "map", tmp_path / "x.data", "x.cfg", "x.weights", "--plots", str(tmp_path / "p"))
    assert result.code == 1 and "Traceback" not in result.err
    assert "--plots needs matplotlib" in result.err and "darknet_py[plots]" in result.err
