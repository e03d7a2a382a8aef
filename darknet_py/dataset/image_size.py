"""A picture's width and height from its file header (JPEG, PNG, BMP), without decoding pixels: reading
100k headers takes seconds where decoding them takes minutes. Other formats fall back to OpenCV."""
from __future__ import annotations

import os
import struct
from typing import Optional

HEADER_BYTES = 1 << 16      # enough for the JPEG frame header behind the usual EXIF/ICC blocks
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(path: str | os.PathLike) -> Optional[tuple[int, int]]:
    """(width, height), or None when the file cannot be read or is not a picture."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
            size = _header_size(head) if not head.startswith(b"\xff\xd8") else _jpeg_size(f, head)
    except OSError:
        return None
    if size is None and head and not head.startswith((b"\xff\xd8", b"\x89PNG", b"BM")):
        size = _decoded_size(path)
    return size if size is not None and size[0] > 0 and size[1] > 0 else None


def _header_size(head: bytes) -> Optional[tuple[int, int]]:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return width, abs(height)       # a negative height: rows stored top-down
    return None


def _jpeg_size(f, head: bytes) -> Optional[tuple[int, int]]:
    """Walk the JPEG markers to the first frame header (SOFn)."""
    data, pos = head, 2
    while True:
        if pos + 9 > len(data):
            if pos > len(data):         # a segment reaching past what was read: skip its rest
                f.seek(pos - len(data), 1)
                data, pos = b"", 0
            more = f.read(HEADER_BYTES)
            if not more:
                return None
            data, pos = data[pos:] + more, 0
            continue
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:          # fill byte
            pos += 1
            continue
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]


def _decoded_size(path: str | os.PathLike) -> Optional[tuple[int, int]]:
    import cv2      # only for formats without a header reader here (tiff, webp, ppm...)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if image is None else (image.shape[1], image.shape[0])
