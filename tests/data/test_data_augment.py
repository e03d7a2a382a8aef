"""Training augmentation (spec §11.3): Darknet's own resize as golden data, then properties.

Golden: `tests/fixtures/data/input.f32` is AlexeyAB Darknet's `resize_image` of `image_decoded.f32` (its
stb_image decode of synth valid/00003.jpg). With jitter, flip and colour jitter off, the AB no-OpenCV
pipeline must produce exactly that network input."""
from __future__ import annotations

import colorsys
import dataclasses

import cv2
import numpy as np
import pytest

from darknet_py.data.augment import (MIXUP, MOSAIC, AugmentOptions, Crop, Sample, augment_ab,
                                     image_data_augmentation, image_data_augmentation_darknet,
                                     load_data_detection)
from darknet_py.data.hsv import distort_image, distort_image_u8
from darknet_py.data.image import place_image
from darknet_py.data.labels import BoxTransform, TruthSpec, fill_truth_detection
from darknet_py.errors import CfgError

NEUTRAL = dict(jitter=0.0, hue=0.0, saturation=1.0, exposure=1.0, flip=False)


def _options(flavor="ab", backend="darknet", size=(128, 128), **kw):
    base = dict(flavor=flavor, backend=backend, width=size[0], height=size[1], channels=3, classes=3,
                max_boxes=200 if flavor == "ab" else 90)
    return AugmentOptions(**{**base, **kw})


def _fixture(fixtures_dir, name, shape):
    return np.fromfile(fixtures_dir / "data" / name, dtype="<f4").reshape(shape)


def _records(fixtures_dir):
    return np.loadtxt(fixtures_dir / "data" / "labels_00003.txt", dtype=np.float32, ndmin=2)


class Fixed:
    """An ImageSource that hands out the given samples in turn."""

    def __init__(self, *samples):
        self.samples, self.n = samples, 0

    def draw(self, rng):
        self.n += 1
        return self.samples[(self.n - 1) % len(self.samples)]


def test_ab_no_opencv_pipeline_equals_darknet_resize(fixtures_dir):
    decoded = _fixture(fixtures_dir, "image_decoded.f32", (3, 160, 120))
    expected = _fixture(fixtures_dir, "input.f32", (3, 128, 128))
    records = _records(fixtures_dir)
    sample = Sample("valid/00003.jpg", decoded, records, "labels/00003.txt")
    image, truth, _ = load_data_detection(Fixed(sample), np.random.default_rng(0), _options(**NEUTRAL))
    assert image.shape == (3, 128, 128) and image.dtype == np.float32
    assert np.abs(image - expected).max() <= 1e-6      # well inside the 1/255 budget: Darknet's own resize
    got = sorted(map(tuple, np.round(truth[:4, [4, 0, 1, 2, 3]], 5)))
    assert got == sorted(map(tuple, np.round(records, 5)))


def test_loader_on_lossless_copy_equals_darknet_resize(fixtures_dir, tmp_path):
    """The whole loader path (list -> label path -> decode -> augment) on a PNG holding Darknet's decode."""
    from darknet_py.data.batch import network_input
    from darknet_py.data.loader import DetectionDataset, DetectionLoader
    decoded = _fixture(fixtures_dir, "image_decoded.f32", (3, 160, 120))
    expected = _fixture(fixtures_dir, "input.f32", (3, 128, 128))
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "labels").mkdir()
    rgb = np.rint(decoded * 255).astype(np.uint8).transpose(1, 2, 0)
    cv2.imwrite(str(tmp_path / "JPEGImages" / "00003.png"), rgb[:, :, ::-1])
    (tmp_path / "labels" / "00003.txt").write_bytes((fixtures_dir / "data" / "labels_00003.txt").read_bytes())
    dataset = DetectionDataset([str(tmp_path / "JPEGImages" / "00003.png")], _options(**NEUTRAL), seed=5, batch=2)
    batch = DetectionLoader(dataset).next_batch()
    assert tuple(batch.images.shape) == (2, 3, 128, 128) and tuple(batch.truth.shape) == (2, 200, 6)
    assert (network_input(batch.images, "cpu") - expected).abs().max().item() <= 1e-6
    assert (batch.truth[:, :, 0] > 0).sum(dim=1).tolist() == [4, 4]


def test_opencv_backend_neutral_is_cv_resize(fixtures_dir):
    rgb = np.rint(_fixture(fixtures_dir, "image_decoded.f32", (3, 160, 120)) * 255).astype(np.uint8)
    rgb = np.ascontiguousarray(rgb.transpose(1, 2, 0))
    sample = Sample("a.png", rgb, _records(fixtures_dir), "a.txt")
    image, _, _ = augment_ab(sample, np.random.default_rng(0), _options(backend="opencv", **NEUTRAL))
    expected = cv2.resize(rgb, (128, 128), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1) / 255.0
    assert np.abs(image - expected).max() < 1e-6


# -- boxes stay on their objects ------------------------------------------------------------------------
COLOURS = np.array([[230, 30, 30], [30, 200, 40], [40, 60, 220]], np.uint8)     # class 0, 1, 2
RECTS = [(0, 40, 30, 90, 70), (1, 150, 40, 60, 120), (2, 230, 150, 70, 70), (0, 60, 170, 50, 40)]


def _scene(width=320, height=240):
    """Grey background with flat rectangles (class, left, top, w, h); labels in Darknet's relative form."""
    rgb = np.full((height, width, 3), 128, np.uint8)
    labels = []
    for cls, left, top, w, h in RECTS:
        rgb[top:top + h, left:left + w] = COLOURS[cls]
        labels.append([cls, (left + w / 2) / width, (top + h / 2) / height, w / width, h / height])
    return rgb, np.array(labels, np.float32)


def _sample(opts):
    rgb, labels = _scene()
    pixels = rgb if opts.decodes_u8 else rgb.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    return Sample("scene.png", pixels, labels, "scene.txt")


def _check_boxes_cover_colours(image, truth, ring: bool):
    _, h, w = image.shape
    n = 0
    for x, y, bw, bh, cls, *_ in truth[truth[:, 0] != 0]:
        n += 1
        colour = COLOURS[int(cls)] / 255.0
        left, right, top, bottom = (x - bw / 2) * w, (x + bw / 2) * w, (y - bh / 2) * h, (y + bh / 2) * h
        inner = image[:, int(np.ceil(top)) + 2:int(bottom) - 2, int(np.ceil(left)) + 2:int(right) - 2]
        if inner.size:
            assert np.abs(inner - colour[:, None, None]).max() < 0.02, (x, y, bw, bh, cls)
        if not ring:
            continue
        for px, py in ((left - 3, y * h), (right + 3, y * h), (x * w, top - 3), (x * w, bottom + 3)):
            if 0 <= px < w and 0 <= py < h:
                assert np.abs(image[:, int(py), int(px)] - colour).max() > 0.2, "box smaller than its object"
    return n


@pytest.mark.parametrize("flavor, backend, extra", [
    ("ab", "opencv", {}), ("ab", "darknet", {}), ("ab", "opencv", dict(resize=1.5)),
    ("ab", "darknet", dict(letter_box=True)), ("pj", "darknet", {})])
def test_boxes_follow_the_transformed_image(flavor, backend, extra):
    opts = _options(flavor, backend, size=(160, 128), jitter=0.3, flip=True, **extra)
    boxes = 0
    for seed in range(25):
        image, truth, _ = load_data_detection(Fixed(_sample(opts)), np.random.default_rng(seed), opts)
        boxes += _check_boxes_cover_colours(image, truth, ring=True)
    assert boxes > 50


def test_mosaic_boxes_follow_their_quadrant_images():
    opts = _options("ab", "opencv", size=(192, 160), jitter=0.3, mosaic=True, mosaic_bound=True)
    boxes = 0
    for seed in range(25):
        image, truth, paths = load_data_detection(Fixed(_sample(opts)), np.random.default_rng(seed), opts, MOSAIC)
        assert len(paths) == 4
        assert ((truth[:, 0] == 0) | ((truth[:, 0] > 0) & (truth[:, 0] < 1))).all()
        boxes += _check_boxes_cover_colours(image, truth, ring=False)
    assert boxes > 50


def test_mosaic_without_bound_keeps_boxes_inside_the_image():
    opts = _options("ab", "opencv", size=(192, 160), jitter=0.3, mosaic=True)
    for seed in range(20):
        _, truth, _ = load_data_detection(Fixed(_sample(opts)), np.random.default_rng(seed), opts, MOSAIC)
        kept = truth[truth[:, 0] != 0]
        # AB truncates pixel edges toward zero before testing them, so up to one pixel may stick out
        assert len(kept) and (kept[:, 0] - kept[:, 2] / 2 > -1 / 192).all()
        assert (kept[:, 0] + kept[:, 2] / 2 < 1 + 1 / 192).all()
        assert (kept[:, 1] - kept[:, 3] / 2 > -1 / 160).all() and (kept[:, 1] + kept[:, 3] / 2 < 1 + 1 / 160).all()


@pytest.mark.parametrize("backend, new_first", [("opencv", False), ("darknet", True)])
def test_mixup_blends_images_and_appends_boxes(backend, new_first):
    rgb, labels = _scene()
    other = 255 - rgb
    a_labels, b_labels = labels[:2], labels[2:]
    opts = _options("ab", backend, mixup=True, **NEUTRAL)
    as_pixels = (lambda x: x) if opts.decodes_u8 else (lambda x: x.transpose(2, 0, 1) / np.float32(255))
    source = Fixed(Sample("a", as_pixels(rgb), a_labels, "a.txt"), Sample("b", as_pixels(other), b_labels, "b.txt"))
    image, truth, paths = load_data_detection(source, np.random.default_rng(0), opts, MIXUP)
    assert paths == ["a", "b"]
    first, second = (b_labels, a_labels) if new_first else (a_labels, b_labels)
    assert truth[:4, 4].tolist()[:2] in ([first[0, 0], first[1, 0]], [first[1, 0], first[0, 0]])
    assert sorted(truth[2:4, 4].tolist()) == sorted(second[:, 0].tolist()) and truth[4, 0] == 0
    if backend == "opencv":
        resize = lambda x: cv2.resize(x, (128, 128), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1) / 255.0
        np.testing.assert_allclose(image, 0.5 * resize(rgb) + 0.5 * resize(other), atol=1e-6)


def test_invalid_combinations_are_errors():
    with pytest.raises(CfgError, match="OpenCV"):
        _options("ab", "darknet", mosaic=True)
    with pytest.raises(CfgError, match="letter_box"):
        _options("ab", "opencv", mosaic=True, letter_box=True)
    with pytest.raises(CfgError, match="backend"):
        _options("ab", "pillow")


# -- flip ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["opencv", "darknet"])
def test_flip_mirrors_image_and_boxes(backend):
    opts = _options("ab", backend, size=(160, 128))
    pixels = _sample(opts).pixels
    crop = Crop(pleft=-20, pright=35, ptop=10, pbot=-5, swidth=305, sheight=235, flip=False)
    mirrored = dataclasses.replace(crop, flip=True)
    run = image_data_augmentation if backend == "opencv" else image_data_augmentation_darknet
    plain, flipped = run(pixels, crop, opts, 0.0, 1.0, 1.0), run(pixels, mirrored, opts, 0.0, 1.0, 1.0)
    assert np.array_equal(flipped, plain[:, :, ::-1])
    _, labels = _scene()
    spec = TruthSpec("ab", 3, 200, 160, 128)
    t = dict(dx=-20 / 320 / (305 / 320), dy=10 / 240 / (235 / 240), sx=320 / 305, sy=240 / 235)
    a = fill_truth_detection(labels, np.random.default_rng(1), spec, BoxTransform(**t), "s")
    b = fill_truth_detection(labels, np.random.default_rng(1), spec, BoxTransform(**t, flip=True), "s")
    np.testing.assert_allclose(b[:4, 0], 1 - a[:4, 0], atol=1e-6)
    np.testing.assert_array_equal(b[:4, 1:], a[:4, 1:])


# -- colour --------------------------------------------------------------------------------------------
def _colorsys_distort(im, dhue, dsat, dexp):
    """The spec's distort_image per pixel with Python's colorsys (same HSV definition as Darknet)."""
    out = np.empty(im.shape, np.float64)
    for y in range(im.shape[1]):
        for x in range(im.shape[2]):
            h, s, v = colorsys.rgb_to_hsv(*im[:, y, x].astype(np.float64))
            h += dhue
            h = h - 1 if h > 1 else h
            h = h + 1 if h < 0 else h
            out[:, y, x] = np.clip(colorsys.hsv_to_rgb(h, s * dsat, v * dexp), 0, 1)
    return out


@pytest.mark.parametrize("dhue, dsat, dexp", [(0.0, 1.0, 1.0), (0.07, 1.3, 0.8), (-0.2, 0.6, 1.4), (0.1, 0.5, 2.0)])
def test_distort_image_is_the_spec_hsv_jitter(dhue, dsat, dexp):
    rng = np.random.default_rng(0)
    im = rng.random((3, 12, 12), dtype=np.float32)
    im[:, 0, :3] = 0.4                      # grey pixels
    im[:, 0, 3] = 0.0                       # black
    im[:, 0, 4] = (0.9, 0.1, 0.3)           # hue 0.963: wraps past 1 with dhue 0.1
    np.testing.assert_allclose(distort_image(im, dhue, dsat, dexp), _colorsys_distort(im, dhue, dsat, dexp),
                               atol=3e-6)
    if (dhue, dsat, dexp) == (0.0, 1.0, 1.0):
        np.testing.assert_allclose(distort_image(im, dhue, dsat, dexp), im, atol=3e-6)      # round trip


def test_distort_image_hue_of_exactly_one_lands_in_darknets_last_sector():
    red = np.array([[[0.8]], [[0.2]], [[0.2]]], np.float32)        # hue 0
    np.testing.assert_allclose(distort_image(red, 1.0, 1.0, 1.0)[:, 0, 0], (0.8, 0.2, 0.8), atol=1e-6)


def test_place_image_is_darknets_bilinear_bit_for_bit():
    """Scalar transcription of the spec's place_image (zero outside the source, C float32 order)."""
    f = np.float32
    im = np.random.default_rng(3).random((3, 30, 40), dtype=np.float32)
    for w, h, dx, dy in ((50, 37, 3, -4), (20, 20, -5, 10), (64, 48, 0, 0)):
        got, want = np.full((3, 40, 60), 0.5, f), np.full((3, 40, 60), 0.5, f)
        place_image(im, w, h, dx, dy, got)
        for y in range(h):
            for x in range(w):
                if not (0 <= x + dx < 60 and 0 <= y + dy < 40):
                    continue
                rx, ry = f(f(x) / f(w)) * f(40), f(f(y) / f(h)) * f(30)
                ix, iy = int(np.floor(rx)), int(np.floor(ry))
                fx, fy = f(rx - f(ix)), f(ry - f(iy))
                p = lambda px, py: im[:, py, px] if px < 40 and py < 30 else np.zeros(3, f)
                want[:, y + dy, x + dx] = ((f(1) - fy) * (f(1) - fx) * p(ix, iy) + fy * (f(1) - fx) * p(ix, iy + 1)
                                           + (f(1) - fy) * fx * p(ix + 1, iy) + fy * fx * p(ix + 1, iy + 1))
        assert np.array_equal(got, want)


def test_opencv_hsv_neutral_and_saturating_hue():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    assert distort_image_u8(rgb, 0.0, 1.0, 1.0) is rgb
    reddish = np.zeros((1, 1, 3), np.uint8)
    reddish[0, 0] = (255, 40, 0)                                         # OpenCV hue 5 (of 180)
    assert cv2.cvtColor(reddish, cv2.COLOR_RGB2HSV)[0, 0, 0] == 5
    shifted = distort_image_u8(reddish, -0.1, 1.0, 1.0)                  # 5 - 17.9 saturates at 0
    hue = int(cv2.cvtColor(shifted, cv2.COLOR_RGB2HSV)[0, 0, 0])
    assert hue in (0, 179) and tuple(shifted[0, 0]) == (255, 0, 0)       # pure red, not wrapped to 167
