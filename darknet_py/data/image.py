"""Images as Darknet sees them: RGB float32 in [0, 1], planar (C, H, W); Darknet's `resize_image` and
`letterbox_image` (spec §12.1)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ..errors import ImageError, warn

JPEG_START, JPEG_SCAN, JPEG_END = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"   # SOI, SOS, EOI markers


def read_image_file(path: str | Path, flag: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """The pixels of an image file, decoded as Darknet decodes them (:func:`decode_image_file`), with a
    warning naming the file when its JPEG data was cut short. The one image reader of every command (test,
    demo, map, valid, recall, train, check) and of `Detector`."""
    pixels, complaint = decode_image_file(path, flag)
    if complaint:
        warn(complaint, file=str(path))
    return pixels


def decode_image_file(path: str | Path, flag: int = cv2.IMREAD_COLOR) -> tuple[np.ndarray, Optional[str]]:
    """(pixels, what libjpeg complains about or None): OpenCV's file reader (`cv2.imread`, ``flag`` one of
    its modes), as Darknet's `load_image`. libjpeg's file source reads a JPEG cut short as far as it goes
    and fills the rest (printing "Premature end of JPEG file"; Darknet goes on): so does this."""
    path = str(path)
    if not Path(path).is_file():
        raise ImageError("image file not found", file=path)
    pixels = cv2.imread(path, flag)
    if pixels is None:
        raise ImageError("cannot decode image (corrupt or not an image)", file=path)
    try:
        truncated = truncated_jpeg(path)
    except OSError as exc:     # removed or replaced since cv2.imread read it
        raise ImageError(f"cannot read image: {exc.strerror or exc}", file=path) from None
    if truncated:
        return pixels, ("JPEG data ends before the image does (libjpeg: Premature end of JPEG file); decoded "
                        "as Darknet decodes it, the missing part filled by libjpeg")
    return pixels, None


def truncated_jpeg(path: str | Path, tail: int = 4096) -> bool:
    """A JPEG file with no end-of-image marker after its last start-of-scan: its image data was cut short
    (what libjpeg's "Premature end of JPEG file" reports; a marker cannot occur inside scan data). Every
    image of every command passes here right after OpenCV read it, so only the file's start and its last
    ``tail`` bytes are read when they settle it (an end marker there with no scan marker after it); the
    whole file only otherwise."""
    with open(path, "rb") as file:
        if file.read(2) != JPEG_START:
            return False
        size = file.seek(0, 2)
        file.seek(max(size - tail, 0))
        end = file.read()
        if end.rfind(JPEG_END) > end.rfind(JPEG_SCAN):
            return False
        file.seek(0)
        data = file.read()
    return data.rfind(JPEG_END) < data.rfind(JPEG_SCAN)


def load_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Decode an image file to a (C, H, W) float32 array in [0, 1] (RGB, or grey for channels=1)."""
    if channels == 1:
        return read_image_file(path, cv2.IMREAD_GRAYSCALE)[None].astype(np.float32) / 255.0
    return image_from_bgr(read_image_file(path, cv2.IMREAD_COLOR))


def unit_float(pixels: np.ndarray) -> np.ndarray:
    """8-bit pixels as Darknet's floats: float32(v) / 255 in float32 (correctly rounded, so the same values
    wherever the division happens: here, or on the training device, see :func:`network_input`)."""
    return np.ascontiguousarray(pixels, dtype=np.float32) / np.float32(255.0)


def as_float(image: np.ndarray) -> np.ndarray:
    """An augmented image as float32 in [0, 1]: 8-bit ones through :func:`unit_float`, float ones as they are."""
    return unit_float(image) if image.dtype == np.uint8 else image


def check_bgr_image(pixels) -> None:
    """ValueError unless ``pixels`` is what `cv2.imread` returns for a colour image: (H, W, 3) BGR uint8."""
    if not isinstance(pixels, np.ndarray):
        got = "None (what cv2.imread returns for a file it cannot read)" if pixels is None else type(pixels).__name__
        raise TypeError(f"expected an image path (str or os.PathLike) or an (H, W, 3) BGR uint8 numpy array as "
                        f"cv2.imread returns, got {got}")
    shape = tuple(pixels.shape)
    if pixels.ndim != 3 or shape[2] != 3:
        hint = {2: " (2-D grayscale: convert with cv2.cvtColor(x, cv2.COLOR_GRAY2BGR))"}.get(pixels.ndim, "")
        if pixels.ndim == 3 and shape[0] == 3:
            hint = " (channels first: pass x.transpose(1, 2, 0))"
        elif pixels.ndim == 3 and shape[2] == 4:
            hint = " (4 channels: convert with cv2.cvtColor(x, cv2.COLOR_BGRA2BGR))"
        raise ValueError(f"expected an (H, W, 3) BGR uint8 image as cv2.imread returns, got shape {shape}{hint}")
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) BGR uint8 image as cv2.imread returns, got dtype {pixels.dtype}"
                         " (scale to 0..255 and convert with x.astype(np.uint8))")
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"expected a non-empty (H, W, 3) image, got shape {shape}")


def image_from_bgr(pixels: np.ndarray, channels: int = 3) -> np.ndarray:
    """An (H, W, 3) BGR uint8 array (`cv2.imread`'s) as Darknet's (C, H, W) float32 in [0, 1], exactly as
    :func:`load_image` turns a decoded file. A 1-channel network gets OpenCV's BGR-to-grey conversion."""
    if channels == 1:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)[None].astype(np.float32) / 255.0
    return unit_float(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))


def _axis_weights(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample index, fraction and 'last' mask of Darknet's align-corners bilinear for one axis (float32
    arithmetic as in C)."""
    scale = np.float32(src - 1) / np.float32(dst - 1) if dst > 1 else np.float32(0)
    pos = np.arange(dst, dtype=np.float32) * scale
    index = pos.astype(np.int64)
    frac = (pos - index.astype(np.float32)).astype(np.float32)
    return index, frac, np.arange(dst) == dst - 1


def resize_image(im: np.ndarray, width: int, height: int) -> np.ndarray:
    """Darknet `resize_image`: horizontal then vertical align-corners bilinear, no antialiasing. The last
    column copies the source's last column; the last row takes only the `(1 − f)·row[k]` term."""
    c, ih, iw = im.shape
    if (ih, iw) == (height, width):
        return im.copy()
    ix, fx, last_x = _axis_weights(iw, width)
    if iw == 1:
        part = np.repeat(im[:, :, :1], width, axis=2)
    else:
        right = np.minimum(ix + 1, iw - 1)
        part = (1 - fx) * im[:, :, ix] + fx * im[:, :, right]
        part[:, :, last_x] = im[:, :, iw - 1:iw]
    iy, fy, last_y = _axis_weights(ih, height)
    out = (1 - fy)[None, :, None] * part[:, iy, :]
    if ih > 1:
        below = np.minimum(iy + 1, ih - 1)
        add = fy[None, :, None] * part[:, below, :]
        add[:, last_y, :] = 0
        out = out + add
    return out.astype(np.float32, copy=False)


def place_image(im: np.ndarray, w: int, h: int, dx: int, dy: int, canvas: np.ndarray) -> None:
    """pjreddie `place_image`: canvas[y + dy, x + dx] = bilinear sample of ``im`` at (x/w·iw, y/h·ih) for
    x < w, y < h; source pixels outside the image count as 0 (darkening the last row/column)."""
    f32 = np.float32                                   # every step in C float, as Darknet
    c, ih, iw = im.shape
    xs = np.arange(max(0, -dx), min(w, canvas.shape[2] - dx))
    ys = np.arange(max(0, -dy), min(h, canvas.shape[1] - dy))
    if xs.size == 0 or ys.size == 0:
        return
    padded = np.zeros((c, (ih + 1) * (iw + 1)), f32)   # the zero border Darknet's get_pixel_extend returns
    padded.reshape(c, ih + 1, iw + 1)[:, :ih, :iw] = im
    rx, ry = (xs.astype(f32) / f32(w)) * f32(iw), (ys.astype(f32) / f32(h)) * f32(ih)
    ix, iy = np.floor(rx).astype(np.intp), np.floor(ry).astype(np.intp)
    fx, fy = (rx - ix.astype(f32))[None, :], (ry - iy.astype(f32))[:, None]
    gx, gy = f32(1) - fx, f32(1) - fy
    at = iy[:, None] * (iw + 1) + ix[None, :]           # flat index of the top-left neighbour
    # Darknet's sum order: ((w00·p(x, y) + w01·p(x, y+1)) + w10·p(x+1, y)) + w11·p(x+1, y+1)
    terms = ((gy * gx, at), (fy * gx, at + iw + 1), (gy * fx, at + 1), (fy * fx, at + iw + 2))
    value = np.empty((c,) + at.shape, f32)
    for plane, out in zip(padded, value):
        np.multiply(terms[0][0], plane.take(terms[0][1]), out=out)
        for weight, index in terms[1:]:
            out += weight * plane.take(index)
    canvas[:, ys[0] + dy:ys[-1] + dy + 1, xs[0] + dx:xs[-1] + dx + 1] = value


def letterbox_size(iw: int, ih: int, width: int, height: int) -> tuple[int, int]:
    """`(new_w, new_h)` of Darknet's letterbox, integer arithmetic."""
    if width / iw < height / ih:
        return width, (ih * width) // iw
    return (iw * height) // ih, height


def letterbox_image(im: np.ndarray, width: int, height: int) -> np.ndarray:
    """Darknet `letterbox_image`: aspect-preserving resize pasted centred on a 0.5 grey canvas."""
    c, ih, iw = im.shape
    new_w, new_h = letterbox_size(iw, ih, width, height)
    resized = resize_image(im, new_w, new_h)
    canvas = np.full((c, height, width), 0.5, dtype=np.float32)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[:, top:top + new_h, left:left + new_w] = resized
    return canvas
