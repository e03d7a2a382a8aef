"""Colour jitter (spec §11.3): Darknet's float HSV (`rgb_to_hsv`, `hsv_to_rgb`, `distort_image`; used by pjreddie
and by AlexeyAB without OpenCV) and AlexeyAB-with-OpenCV's 8-bit HSV jitter.

Images are planar (C, H, W): float32 in [0, 1] for the Darknet functions, uint8 interleaved (H, W, C) RGB for
the OpenCV one. All float maths is float32 like Darknet's C."""
from __future__ import annotations

import cv2
import numpy as np

F32 = np.float32


def rgb_to_hsv(im: np.ndarray) -> np.ndarray:
    """Darknet `rgb_to_hsv` on a (3, H, W) float image: H in [0, 1), S = Δ/max, V = max."""
    r, g, b = im[0], im[1], im[2]
    v = np.maximum(np.maximum(r, g), b)
    delta = v - np.minimum(np.minimum(r, g), b)
    safe = np.where(delta == 0, F32(1), delta)   # grey pixels: Darknet computes 0/0 but S = 0 hides it
    h = np.where(r == v, (g - b) / safe, np.where(g == v, F32(2) + (b - r) / safe, F32(4) + (r - g) / safe))
    h = np.where(h < 0, h + F32(6), h) / F32(6)
    h = np.where(delta == 0, F32(0), h)
    s = np.where(v == 0, F32(0), delta / np.where(v == 0, F32(1), v))
    return np.stack([np.where(v == 0, F32(0), h), s, v]).astype(F32)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Darknet `hsv_to_rgb`: sector ``floor(6H)``; sector 6 (H = 1 exactly) falls in the last branch."""
    h6, s, v = hsv[0] * F32(6), hsv[1], hsv[2]
    index = np.floor(h6)
    f = h6 - index
    p, q, t = v * (F32(1) - s), v * (F32(1) - s * f), v * (F32(1) - s * (F32(1) - f))
    sectors = [index == k for k in range(5)]
    r = np.select(sectors, [v, q, p, p, t], v)
    g = np.select(sectors, [t, v, v, q, p], p)
    b = np.select(sectors, [p, p, t, v, v], q)
    grey = s == 0
    return np.stack([np.where(grey, v, r), np.where(grey, v, g), np.where(grey, v, b)]).astype(F32)


def distort_image(im: np.ndarray, dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """Darknet `distort_image`: S ·= dsat, V ·= dexp, H += dhue wrapped once into [0, 1], back to RGB,
    clamp to [0, 1]. Images with fewer than 3 channels only get channel 0 scaled by dexp (AB)."""
    if im.shape[0] < 3:
        out = im.copy()
        out[0] = out[0] * F32(dexp)
        return np.clip(out, F32(0), F32(1))
    hsv = rgb_to_hsv(im)
    hsv[1] *= F32(dsat)
    hsv[2] *= F32(dexp)
    hue = hsv[0] + F32(dhue)
    hue = np.where(hue > 1, hue - F32(1), hue)
    hsv[0] = np.where(hue < 0, hue + F32(1), hue)
    out = hsv_to_rgb(hsv)
    if im.shape[0] > 3:
        out = np.concatenate([out, im[3:]])
    return np.clip(out, F32(0), F32(1))


def distort_image_u8(rgb: np.ndarray, dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """AB OpenCV HSV jitter on an (H, W, 3) uint8 RGB image: OpenCV 8-bit HSV (H in [0, 180)), S and V
    scaled with rounding and saturation, H shifted by 179·dhue with *saturating* (not wrapping) uint8
    arithmetic. Skipped entirely when the parameters are neutral, as in AB. Grey images: V scaling only."""
    if dsat == 1 and dexp == 1 and dhue == 0:
        return rgb
    if rgb.ndim == 2 or rgb.shape[2] < 3:
        return cv2.convertScaleAbs(rgb, alpha=float(dexp))
    hue, sat, val = cv2.split(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))
    sat = cv2.convertScaleAbs(sat, alpha=float(dsat))     # AB: `hsv[1] *= dsat` (Mat::convertTo)
    val = cv2.convertScaleAbs(val, alpha=float(dexp))
    hue = cv2.add(hue, float(F32(179) * F32(dhue)))        # AB: `hsv[0] += 179 * dhue` (saturating add)
    return cv2.cvtColor(cv2.merge([hue, sat, val]), cv2.COLOR_HSV2RGB)
