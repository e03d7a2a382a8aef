"""`predictions.jpg`: the image with Darknet-style boxes and labels, drawn with OpenCV.

Box geometry, line width and class colours follow Darknet (`draw_detections_v3` / `get_color`); the label
font is OpenCV's, not Darknet's bitmap alphabet, so the picture is close to Darknet's, not identical."""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import ImageError
from .detections import DetectionArrays
from .printout import best_classes

# Darknet's colour ramp (r, g, b) that classes are spread over.
COLOR_RAMP = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]], dtype=np.float32)


def class_color(class_id: int, classes: int) -> tuple[float, float, float]:
    """Darknet's `get_color` for channels r, g, b at offset `class·123457 mod classes`."""
    offset = class_id * 123457 % classes
    ratio = offset / classes * 5
    lo, hi = int(np.floor(ratio)), int(np.ceil(ratio))
    frac = ratio - lo
    rgb = (1 - frac) * COLOR_RAMP[lo] + frac * COLOR_RAMP[hi]
    return float(rgb[0]), float(rgb[1]), float(rgb[2])


def bgr_picture(image: np.ndarray) -> np.ndarray:
    """A (C, H, W) RGB image (C = 1 or 3), float in [0, 1] or 8-bit as the OpenCV training pipeline keeps its
    batches, as an OpenCV BGR uint8 picture."""
    rgb = image if image.shape[0] == 3 else np.repeat(image, 3, axis=0)
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(rgb.transpose(1, 2, 0)[..., ::-1])


def draw_detections(image: np.ndarray, dets: DetectionArrays, names: tuple[str, ...],
                    thresh: float) -> np.ndarray:
    """A BGR uint8 picture of ``image`` (C, H, W) float RGB with the boxes whose best class is > thresh,
    drawn in increasing probability order (the most probable on top) as AB does."""
    _, im_h, im_w = image.shape
    canvas = bgr_picture(image)
    best = best_classes(dets, thresh, names)
    selected = np.flatnonzero(best >= 0)
    selected = selected[np.argsort(dets.probs[selected, best[selected]], kind="stable")]
    width = max(1, int(im_h * .002))
    classes = dets.probs.shape[1]
    for i in selected:
        x, y, w, h = (float(v) for v in dets.boxes[i])
        left, right = _edge((x - w / 2) * im_w, im_w), _edge((x + w / 2) * im_w, im_w)
        top, bot = _edge((y - h / 2) * im_h, im_h), _edge((y + h / 2) * im_h, im_h)
        r, g, b = class_color(int(best[i]), classes)
        color = (int(b * 255), int(g * 255), int(r * 255))
        cv2.rectangle(canvas, (left, top), (right, bot), color, width)
        label = [names[best[i]] + f": {float(dets.probs[i, best[i]]):.2f}"]
        label += [names[j] for j in range(classes) if dets.probs[i, j] > thresh and j != best[i]]
        _draw_label(canvas, ", ".join(label), left, top, color, im_h)
    return canvas


def _edge(value: float, size: int) -> int:
    """A box edge in pixels clamped to the picture, as Darknet's draw_box clamps. An untrained net's exp()
    can give an infinite width: it clamps too instead of failing the int conversion."""
    return int(min(max(value, 0.0), size - 1)) if value == value else 0


def _draw_label(canvas: np.ndarray, text: str, left: int, top: int, color, im_h: int) -> None:
    scale = max(im_h * .02 / 22, 0.3)   # Darknet scales its alphabet to 2 % of the image height
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y0 = max(top - th - base, 0)
    cv2.rectangle(canvas, (left, y0), (left + tw, y0 + th + base), color, -1)
    cv2.putText(canvas, text, (left, y0 + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def save_image(picture: np.ndarray, name: str) -> str:
    """Darknet's `save_image(im, name)`: writes `name.jpg`; returns the path written."""
    path = name + ".jpg"
    if not cv2.imwrite(path, picture):
        raise ImageError("cannot write the predictions image", file=path)
    return path
