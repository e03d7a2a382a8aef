"""The loader's output for a fixed seed, pinned by hash (issue #15): speed work on the data pipeline must not
change a single image value, truth row, image choice or random draw. The hashes were recorded from the
pipeline as it was before that work (float32 batches built in the workers); a change that alters any output
value, or the number of random numbers a slot consumes, changes them."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from darknet_py.data.batch import network_input
from darknet_py.data.augment import AugmentOptions, chunk_mode, load_data_detection
from darknet_py.data.loader import (CHUNK_STREAM, SLOT_STREAM, DetectionDataset, DetectionLoader, chunk_of,
                                    slot_rng)
from helpers.datasets import add_picture

SEED, BATCH = 11, 6
AUGMENT = dict(jitter=0.3, hue=0.1, saturation=1.5, exposure=1.5, flip=True)
FLAVOURS = {
    "pj": dict(flavor="pj", backend="darknet"),
    "ab-darknet": dict(flavor="ab", backend="darknet", mixup=True),
    "ab-opencv": dict(flavor="ab", backend="opencv"),
    "ab-opencv-mixup": dict(flavor="ab", backend="opencv", mixup=True),
    "ab-opencv-mosaic": dict(flavor="ab", backend="opencv", mosaic=True),
}
EXPECTED = {
    'ab-darknet': '631b1c52535b22ca87e68100260bdceceaa9622fc19e853a88a0e340a28101e6',
    'ab-opencv': 'b28adf2dbee330864ef360a9bbd72d6ce37eeec2a68eb1b398bb415e384bed61',
    'ab-opencv-mixup': 'db2b4b0a9a2b7e1b2249e201dfd7d44f098f74aecee8aaadc4d7f020b878e215',
    'ab-opencv-mosaic': '946d0a013bbb129508518c56b0a7a1e05f1ad1343ef8eaf0e39595c2b3abf31c',
    'pj': '7d19c74d67e01776705650ae095e4dcd158cb08e1784eb2850588040ac34a256',
}


def _tree(root):
    """In ``root`` (the current directory: AB's track ids hash the image path, which must not depend on
    where the test runs), seven PNGs (lossless, so the decoded pixels do not depend on the encoder) of different sizes and
    aspect ratios, smooth enough that interpolation and HSV jitter matter, with 1-4 boxes each."""
    rng = np.random.default_rng(2026)
    paths = []
    for i, (w, h) in enumerate(((160, 120), (120, 160), (200, 112), (97, 73), (128, 128), (150, 90), (64, 200))):
        noise = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        image = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
        boxes = rng.uniform(0.1, 0.9, (1 + i % 4, 4)) * (1, 1, 0.5, 0.5)
        labels = "".join(f"{k % 3} {x:.4f} {y:.4f} {bw:.4f} {bh:.4f}\n" for k, (x, y, bw, bh) in enumerate(boxes))
        paths.append(str(add_picture(root / "data", f"{i}.png", image, labels).relative_to(root)))
    return paths


def _options(name):
    kw = FLAVOURS[name]
    return AugmentOptions(width=96, height=64, channels=3, classes=3,
                          max_boxes=90 if kw["flavor"] == "pj" else 20, **AUGMENT, **kw)


def _network_input(batch):
    """The float32 images the network is fed (uint8 batches are converted on the training device)."""
    return network_input(batch.images, "cpu").numpy()


def _digest(name, paths, num_workers=0):
    """Three batches (the third after a multiscale resize): images, truth, image choices, and how far each
    slot's random stream advanced (the next number it would draw)."""
    options = _options(name)
    dataset = DetectionDataset(paths, options, SEED, BATCH)
    loader = DetectionLoader(dataset, num_workers=num_workers)
    digest = hashlib.sha256()
    for step in range(3):
        if step == 2:
            loader.set_size(64, 96)
        batch = loader.next_batch()
        images = _network_input(batch)
        assert images.dtype == np.float32 and images.shape == (BATCH, 3) + loader.size[::-1]
        digest.update(np.ascontiguousarray(images).tobytes())
        digest.update(batch.truth.numpy().astype(np.float32).tobytes())
        digest.update(repr([[p for p in used] for used in batch.paths]).encode())
    for slot in range(BATCH):
        opts = options.with_size(*loader.size)
        mode = chunk_mode(slot_rng(SEED, 0, 2, CHUNK_STREAM, chunk_of(slot, BATCH, dataset.loader_threads)), opts)
        rng = slot_rng(SEED, 0, 2, SLOT_STREAM, slot)
        load_data_detection(dataset, rng, opts, mode)
        digest.update(np.float64(rng.random()).tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name", sorted(FLAVOURS))
def test_batches_keep_their_hash(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert _digest(name, _tree(tmp_path)) == EXPECTED[name]


def test_batches_keep_their_hash_with_workers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _digest("ab-opencv-mosaic", _tree(tmp_path), num_workers=2) == EXPECTED["ab-opencv-mosaic"]
