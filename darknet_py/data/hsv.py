"""Colour jitter (spec §11.3): Darknet's float HSV `distort_image` (pjreddie, AlexeyAB without OpenCV) and
AlexeyAB-with-OpenCV's 8-bit HSV jitter.

Images are planar (C, H, W) float32 in [0, 1] for the Darknet one, uint8 interleaved (H, W[, C]) RGB for the
OpenCV one. Float maths is float32 like Darknet's C."""
from __future__ import annotations

import cv2
import numpy as np

F32 = np.float32


def distort_image(im: np.ndarray, dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """Darknet `distort_image` on a (C, H, W) float image: to HSV (H in [0, 1), S = Δ/max, V = max),
    S ·= dsat, V ·= dexp, H += dhue wrapped once into [0, 1], back to RGB, clamp to [0, 1]. Images with fewer
    than 3 channels only get channel 0 scaled by dexp (AB).

    The conversions are OpenCV's float HSV, which has Darknet's formulas and branch order (differences are
    float rounding, < 3e-6) and is ~50x faster than numpy; Darknet's one odd case — a hue of exactly 1 after
    the shift falls in its last sector and gives (V, p, V) instead of wrapping to red — is reproduced."""
    if im.shape[0] < 3:
        out = im.copy()
        out[0] = out[0] * F32(dexp)
        return np.clip(out, F32(0), F32(1))
    # cv2.split/merge: the planar <-> interleaved copies numpy would do slower; the result is an (C, H, W)
    # view of the interleaved pixels, clamped in place (the batch copies it once, into place)
    hue, sat, val = cv2.split(cv2.cvtColor(cv2.merge([im[0], im[1], im[2]]), cv2.COLOR_RGB2HSV))  # H in degrees
    hue = hue / F32(360) + F32(dhue)
    hue -= hue > 1
    hue += hue < 0
    sat *= F32(dsat)
    val *= F32(dexp)
    rgb = cv2.cvtColor(cv2.merge([hue * F32(360), sat, val]), cv2.COLOR_HSV2RGB)
    edge = np.flatnonzero(hue == 1)
    if edge.size:
        v, s = val.ravel()[edge], sat.ravel()[edge]
        rgb.reshape(-1, 3)[edge] = np.stack([v, v * (F32(1) - s), v], axis=1)
    np.maximum(rgb, F32(0), out=rgb)
    np.minimum(rgb, F32(1), out=rgb)
    out = rgb.transpose(2, 0, 1)
    if im.shape[0] > 3:
        out = np.concatenate([out, np.clip(im[3:], F32(0), F32(1))])
    return out


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
