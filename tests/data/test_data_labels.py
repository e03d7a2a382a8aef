"""Label paths (spec §1.5), label files, list files and fill_truth_detection (§11.2) for both flavours.

Expected values are derived here from the spec's rules (string replacements, the correct_boxes formulas, the
biased shuffle), independently of the implementation."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from darknet_py.errors import DarknetWarning
from darknet_py.data.labels import (BoxTransform, TruthSpec, fill_truth_detection, label_path,
                                    label_path_candidates, read_labels, read_list)
from darknet_py.errors import DataFileError, LabelError


@pytest.mark.parametrize("image, ab, pj", [
    ("data/VOC/JPEGImages/000001.jpg", "data/VOC/labels/000001.txt", "data/VOC/labels/000001.txt"),
    ("/d/JPEGImages/a.JPG", "/d/labels/a.txt", "/d/labels/a.txt"),
    ("/d/JPEGImages/a.jpeg", "/d/labels/a.txt", "/d/labels/a.jpeg"),        # pj has no .jpeg rule
    ("/d/JPEGImages/a.JPEG", "/d/labels/a.txt", "/d/labels/a.txt"),
    ("/d/JPEGImages/a.png", "/d/labels/a.txt", "/d/labels/a.txt"),
    ("/d/JPEGImages/a.PNG", "/d/labels/a.txt", "/d/labels/a.PNG"),
    ("/d/JPEGImages/a.bmp", "/d/labels/a.txt", "/d/labels/a.bmp"),
    ("/coco/images/train2017/x.jpg", "/coco/labels/train2017/x.txt", "/coco/labels/train2017/x.txt"),
    ("/coco/images/val2014/x.jpg", "/coco/labels/val2014/x.txt", "/coco/labels/val2014/x.txt"),
    ("/d/images/x.jpg", "/d/images/x.txt", "/d/labels/x.txt"),             # AB has no generic /images/
    ("/d/raw/x.png", "/d/raw/x.txt", "/d/labels/x.txt"),
    ("/d/myimages/x.jpg", "/d/myimages/x.txt", "/d/mylabels/x.txt"),       # pj: plain substring
    ("/d/x.jpg.d/y.jpg", "/d/x.jpg.d/y.txt", "/d/x.txt.d/y.jpg"),          # AB: extension only at the end
    ("C:\\d\\JPEGImages\\a.jpg", "C:\\d\\labels\\a.txt", "C:\\d\\labels\\a.txt"),
    ("/d/JPEGImages/a.tif", "/d/labels/a.tif", "/d/labels/a.tif"),
])
def test_label_path_rules(image, ab, pj):
    assert label_path(image, "ab") == ab
    assert label_path(image, "pj") == pj
    assert label_path_candidates(image, "ab")[0] == ab
    assert label_path_candidates(image, "pj") == ([pj] if pj == ab else [pj, ab])


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_tree_with_mixed_extensions(tmp_path):
    """A Darknet tree: JPEGImages/ next to labels/, plus an images/ folder only pjreddie maps."""
    for name in ("a.jpg", "b.JPG", "c.jpeg", "d.png"):
        _write(tmp_path / "JPEGImages" / name, "not read here")
        _write(tmp_path / "labels" / (name.rsplit(".", 1)[0] + ".txt"), f"1 0.5 0.5 0.25 0.{len(name)}\n")
    _write(tmp_path / "images" / "e.jpg", "x")
    _write(tmp_path / "labels" / "e.txt", "2 0.1 0.2 0.3 0.4\n")
    for name in ("a.jpg", "b.JPG", "d.png"):
        for flavor in ("ab", "pj"):
            records = read_labels(label_path(str(tmp_path / "JPEGImages" / name), flavor), flavor)
            assert records.tolist() == [[1, 0.5, 0.5, 0.25, np.float32(0.5 if name != "b.JPG" else 0.5)]]
    assert len(read_labels(label_path(str(tmp_path / "JPEGImages" / "c.jpeg"), "ab"), "ab")) == 1
    with pytest.raises(LabelError) as err:           # pj maps no .jpeg: Darknet would read garbage/abort
        read_labels(label_path(str(tmp_path / "JPEGImages" / "c.jpeg"), "pj"), "pj")
    assert "c.jpeg" in str(err.value)
    image_e = str(tmp_path / "images" / "e.jpg")
    np.testing.assert_allclose(read_labels(label_path(image_e, "pj"), "pj"), [[2, 0.1, 0.2, 0.3, 0.4]])
    with pytest.warns(DarknetWarning, match="no objects"):     # AB looks for images/e.txt: no objects
        assert read_labels(label_path(image_e, "ab"), "ab").shape == (0, 5)


def test_missing_label_file(tmp_path):
    missing = str(tmp_path / "labels" / "nothing.txt")
    with pytest.warns(DarknetWarning, match="nothing.txt: label file not found"):
        assert read_labels(missing, "ab").shape == (0, 5)
    with pytest.raises(LabelError, match="nothing.txt"):
        read_labels(missing, "pj")


def test_bad_lines_are_warned_with_line_numbers_and_skipped(tmp_path):
    path = _write(tmp_path / "l.txt", "\n".join([
        "0 0.5 0.5 0.2 0.2",
        "garbage here",
        "1 0.5 0.5",
        "2 nan 0.5 0.1 0.1",
        "-1 0.5 0.5 0.1 0.1",
        "1.0 0.5 0.5 0.1 0.1",
        "3 0.1 0.1 0.1 0.1 4 .2 2e-1 1E-1 0.1",
        "",
        "  5\t0.3   0.3 0.1 0.1  \r",
    ]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read_labels(str(path), "ab")
    np.testing.assert_allclose(records, [[0, .5, .5, .2, .2], [3, .1, .1, .1, .1], [4, .2, .2, .1, .1],
                                         [5, .3, .3, .1, .1]], rtol=1e-7)
    lines = sorted(int(str(w.message).split(":")[1]) for w in caught)
    assert lines == [2, 3, 4, 5, 6]
    assert all(str(w.message).startswith(f"{path}:") for w in caught)


def test_read_list(tmp_path, monkeypatch):
    work, data = tmp_path / "work", tmp_path / "data"
    _write(work / "here.jpg", "x")
    _write(data / "imgs" / "there.jpg", "x")
    listing = _write(data / "train.txt", "here.jpg\r\n\n   \nimgs/there.jpg\nnowhere.jpg\n/abs/gone.jpg\n")
    monkeypatch.chdir(work)
    with pytest.warns(DarknetWarning) as caught:
        paths = read_list(str(listing))
    assert paths == ["here.jpg", str(data / "imgs" / "there.jpg"), "nowhere.jpg", "/abs/gone.jpg"]
    moved, missing = (str(w.message) for w in caught)
    assert "1 listed images were found relative to the list file's directory" in moved
    assert "2 of 4" in missing and "nowhere.jpg" in missing and str(data / "nowhere.jpg") in missing
    with pytest.raises(DataFileError, match="names no images"):
        read_list(str(_write(tmp_path / "empty.txt", "\n\n")))
    with pytest.raises(DataFileError, match="not found"):
        read_list(str(tmp_path / "absent.txt"))


# -- fill_truth_detection ------------------------------------------------------------------------------
def _spec(flavor, classes=3, max_boxes=90, net=416):
    return TruthSpec(flavor, classes, max_boxes, net, net)


def _reference_shuffle(n, seed):
    """The spec's biased shuffle: for i in order, swap element i with element rng.integers(n)."""
    order, rng = list(range(n)), np.random.default_rng(seed)
    for i in range(n):
        j = int(rng.integers(n))
        order[i], order[j] = order[j], order[i]
    return order


def _rows(truth):
    return {tuple(round(float(v), 5) for v in r[:5]) for r in truth if r[0] != 0}


def test_identity_transform_keeps_boxes_and_row_width():
    records = np.array([[0, .5, .5, .2, .2], [2, .25, .75, .1, .3]], np.float32)
    for flavor, width in (("pj", 5), ("ab", 6)):
        truth = fill_truth_detection(records, np.random.default_rng(0), _spec(flavor), BoxTransform(), "l.txt")
        assert truth.shape == (90, width) and truth.dtype == np.float32
        assert _rows(truth) == {(.5, .5, .2, .2, 0.), (.25, .75, .1, .3, 2.)}


def test_ab_track_id_is_file_index_plus_path_hash():
    h = 5381
    for byte in b"x/l.txt":
        h = (h * 33 + byte) % 2 ** 64
    records = np.array([[0, .5, .5, .2, .2], [1, .3, .3, .1, .1]], np.float32)
    truth = fill_truth_detection(records, np.random.default_rng(1), _spec("ab"), BoxTransform(), "x/l.txt")
    by_class = {int(r[4]): r[5] for r in truth[:2]}
    assert by_class == {0: (h % 4000) * 4000, 1: (h % 4000) * 4000 + 1}


def test_flavour_filters(recwarn):
    records = np.array([
        [0, .5, .5, .2, .2],          # fine
        [3, .5, .5, .2, .2],          # class >= classes: dropped (AB rule; pj too, see labels.py)
        [1, .5, .5, .002, .2],        # < 1 px of 416 (1/416 = .0024) but >= .001: AB drops, pj keeps
        [1, .5, .5, .0009, .2],       # < .001: both drop
        [1, .5, .5, .003, .2],        # >= 1 px: both keep
        [2, 0, 0, .2, .2],            # x == y == 0: Darknet marks it invalid
        [2, 1.2, .5, .2, .2],         # wholly right of the image: AB invalid; pj clamps to w = 0
        [2, .95, .5, .2, .2],         # partly outside: clamped to [.85, 1] by both
    ], np.float32)
    ab = _rows(fill_truth_detection(records, np.random.default_rng(2), _spec("ab"), BoxTransform(), "l"))
    pj = _rows(fill_truth_detection(records, np.random.default_rng(2), _spec("pj"), BoxTransform(), "l"))
    clamped = (.925, .5, .15, .2, 2.)
    assert ab == {(.5, .5, .2, .2, 0.), (.5, .5, .003, .2, 1.), clamped}
    assert pj == ab | {(.5, .5, .002, .2, 1.)}
    assert any("class_id = 3" in str(w.message) for w in recwarn)


def test_max_boxes_truncates_before_filtering():
    records = np.array([[0, .5, .5, .2, .2], [0, .5, .5, .0001, .2]] * 3, np.float32)
    spec = _spec("pj", max_boxes=3)
    for seed in range(20):
        order = _reference_shuffle(len(records), seed)
        expected = sum(records[i, 3] >= .001 for i in order[:3])
        truth = fill_truth_detection(records, np.random.default_rng(seed), spec, BoxTransform(), "l")
        assert int((truth[:, 0] != 0).sum()) == expected


def test_truth_order_follows_the_biased_shuffle():
    records = np.array([[c, .1 + .1 * c, .5, .05, .05] for c in range(6)], np.float32)
    for seed in range(5):
        truth = fill_truth_detection(records, np.random.default_rng(seed), _spec("ab", classes=6),
                                     BoxTransform(), "l")
        assert truth[:6, 4].astype(int).tolist() == _reference_shuffle(6, seed)


@pytest.mark.parametrize("flip", [False, True])
def test_correct_boxes_formula(flip):
    records = np.array([[1, .4, .6, .3, .2], [0, .1, .1, .3, .3]], np.float32)
    t = BoxTransform(dx=.1, dy=-.05, sx=1.3, sy=.8, flip=flip)
    truth = fill_truth_detection(records, np.random.default_rng(0), _spec("ab"), t, "l")
    got = {int(r[4]): r[:4] for r in truth[:2]}
    for cls, x, y, w, h in records.astype(np.float64):
        left, right = (x - w / 2) * t.sx - t.dx, (x + w / 2) * t.sx - t.dx
        top, bottom = (y - h / 2) * t.sy - t.dy, (y + h / 2) * t.sy - t.dy
        if flip:
            left, right = 1 - right, 1 - left
        left, right, top, bottom = np.clip([left, right, top, bottom], 0, 1)
        expected = [(left + right) / 2, (top + bottom) / 2, right - left, bottom - top]
        np.testing.assert_allclose(got[int(cls)], expected, atol=1e-6)
