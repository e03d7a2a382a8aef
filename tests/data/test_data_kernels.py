"""The compiled pjreddie kernels (optional extra `fast`, numba) give the numpy pipeline's arrays bit for bit:
same seeds, odd image and network sizes, through `augment_pj` and through the loader."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from darknet_py.data import kernels
from darknet_py.data.augment import AugmentOptions, Sample, augment_pj
from darknet_py.data.hsv import distort_image
from darknet_py.data.image import unit_float
from darknet_py.data.loader import DetectionDataset, DetectionLoader

pytest.importorskip("numba")
JITTER = dict(jitter=0.3, hue=0.5, saturation=1.5, exposure=1.5, flip=True)   # hue .5: wraps often


def _options(width, height, **kw):
    return AugmentOptions(flavor="pj", backend="darknet", width=width, height=height, channels=3, classes=3,
                          max_boxes=90, **{**JITTER, **kw})


def _photo(seed, width, height):
    """Smooth colour fields with saturated corners (hue wrap, clamping) and flat grey/black patches."""
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, (height // 7 + 2, width // 7 + 2, 3), dtype=np.uint8)
    rgb = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    rgb[:3, :3] = (255, 0, 0)
    rgb[-2:, :4] = 0
    rgb[:2, -5:] = 128
    return rgb


def _bits(a):
    return np.ascontiguousarray(a, np.float32).view(np.uint32)   # signed zeros count


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("image, network", [((97, 73), (96, 64)), ((640, 480), (416, 416)),
                                            ((61, 203), (67, 45)), ((320, 33), (128, 96))])
def test_compiled_pj_image_equals_numpy(seed, image, network):
    rgb = _photo(seed, *image)
    records = np.array([[0, 0.5, 0.5, 0.3, 0.4], [2, 0.2, 0.7, 0.1, 0.2]], np.float32)
    opts = _options(*network)
    fast = augment_pj(Sample("a.jpg", rgb, records, "a.txt"), np.random.default_rng(seed), opts)
    planes = unit_float(rgb.transpose(2, 0, 1))
    slow = augment_pj(Sample("a.jpg", planes, records, "a.txt"), np.random.default_rng(seed), opts)
    assert fast[0].flags.c_contiguous and fast[0].shape == (3, network[1], network[0])
    assert np.array_equal(_bits(fast[0]), _bits(slow[0]))
    assert np.array_equal(fast[1], slow[1])


@pytest.mark.parametrize("dhue, dsat, dexp", [(0.0, 1.0, 1.0), (0.3, 2.5, 0.7), (-0.45, 0.5, 1.9), (1.0, 1.0, 1.0)])
def test_compiled_hsv_steps_equal_distort_image(dhue, dsat, dexp):
    rng = np.random.default_rng(5)
    canvas = rng.random((3, 9, 35), dtype=np.float32) * np.float32(1.2)
    canvas[:, 0, :3] = 0.4
    canvas[:, 0, 3] = 0.0
    canvas[:, 0, 4] = (0.8, 0.2, 0.2)      # hue 0: with dhue 1 exactly Darknet's last sector
    f = np.float32
    want = distort_image(canvas, f(dhue), f(dsat), f(dexp))
    hsv = cv2.cvtColor(np.ascontiguousarray(canvas.transpose(1, 2, 0)), cv2.COLOR_RGB2HSV)
    kernels.shift_hsv(hsv, f(dhue), f(dsat), f(dexp))
    got = np.empty_like(canvas)
    kernels.clamp_to_planes(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), hsv, False, got)
    assert np.array_equal(_bits(got), _bits(want))


def test_loader_batches_equal_without_the_kernels(tmp_path, monkeypatch):
    paths = []
    for i, size in enumerate(((160, 120), (97, 73), (64, 200))):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), _photo(i, *size))
        (tmp_path / f"{i}.txt").write_text("1 0.5 0.5 0.2 0.3\n")
        paths.append(str(path))

    def batch():
        loader = DetectionLoader(DetectionDataset(paths, _options(75, 53), seed=4, batch=5))
        return loader.next_batch()

    fast = batch()
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    slow = batch()
    assert np.array_equal(_bits(fast.images.numpy()), _bits(slow.images.numpy()))
    assert np.array_equal(fast.truth.numpy(), slow.truth.numpy())
