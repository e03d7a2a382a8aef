"""AlexeyAB's mosaic (four augmented images around a random cut point) and the truth merging shared with
mixup (spec §11.3). Images are planar float32 (C, h, w); truth rows are Darknet's ``[x, y, w, h, class, …]``
with x == 0 ending the list. Integer conversions truncate toward zero and box maths is float32, as in C."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .labels import count_boxes
from .rand import rand_int

F32 = np.float32
MIN_OFFSET = F32(0.2)       # the cut point stays within 20 %..80 % of each side


class Cut(NamedTuple):
    x: int
    y: int


class Shifts(NamedTuple):
    """How far the crop's padding pushes the kept part of a pass's image (network pixels)."""
    left: int
    top: int
    right: int
    bottom: int


def mosaic_cut(rng: np.random.Generator, w: int, h: int) -> Cut:
    """`cut_x = rand_int(0.2·w, 0.8·w)`, `cut_y` likewise (bounds truncated to int)."""
    return Cut(rand_int(rng, int(F32(w) * MIN_OFFSET), int(F32(w) * (F32(1) - MIN_OFFSET))),
               rand_int(rng, int(F32(h) * MIN_OFFSET), int(F32(h) * (F32(1) - MIN_OFFSET))))


def mosaic_shifts(crop, cut: Cut, w: int, h: int, ow: int, oh: int) -> Shifts:
    """Padding of the crop (negative offsets) in network pixels, bounded by the quadrant; a flipped image
    swaps its left and right offsets first."""
    pleft, pright = (crop.pright, crop.pleft) if crop.flip else (crop.pleft, crop.pright)
    return Shifts(left=min(cut.x, max(0, (-pleft * w) // ow)), top=min(cut.y, max(0, (-crop.ptop * h) // oh)),
                  right=min(w - cut.x, max(0, (-pright * w) // ow)),
                  bottom=min(h - cut.y, max(0, (-crop.pbot * h) // oh)))


def paste_mosaic_pass(out: np.ndarray, piece: np.ndarray, k: int, cut: Cut, s: Shifts) -> None:
    """Copy the part of pass k's image that lands in quadrant k (0 TL, 1 TR, 2 BL, 3 BR) into ``out``."""
    _, h, w = out.shape
    src_y = slice(h - cut.y - s.bottom, h - s.bottom) if k < 2 else slice(s.top, s.top + h - cut.y)
    src_x = slice(w - cut.x - s.right, w - s.right) if k in (0, 2) else slice(s.left, s.left + w - cut.x)
    dst_y = slice(0, cut.y) if k < 2 else slice(cut.y, h)
    dst_x = slice(0, cut.x) if k in (0, 2) else slice(cut.x, w)
    out[:, dst_y, dst_x] = piece[:, src_y, src_x]


def blend_truth(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """AB `blend_truth`: ``second``'s boxes appended after ``first``'s, up to the row count. Only the five
    box fields are copied (an appended box's track id stays 0, as in AB)."""
    out = first.copy()
    count = count_boxes(first)
    extra = second[:count_boxes(second)][:len(out) - count]
    out[count:count + len(extra), :5] = extra[:, :5]
    return out


def blend_truth_mosaic(acc: np.ndarray, piece: np.ndarray, k: int, cut: Cut, s: Shifts, w: int, h: int,
                       mosaic_bound: bool) -> np.ndarray:
    """AB `blend_truth_mosaic`: move pass k's boxes into the mosaic, fix them to the image (or to the
    quadrant with `mosaic_bound=1`) and append those still valid after ``acc``'s boxes."""
    out = acc.copy()
    count = count_boxes(acc)
    offset_x = -F32(w - cut.x - s.right) / F32(w) if k in (0, 2) else F32(cut.x - s.left) / F32(w)
    offset_y = -F32(h - cut.y - s.bottom) / F32(h) if k < 2 else F32(cut.y - s.top) / F32(h)
    bounds = ((0, cut.x) if k in (0, 2) else (cut.x, w)), ((0, cut.y) if k < 2 else (cut.y, h))
    row = count
    for t in range(count, len(out)):
        out[row, 0] = 0
        box = piece[t - count]
        if box[0] == 0:
            break
        xb, yb = F32(box[0]) + offset_x, F32(box[1]) + offset_y
        fitted = _fit_box(xb, F32(box[2]), w, bounds[0], mosaic_bound), \
            _fit_box(yb, F32(box[3]), h, bounds[1], mosaic_bound)
        (xb, wb, left, right), (yb, hb, top, bot) = fitted
        lowest_w, lowest_h = F32(1) / F32(w), F32(1) / F32(h)
        if (left >= 0 and right <= w and top >= 0 and bot <= h and 0 < wb < 1 and 0 < hb < 1
                and 0 < xb < 1 and 0 < yb < 1 and wb > lowest_w and hb > lowest_h):
            out[row, :5] = (xb, yb, wb, hb, box[4])
            row += 1
    return out


def _fit_box(centre: np.float32, size: np.float32, n: int, bound: tuple[int, int], mosaic_bound: bool):
    """One axis of AB's box fixing. Returns (centre, size, low edge px, high edge px)."""
    low, high = int((centre - size / F32(2)) * F32(n)), int((centre + size / F32(2)) * F32(n))
    if mosaic_bound:
        low, high = max(low, bound[0]), min(high, bound[1])
        return F32(F32(high + low) / F32(2)) / F32(n), F32(high - low) / F32(n), low, high
    if low < 0:
        diff = F32(low) / F32(n)
        centre, size = centre - diff / F32(2), size + diff
    if high > n:
        diff = F32(high - n) / F32(n)
        centre, size = centre - diff / F32(2), size - diff
    return centre, size, int((centre - size / F32(2)) * F32(n)), int((centre + size / F32(2)) * F32(n))
