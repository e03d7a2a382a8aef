"""`detector calc_anchors`: the shuffle equals glibc's `rand()` (called here through ctypes), and k-means on
boxes with an obvious clustering gives the cluster means and average IoU computed here by hand."""
from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from darknet_py.errors import DarknetError
from darknet_py.eval.anchors import sample_order
from darknet_py.data.rand import GlibcRandom
from helpers.cli import run_cli
from helpers.datasets import add_picture, write_data_file, write_list


def test_sample_order_is_darknets_fisher_yates_on_glibc_rand():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.srand(12345)
    expected = list(range(50))
    for i in range(49, -1, -1):
        j = libc.rand() % (i + 1)
        expected[i], expected[j] = expected[j], expected[i]
    assert sample_order(50, GlibcRandom(12345)).tolist() == expected


def _dataset(tmp_path, boxes_per_image):
    # empty image files: calc_anchors reads only the labels
    pictures = [add_picture(tmp_path, f"{i}.jpg", None, "".join(f"{c} 0.5 0.5 {w} {h}\n" for c, w, h in boxes))
                for i, boxes in enumerate(boxes_per_image)]
    write_list(tmp_path / "train.txt", pictures)
    write_data_file(tmp_path / "a.data", classes=3, train=tmp_path / "train.txt")


@pytest.mark.parametrize("seed", [1, 7, 2024])
def test_two_obvious_clusters(tmp_path, monkeypatch, seed):
    """Sizes (w, h) in pixels of a 100x100 input: small ones near 10x10, large ones near 60x80.
    Whatever the initial centres, the partition is {small}, {large}; centres are the member means:
    small (10+12+11)/3 = 11 by (10+10+13)/3 = 11, large (60+62)/2 = 61 by (80+78)/2 = 79.
    Avg IoU: each box vs its centre, IoU = min(w)·min(h) / (w·h + W·H − min(w)·min(h))."""
    small = [(.10, .10), (.12, .10), (.11, .13)]
    large = [(.60, .80), (.62, .78)]
    _dataset(tmp_path, [[(0, *small[0]), (2, *large[0])], [(0, *small[1]), (0, *small[2])], [(1, *large[1])]])
    monkeypatch.chdir(tmp_path)
    result = run_cli("detector", "calc_anchors", "a.data", "-num_of_clusters", "2", "-width", "100", "-height", "100",
                     "-seed", seed)
    assert result.code == 0, result.output
    assert (tmp_path / "anchors.txt").read_text() == " 11, 11,  61, 79"
    assert (tmp_path / "counters_per_class.txt").read_text() == "counters_per_class = 3, 1, 1"

    def iou(w, h, cw, ch):
        inter = min(w, cw) * min(h, ch)
        return inter / (w * h + cw * ch - inter)
    ious = [iou(w * 100, h * 100, 11, 11) for w, h in small] + [iou(w * 100, h * 100, 61, 79) for w, h in large]
    assert f" avg IoU = {100 * sum(ious) / 5:2.2f} % " in result.output


def test_calc_anchors_needs_width_and_height(tmp_path, monkeypatch):
    _dataset(tmp_path, [[(0, .1, .1)]])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DarknetError, match="-width"):
        run_cli("--debug", "detector", "calc_anchors", "a.data", "-num_of_clusters", "1")
    with pytest.raises(DarknetError, match="num_of_clusters"):
        run_cli("--debug", "detector", "calc_anchors", "a.data", "-num_of_clusters", "3", "-width", "10",
                "-height", "10")


def test_show_writes_cloud_png(tmp_path, monkeypatch):
    """AB's `-show` cloud.png: 700 x 700; the boxes of a 100 x 100 input at 7 px per pixel, coloured by
    cluster ((c·123+55)%255, (c·321+33)%255, (c·11+99)%255 RGB); white anchor rectangles from the origin
    (here 11 x 11 -> 77 x 77 and 61 x 79 -> 427 x 553)."""
    import cv2
    small = [(.10, .10), (.12, .10), (.11, .13)]
    large = [(.60, .80), (.62, .78)]
    _dataset(tmp_path, [[(0, *small[0]), (2, *large[0])], [(0, *small[1]), (0, *small[2])], [(1, *large[1])]])
    monkeypatch.chdir(tmp_path)
    result = run_cli("detector", "calc_anchors", "a.data", "-num_of_clusters", "2", "-width", "100", "-height", "100",
                     "-seed", "1", "-show")
    assert result.code == 0, result.output
    cloud = cv2.imread(str(tmp_path / "cloud.png"))
    assert cloud.shape == (700, 700, 3)
    white = (255, 255, 255)
    assert tuple(cloud[77, 40]) == white and tuple(cloud[40, 77]) == white        # 77 x 77 rectangle edges
    assert tuple(cloud[553, 200]) == white and tuple(cloud[300, 427]) == white    # 427 x 553
    def ab_bgr(c):
        return (c * 11 + 99) % 255, (c * 321 + 33) % 255, (c * 123 + 55) % 255
    large_colors = {tuple(int(v) for v in cloud[y, x]) for x, y in ((420, 560), (434, 546))}   # 60x80, 62x78
    small_colors = {tuple(int(v) for v in cloud[y, x]) for x, y in ((70, 70), (84, 70), (77 - 0, 91))}
    assert {*large_colors, *small_colors} == {ab_bgr(0), ab_bgr(1)}
    assert len(large_colors) == len(small_colors) == 1
