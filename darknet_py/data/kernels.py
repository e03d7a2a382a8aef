"""Compiled kernels for pjreddie's per-image augmentation (the optional extra ``fast``: numba).

The numpy pipeline (:func:`~darknet_py.data.augment.augment_pj`) walks each 416x416 image many times: the
decoded uint8 pixels to float planes, the four-neighbour `place_image`, planar <-> interleaved copies around
OpenCV's float HSV, the hue/saturation/exposure scaling, the clamp and the flip. These kernels do the same
float32 operations in the same order in three passes (place, scale the HSV, clamp + flip into planes), so the
values are the same bit for bit: no fastmath (which would let LLVM fuse multiply-adds or reassociate), and
every intermediate is float32 as in numpy and Darknet's C. OpenCV's float RGB <-> HSV conversions stay
OpenCV's (they are what the numpy path calls too).

The kernels are compiled once and cached on disk (``cache=True``); the loader loads them (:func:`warm_up`)
before it forks its workers, which inherit them. Without numba :data:`AVAILABLE` is False and the numpy
pipeline runs; tests compare the two.
"""
from __future__ import annotations

import cv2
import numpy as np

try:                                   # the optional extra `fast`
    from numba import njit
except ImportError:                    # pragma: no cover - depends on the installation
    njit = None

AVAILABLE = njit is not None
F32 = np.float32


def _compiled(function):
    """``function`` compiled by numba (exact float semantics, cached on disk), or None without numba."""
    if not AVAILABLE:
        return None
    try:
        return njit(cache=True, nogil=True, fastmath=False)(function)
    except RuntimeError:        # numba found no writable cache folder: compile in each process instead
        return njit(cache=False, nogil=True, fastmath=False)(function)


def _place_image_u8(rgb, w, h, dx, dy, canvas):
    """`place_image` of uint8 (ih, iw, C) RGB pixels, each taken as float32(v) / 255 like `unit_float`, onto
    an interleaved (H, W, C) float32 canvas. Neighbours beyond the last row/column are 0 (Darknet's
    `get_pixel_extend`); Darknet's sum order ((w00·p00 + w01·p01) + w10·p10) + w11·p11."""
    ih, iw, c = rgb.shape
    height, width = canvas.shape[0], canvas.shape[1]
    unit = np.empty(256, np.float32)
    for v in range(256):
        unit[v] = np.float32(v) / np.float32(255)
    x0, x1 = max(0, -dx), min(w, width - dx)
    if x1 <= x0:
        return
    # per output column (the same every row): its source column, fraction, right neighbour's column and
    # whether that neighbour exists. A missing neighbour (Darknet's 0) gets weight 0 instead: w·p = +0 for
    # any pixel p >= 0 and adding +0 leaves the sum as it is, so the values do not change and the loop has
    # no branches
    n = x1 - x0
    columns, nexts = np.empty(n, np.int64), np.empty(n, np.int64)
    fractions, rights = np.empty(n, np.float32), np.empty(n, np.float32)
    one, zero = np.float32(1), np.float32(0)
    for j in range(n):
        rx = (np.float32(x0 + j) / np.float32(w)) * np.float32(iw)
        columns[j] = int(np.floor(rx))
        fractions[j] = rx - np.float32(columns[j])
        nexts[j] = min(columns[j] + 1, iw - 1)
        rights[j] = one if columns[j] + 1 < iw else zero
    for y in range(max(0, -dy), min(h, height - dy)):
        ry = (np.float32(y) / np.float32(h)) * np.float32(ih)
        iy = int(np.floor(ry))
        fy = ry - np.float32(iy)
        gy = one - fy
        below = one if iy + 1 < ih else zero
        top, bottom, out = rgb[iy], rgb[min(iy + 1, ih - 1)], canvas[y + dy]
        for j in range(n):
            ix, nx, fx, right = columns[j], nexts[j], fractions[j], rights[j]
            gx = one - fx
            w00, w01, w10, w11 = gy * gx, (fy * gx) * below, (gy * fx) * right, (fy * fx) * (below * right)
            for k in range(c):
                value = w00 * unit[top[ix, k]]
                value = value + w01 * unit[bottom[ix, k]]
                value = value + w10 * unit[top[nx, k]]
                value = value + w11 * unit[bottom[nx, k]]
                out[x0 + j + dx, k] = value


def _shift_hsv(hsv, dhue, dsat, dexp):
    """In place on OpenCV's float HSV (H in degrees): H/360 + dhue wrapped once into [0, 1] and back to
    degrees, S·dsat, V·dexp (the float32 steps of :func:`~darknet_py.data.hsv.distort_image`)."""
    one, degrees = np.float32(1), np.float32(360)
    for y in range(hsv.shape[0]):
        for x in range(hsv.shape[1]):
            hue = hsv[y, x, 0] / degrees + dhue
            if hue > one:
                hue = hue - one
            if hue < 0:
                hue = hue + one
            hsv[y, x, 0] = hue * degrees
            hsv[y, x, 1] = hsv[y, x, 1] * dsat
            hsv[y, x, 2] = hsv[y, x, 2] * dexp


def _clamp_to_planes(rgb, hsv, flip, out):
    """``out`` (3, H, W) = ``rgb`` (H, W, 3) clamped to [0, 1] (numpy's maximum/minimum, signed zeros
    included), mirrored when ``flip``. Where the hue is exactly 360 degrees Darknet's last sector gives
    (V, V·(1 − S), V) instead of OpenCV's wrap to red."""
    height, width = rgb.shape[0], rgb.shape[1]
    one, zero, degrees = np.float32(1), np.float32(0), np.float32(360)
    for y in range(height):
        for x in range(width):
            ox = width - 1 - x if flip else x
            if hsv[y, x, 0] == degrees:
                v, s = hsv[y, x, 2], hsv[y, x, 1]
                pixel = (v, v * (one - s), v)
            else:
                pixel = (rgb[y, x, 0], rgb[y, x, 1], rgb[y, x, 2])
            for k in range(3):
                value = pixel[k]
                value = value if value > zero else zero          # np.maximum(value, 0)
                value = value if value < one else one            # np.minimum(value, 1)
                out[k, y, ox] = value


place_image_u8 = _compiled(_place_image_u8)
shift_hsv = _compiled(_shift_hsv)
clamp_to_planes = _compiled(_clamp_to_planes)


def pj_image(rgb: np.ndarray, place: tuple, width: int, height: int, dhue, dsat, dexp, flip: bool) -> np.ndarray:
    """pjreddie's image steps (:func:`~darknet_py.data.augment._pj_image`) with the kernels, straight from
    decoded uint8 (H, W, 3) RGB: place (w, h, dx, dy) on a 0.5 grey canvas, HSV jitter, flip. Returns planar
    float32 (3, height, width), the numpy path's values."""
    canvas = np.full((height, width, 3), 0.5, F32)
    place_image_u8(rgb, *place, canvas)
    hsv = cv2.cvtColor(canvas, cv2.COLOR_RGB2HSV)
    shift_hsv(hsv, F32(dhue), F32(dsat), F32(dexp))
    out = np.empty((3, height, width), F32)
    clamp_to_planes(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), hsv, flip, out)
    return out


def warm_up() -> None:
    """Load (or, the first time, compile) every kernel for the argument types the pipeline passes. The loader
    calls this before it forks its workers, so they inherit the machine code instead of each loading it."""
    if not AVAILABLE:
        return
    canvas = np.zeros((2, 2, 3), np.float32)
    place_image_u8(np.zeros((2, 2, 3), np.uint8), 2, 2, 0, 0, canvas)
    shift_hsv(canvas, F32(0), F32(1), F32(1))
    clamp_to_planes(canvas, canvas, False, np.zeros((3, 2, 2), np.float32))
