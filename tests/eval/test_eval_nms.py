"""NMS and box correction on hand-built cases; expected values derived in the comments."""
from __future__ import annotations

import numpy as np
import pytest

from darknet_py.eval.boxes import box_diou_matrix, box_iou, correct_yolo_boxes
from darknet_py.eval.detections import DetectionArrays
from darknet_py.eval.nms import apply_nms, do_nms_obj, do_nms_sort

# A and B: 0.2 x 0.2 boxes, B 0.05 to the right: intersection .15·.2 = .03, union .08 − .03 -> IoU .6
A, B, FAR = [.5, .5, .2, .2], [.55, .5, .2, .2], [.1, .1, .1, .1]


def _dets(boxes, objectness, probs):
    return DetectionArrays(np.array(boxes, np.float32), np.array(objectness, np.float32), np.array(probs, np.float32))


def test_iou_by_hand():
    assert box_iou(A, B) == pytest.approx(.6, abs=1e-6)
    assert box_iou(A, FAR) == 0


def test_do_nms_sort_per_class_and_final_order():
    """Class 0 order A(.9) B(.8) C(.3): B loses class 0 (IoU .6 > .45). Class 1 order B(.7) A(.1) C(0): A loses
    class 1. The array ends sorted by class 1: B, A, C."""
    out = do_nms_sort(_dets([A, B, FAR], [1, 1, 1], [[.9, .1], [.8, .7], [.3, 0]]), .45)
    np.testing.assert_allclose(out.boxes, np.array([B, A, FAR], np.float32))
    np.testing.assert_allclose(out.probs, [[0, .7], [.9, 0], [.3, 0]])


def test_zero_objectness_is_swapped_to_the_end():
    """[Z(objectness 0), X, Y]: Z swaps with the last element -> [Y, X, Z]; all probs equal, so the stable
    sorts keep that order."""
    z, x, y = [.1, .1, .1, .1], [.5, .5, .1, .1], [.9, .9, .1, .1]
    out = do_nms_sort(_dets([z, x, y], [0, .5, .5], [[0], [0], [0]]), .45)
    np.testing.assert_allclose(out.boxes, np.array([y, x, z], np.float32))


def test_do_nms_obj_zeroes_suppressed_boxes():
    out = do_nms_obj(_dets([B, A, FAR], [.8, .9, .5], [[.8, .1], [.9, .2], [.5, .5]]), .4)
    np.testing.assert_allclose(out.objectness, [.9, 0, .5])     # sorted by objectness: A, B, FAR
    np.testing.assert_allclose(out.probs, [[.9, .2], [0, 0], [.5, .5]])


def test_greedy_diou_nms():
    """Enclosing box .25 x .2 -> c² = .1025; centre distance² d² = .0025; DIoU = .6 − (d²/c²)^.6 ≈ .492.
    At NMS .5 the default NMS (IoU .6) suppresses B, greedynms (DIoU .492) keeps it."""
    diou = .6 - (.0025 / .1025) ** .6
    assert box_diou_matrix(np.array([A], np.float32), np.array([B], np.float32), .6)[0, 0] == pytest.approx(diou,
                                                                                                          abs=1e-5)
    dets = _dets([A, B], [1, 1], [[.9], [.8]])
    assert apply_nms(dets, .5).probs[:, 0].tolist() == pytest.approx([.9, 0])
    assert apply_nms(dets, .5, "greedynms").probs[:, 0].tolist() == pytest.approx([.9, .8])
    assert apply_nms(dets, .45, "diounms", beta_nms=.6).probs[:, 0].tolist() == pytest.approx([.9, 0])
    assert apply_nms(dets, 0).probs[:, 0].tolist() == pytest.approx([.9, .8])   # nms 0: none


def test_correct_yolo_boxes_letterbox_by_hand():
    """Image 200x100 into 100x100: letterbox new size 100x50, padded 25 rows top and bottom. A box at the
    network centre (.5, .5) with height .25 of the network is .5 of the image height; x and w unchanged.
    Without letterbox nothing changes; relative=False multiplies by the image size."""
    boxes = np.array([[.5, .5, .2, .25], [.3, .3, .1, .1]], np.float32)
    out = correct_yolo_boxes(boxes, 200, 100, 100, 100, relative=True, letter_box=True)
    np.testing.assert_allclose(out[0], [.5, .5, .2, .5], atol=1e-6)
    np.testing.assert_allclose(out[1], [.3, (.3 - .25) / .5, .1, .2], atol=1e-6)
    np.testing.assert_allclose(correct_yolo_boxes(boxes, 200, 100, 100, 100, True, False), boxes)
    np.testing.assert_allclose(correct_yolo_boxes(boxes, 200, 100, 100, 100, False, False)[0], [100, 50, 40, 25])


def _darknet_do_nms_sort(boxes, objectness, probs, thresh):
    """Darknet's `do_nms_sort` written as its C loops, one pair at a time (the reference for the vectorised
    version): zero-objectness boxes swapped to the end, then per class a stable sort and the greedy pass."""
    from darknet_py.eval.boxes import box_iou
    order = list(range(len(objectness)))
    k = len(order) - 1
    i = 0
    while i <= k:
        if objectness[order[i]] == 0:
            order[i], order[k] = order[k], order[i]
            k -= 1
        else:
            i += 1
    total = k + 1
    rows = [[boxes[r], objectness[r], list(probs[r])] for r in order]
    for c in range(probs.shape[1]):
        rows[:total] = sorted(rows[:total], key=lambda row: -row[2][c])
        for i in range(total):
            if rows[i][2][c] == 0:
                continue
            for j in range(i + 1, total):
                if box_iou(rows[i][0], rows[j][0]) > thresh:
                    rows[j][2][c] = 0
    return np.array([r[0] for r in rows]), np.array([r[2] for r in rows], np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_do_nms_sort_equals_darknets_loops_on_random_crowds(seed):
    rng = np.random.default_rng(seed)
    n, classes = 40, 4
    boxes = np.column_stack([rng.uniform(.3, .7, (n, 2)), rng.uniform(.05, .4, (n, 2))]).astype(np.float32)
    objectness = np.where(rng.random(n) < .15, 0, rng.uniform(.01, 1, n)).astype(np.float32)
    probs = np.where(rng.random((n, classes)) < .4, 0, rng.uniform(.005, 1, (n, classes))).astype(np.float32)
    probs[objectness == 0] = 0
    probs[:3] = probs[3]                                    # ties keep their order (stable sort)
    got = do_nms_sort(DetectionArrays(boxes, objectness, probs), .45)
    want_boxes, want_probs = _darknet_do_nms_sort(boxes, objectness, probs, .45)
    np.testing.assert_array_equal(got.boxes, want_boxes)
    np.testing.assert_array_equal(got.probs, want_probs)
    assert (want_probs == 0).sum() > (probs == 0).sum()     # something was suppressed
