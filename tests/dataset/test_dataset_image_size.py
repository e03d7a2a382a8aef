"""Picture sizes read from file headers (no decoding) equal OpenCV's decoded shape."""
from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from darknet_py.dataset.image_size import image_size


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tiff"])
def test_header_size_is_the_decoded_size(tmp_path, ext):
    pixels = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / f"p{ext}"
    cv2.imwrite(str(path), pixels)
    assert image_size(path) == (53, 37)


def test_jpeg_frame_header_behind_a_large_segment(tmp_path):
    """An APP segment longer than one header read (EXIF thumbnails, ICC profiles) is skipped, not parsed."""
    ok, encoded = cv2.imencode(".jpg", np.zeros((21, 45, 3), np.uint8))
    body = b"\x00" * 65000
    app = b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body
    path = tmp_path / "big.jpg"
    path.write_bytes(encoded.tobytes()[:2] + app * 2 + encoded.tobytes()[2:])
    assert cv2.imread(str(path)).shape[:2] == (21, 45)
    assert image_size(path) == (45, 21)


def test_not_a_picture(tmp_path):
    (tmp_path / "t.jpg").write_text("hello")
    (tmp_path / "empty.png").touch()
    assert image_size(tmp_path / "t.jpg") is None
    assert image_size(tmp_path / "empty.png") is None
    assert image_size(tmp_path / "missing.jpg") is None
