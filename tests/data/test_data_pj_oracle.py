"""pjreddie augmentation against the real thing: Debian's libdarknet `load_data_detection` after `srand(seed)`,
and darknet_py's `augment_pj` fed the same glibc `rand()` stream (policy.GlibcRandom behind numpy's
Generator interface). Darknet draws the path, new_ar, dx/dy, hue/saturation/exposure, flip and the label
shuffle in the order augment_pj does, so the truth rows must be identical (to the ulp, see below) and the image
equal up to float rounding of the HSV conversion. Images are PNGs (lossless: both decoders give the same
bytes)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from darknet_py.data.augment import AugmentOptions, Sample, augment_pj
from darknet_py.data.labels import label_path, read_labels
from darknet_py.data.rand import GlibcRandom
from helpers.datasets import add_picture

LIBDARKNET = Path("/usr/lib/darknet/libdarknet.so")
CASES = [  # seed, net width, net height, jitter, hue, saturation, exposure
    (7, 160, 128, 0.3, 0.1, 1.5, 1.5), (1, 128, 128, 0.2, 0.0, 1.0, 1.0), (42, 96, 160, 0.5, 0.3, 2.0, 1.2),
    (123, 224, 96, 0.3, 0.05, 1.5, 1.5), (2024, 64, 64, 0.0, 0.1, 1.5, 1.5),
    (16, 96, 128, 0.8, 0.1, 1.5, 1.5)]       # new_ar < 1 and flipped
RUN_DARKNET = r"""
import ctypes, json, sys
import numpy as np
from ctypes import POINTER, c_char_p, c_float, c_int, c_void_p
class Matrix(ctypes.Structure):
    _fields_ = [("rows", c_int), ("cols", c_int), ("vals", POINTER(POINTER(c_float)))]
class Data(ctypes.Structure):
    _fields_ = [("w", c_int), ("h", c_int), ("X", Matrix), ("y", Matrix), ("shallow", c_int),
                ("num_boxes", POINTER(c_int)), ("boxes", c_void_p)]
lib = ctypes.CDLL(sys.argv[1])
lib.load_data_detection.restype = Data
lib.load_data_detection.argtypes = [c_int, POINTER(c_char_p), c_int, c_int, c_int, c_int, c_int,
                                    c_float, c_float, c_float, c_float]
libc = ctypes.CDLL("libc.so.6")
image, out = sys.argv[2], sys.argv[3]
for k, (seed, w, h, jitter, hue, sat, exp) in enumerate(json.loads(sys.argv[4])):
    libc.srand(seed)
    d = lib.load_data_detection(1, (c_char_p * 1)(image.encode()), 1, w, h, 90, 3, jitter, hue, sat, exp)
    np.save(f"{out}/x{k}.npy", np.ctypeslib.as_array(d.X.vals[0], shape=(d.X.cols,)).copy())
    np.save(f"{out}/y{k}.npy", np.ctypeslib.as_array(d.y.vals[0], shape=(d.y.cols,)).copy())
"""


class GlibcGenerator:
    """numpy-Generator-shaped access to glibc's rand(): random() is Darknet's (float)rand()/RAND_MAX and
    integers(n) is rand() % n."""

    def __init__(self, seed: int):
        self.glibc = GlibcRandom(seed)

    def random(self) -> float:
        return self.glibc.random()

    def integers(self, low: int, high: int | None = None) -> int:
        low, high = (0, low) if high is None else (low, high)
        return low + self.glibc.rand() % (high - low)


@pytest.fixture(scope="module")
def libdarknet(darknet_binary) -> Path:
    if not LIBDARKNET.is_file():
        if os.environ.get("DARKNET_PY_REQUIRE_ORACLES") == "1":
            pytest.fail(f"oracle required in CI but missing: {LIBDARKNET}")
        pytest.skip(f"{LIBDARKNET} missing")
    return LIBDARKNET


def _scene(root: Path) -> str:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    image[20:50, 30:70] = (40, 40, 200)
    return str(add_picture(root, "a.png", image, "0 0.38 0.38 0.31 0.33\n1 0.7 0.6 0.2 0.3\n2 0.5 0.5 0.9 0.9\n"
                                                 "1 0.1 0.9 0.0005 0.1\n0 0.95 0.1 0.2 0.15\n"))


def test_augment_pj_replays_pjreddie_load_data_detection(libdarknet, tmp_path):
    image = _scene(tmp_path)
    subprocess.run([sys.executable, "-c", RUN_DARKNET, str(libdarknet), image, str(tmp_path), json.dumps(CASES)],
                   check=True, capture_output=True)
    rgb = cv2.imread(image)[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    labels = label_path(image, "pj")
    for k, (seed, w, h, jitter, hue, sat, exp) in enumerate(CASES):
        rng = GlibcGenerator(seed)
        assert rng.integers(1) == 0                     # Darknet's get_random_paths draw (one path)
        options = AugmentOptions(flavor="pj", backend="darknet", width=w, height=h, channels=3, classes=3,
                                 max_boxes=90, jitter=jitter, hue=hue, saturation=sat, exposure=exp)
        got_image, got_truth = augment_pj(Sample(image, rgb, read_labels(labels, "pj"), labels), rng, options)
        want_image = np.load(tmp_path / f"x{k}.npy").reshape(3, h, w)
        want_truth = np.load(tmp_path / f"y{k}.npy").reshape(90, 5)
        np.testing.assert_array_equal(got_truth[:, [1, 3, 4]], want_truth[:, [1, 3, 4]])     # y, h, class
        # Debian's -Ofast build computes a flipped edge as (1 + dx) - edge·sx instead of the source's
        # 1 - (edge·sx - dx) (seen in its disassembly), so x and w of a flipped box may differ by one ulp.
        np.testing.assert_allclose(got_truth[:, [0, 2]], want_truth[:, [0, 2]], rtol=0, atol=1.2e-7)
        assert np.abs(got_image - want_image).max() < 1e-4, f"case {k}"


RUN_FILL_TRUTH = r"""
import ctypes, json, sys
import numpy as np
from ctypes import c_char_p, c_float, c_int
lib = ctypes.CDLL(sys.argv[1])
lib.fill_truth_detection.argtypes = [c_char_p, c_int, ctypes.POINTER(c_float), c_int, c_int,
                                     c_float, c_float, c_float, c_float]
libc = ctypes.CDLL("libc.so.6")
for k, image in enumerate(json.loads(sys.argv[3])):
    libc.srand(5)
    truth = (c_float * (90 * 5))()
    lib.fill_truth_detection(image.encode(), 90, truth, 3, 1, 0.05, -0.1, 1.2, 0.9)
    np.save(f"{sys.argv[2]}/t{k}.npy", np.ctypeslib.as_array(truth).copy())
"""


def test_pj_label_paths_and_fill_truth_match_libdarknet(libdarknet, tmp_path):
    """pjreddie's own fill_truth_detection finds the label file where label_path(.., 'pj') says (it aborts
    when it cannot) and fills the same truth (flip, shift and scale applied)."""
    images = [str(tmp_path / p) for p in ("d/images/a.jpg", "d/JPEGImages/b.JPG", "d/raw/c.png",
                                          "d/JPEGImages/e.JPEG", "d/myimages/f.jpg", "d/imagesX/JPEGImages/g.png")]
    for k, image in enumerate(images):
        label = Path(label_path(image, "pj"))
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(f"{k % 3} 0.4 0.5 0.3 0.2\n1 0.7 0.3 0.1 0.25\n0 0.1 0.1 0.0005 0.3\n")
    subprocess.run([sys.executable, "-c", RUN_FILL_TRUTH, str(libdarknet), str(tmp_path), json.dumps(images)],
                   check=True, capture_output=True)
    from darknet_py.data.labels import BoxTransform, TruthSpec, fill_truth_detection
    spec = TruthSpec("pj", 3, 90, 416, 416)
    for k, image in enumerate(images):
        labels = label_path(image, "pj")
        got = fill_truth_detection(read_labels(labels, "pj"), GlibcGenerator(5), spec,
                                   BoxTransform(0.05, -0.1, 1.2, 0.9, flip=True), labels)
        want = np.load(tmp_path / f"t{k}.npy").reshape(90, 5)
        np.testing.assert_array_equal(got[:, [1, 3, 4]], want[:, [1, 3, 4]])
        np.testing.assert_allclose(got[:, [0, 2]], want[:, [0, 2]], rtol=0, atol=1.2e-7)   # -Ofast flip, above
        assert (want[:, 0] > 0).sum() == 2
