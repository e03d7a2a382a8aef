"""Detector training augmentation per flavour (spec §11.3): `load_data_detection` for one batch slot.

Three pipelines, chosen by :class:`AugmentOptions` (``flavor`` and, for AlexeyAB, ``backend``):

* flavor pj — pjreddie: 0.5 grey canvas, aspect jitter `new_ar`, bilinear `place_image`, float HSV,
  random flip (always on).
* flavor ab, ``backend="opencv"`` (DEFAULT for ab; what AlexeyAB users run) — jitter crop filled with the
  image's mean colour, `cv::resize(INTER_LINEAR)` stretch, `cv::flip`, 8-bit saturating HSV; `mosaic=1`
  (§11.3, :mod:`darknet_py.data.mosaic`) and `mixup=1` available.
* flavor ab, ``backend="darknet"`` — AlexeyAB built without OpenCV (e.g. the CPU oracle behind the
  fixtures): the same jitter crop with edge replication, Darknet `resize_image` stretch, float HSV; `mixup`
  available, `mosaic` is an error as in that build.

Not implemented: AB's OpenCV-only `blur` and `gaussian_noise` (the cfg reader ignores those keys).

Every random number comes from the ``numpy.random.Generator`` passed in. Images come in through an
:class:`ImageSource` (the loader's), already decoded: uint8 (H, W, C) RGB for the OpenCV backend and for pj
(which also takes float32 planes), float32 (C, H, W) in [0, 1] otherwise. Output: float32 (C, h, w) and
truth ``(max_boxes, 5 | 6)``; the loader takes :func:`load_slot`'s output instead, which stays uint8
(C, h, w) where the OpenCV pipeline is 8-bit.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import cv2
import numpy as np

from ..errors import CfgError
from ..flavor import Flavor, flavor_of
from . import kernels
from .hsv import distort_image, distort_image_u8
from .image import as_float, place_image, resize_image, unit_float
from .labels import BoxTransform, TruthSpec, fill_truth_detection
from .mosaic import blend_truth, mosaic_cut, mosaic_shifts, paste_mosaic_pass, blend_truth_mosaic
from .rand import rand_scale, rand_uniform, random_float

F32 = np.float32
BACKENDS = ("opencv", "darknet")
SINGLE, MIXUP, MOSAIC = 0, 1, 3     # AB's `use_mixup` values for a chunk


@dataclass(frozen=True)
class AugmentOptions:
    """Everything the augmentation reads from the cfg (`[net]` keys and the last detection layer's
    `jitter`, `resize`, `max`, `classes`) plus the network size currently trained at."""
    flavor: Flavor          # a name is accepted and turned into the Flavor
    backend: str            # ab only: "opencv" | "darknet"; pj ignores it
    width: int
    height: int
    channels: int
    classes: int
    max_boxes: int
    jitter: float = 0.2
    resize: float = 1.0
    hue: float = 0.0
    saturation: float = 1.0
    exposure: float = 1.0
    flip: bool = True
    letter_box: bool = False
    mosaic: bool = False
    mosaic_bound: bool = False
    mixup: bool = False

    def __post_init__(self):
        object.__setattr__(self, "flavor", flavor_of(self.flavor))
        if self.flavor.pjreddie:
            return
        if self.backend not in BACKENDS:
            raise CfgError(f"unknown augmentation backend '{self.backend}', expected one of {', '.join(BACKENDS)}")
        if self.mosaic and self.backend == "darknet":
            raise CfgError("mosaic=1 needs AlexeyAB's OpenCV augmentation (Darknet without OpenCV refuses it)",
                           hint="use the default augment backend 'opencv'")
        if self.channels not in (1, 3):
            raise CfgError(f"training needs channels=1 or 3, the cfg has {self.channels}")
        if self.mosaic and self.letter_box:
            raise CfgError("mosaic=1 together with letter_box=1 is not supported (AlexeyAB refuses it too)")

    @property
    def truth(self) -> TruthSpec:
        return TruthSpec(self.flavor, self.classes, self.max_boxes, self.width, self.height)

    @property
    def decodes_u8(self) -> bool:
        """True when images are handed over as uint8 (H, W, C) RGB (the OpenCV pipeline)."""
        return self.flavor.alexeyab and self.backend == "opencv"

    @property
    def takes_decoded_u8(self) -> bool:
        """True when the loader hands images over as decoded, uint8 (H, W, C) RGB: the OpenCV pipeline, and
        pjreddie's (whose first step, `place_image`, reads each pixel as float32(v) / 255 itself)."""
        return self.decodes_u8 or self.flavor.pjreddie

    @property
    def runs_compiled_kernels(self) -> bool:
        """True when the numba kernels of :mod:`darknet_py.data.kernels` make the images (pjreddie's pipeline,
        numba installed)."""
        return self.flavor.pjreddie and kernels.AVAILABLE

    @property
    def use_mixup(self) -> int:
        """AB's configured `use_mixup` (mosaic wins over mixup); pj has neither."""
        if self.flavor.pjreddie:
            return SINGLE
        return MOSAIC if self.mosaic else MIXUP if self.mixup else SINGLE

    def with_size(self, width: int, height: int) -> "AugmentOptions":
        return dataclasses.replace(self, width=int(width), height=int(height))


def augment_options(cfg, backend: str | None = None) -> AugmentOptions:
    """Options for training ``cfg`` (a CfgModel). `jitter`, `resize`, `max`, `classes` come from the last
    detection layer: AB scans for the last [yolo]/[region]; pj takes literally the last layer."""
    last = cfg.flavor.trainer_layer(cfg.layers)
    if last is None:
        raise CfgError("cannot train a detector: " + ("the last layer must be [yolo] or [region] (pjreddie "
                       "takes jitter/classes/max from it)" if cfg.flavor.trainer_takes_last_layer
                       else "no [yolo] or [region] layer"), file=cfg.file)
    o, net = last.options, cfg.net
    return AugmentOptions(
        flavor=cfg.flavor, backend=backend or "opencv", width=net.width, height=net.height,
        channels=net.channels, classes=o.classes, max_boxes=o.max_boxes, jitter=o.jitter,
        resize=getattr(o, "resize", 1.0), hue=net.hue,
        saturation=net.saturation or 1.0, exposure=net.exposure or 1.0,   # both forks' loader turns 0 into 1
        flip=net.flip, letter_box=net.letter_box, mosaic=net.mosaic, mosaic_bound=net.mosaic_bound,
        mixup=net.mixup)


class Sample(NamedTuple):
    """One decoded training image and its label records (see :func:`darknet_py.data.labels.read_labels`)."""
    path: str
    pixels: np.ndarray
    records: np.ndarray
    label_file: str


class ImageSource(Protocol):
    def draw(self, rng: np.random.Generator) -> Sample:
        """A uniformly drawn image of the train list (with replacement), decoded for the pipeline."""


# -- one batch slot -----------------------------------------------------------------------------------
def chunk_mode(rng: np.random.Generator, opts: AugmentOptions) -> int:
    """The per-chunk (per loader thread) decision of AB: with probability 1/2 a chunk skips mixup/mosaic."""
    if opts.flavor.pjreddie:
        return SINGLE
    if opts.backend == "opencv":
        return SINGLE if rng.integers(2) == 0 else opts.use_mixup   # drawn even when nothing is configured
    return MIXUP if opts.use_mixup and rng.integers(2) else SINGLE


def load_data_detection(source: ImageSource, rng: np.random.Generator, opts: AugmentOptions,
                        mode: int = SINGLE) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One slot of Darknet's `load_data_detection`: the network input (C, h, w) float32, its truth rows and
    the image paths used (several with mixup/mosaic). ``mode`` is the chunk's :func:`chunk_mode`."""
    image, truth, paths = load_slot(source, rng, opts, mode)
    return as_float(image), truth, paths


def load_slot(source: ImageSource, rng: np.random.Generator, opts: AugmentOptions,
              mode: int = SINGLE) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`load_data_detection` with the image left as uint8 when the pipeline produced 8-bit values
    (AB with OpenCV, except mixup blends): the loader hands those to the training device as they are."""
    if opts.flavor.pjreddie:
        sample = source.draw(rng)
        image, truth = augment_pj(sample, rng, opts)
        return image, truth, [sample.path]
    if mode == MOSAIC:
        return _load_mosaic(source, rng, opts)
    first = source.draw(rng)
    image, truth, _ = _augment_ab(first, rng, opts)
    if mode != MIXUP:
        return image, truth, [first.path]
    second = source.draw(rng)
    image2, truth2, _ = augment_ab(second, rng, opts)
    blended = (image2 * F32(0.5) + as_float(image) * F32(0.5)).astype(F32)
    # AB with OpenCV keeps the first image's boxes first; AB without OpenCV puts the new image's first.
    truth = blend_truth(truth, truth2) if opts.backend == "opencv" else blend_truth(truth2, truth)
    return blended, truth, [first.path, second.path]


def _load_mosaic(source: ImageSource, rng: np.random.Generator, opts: AugmentOptions):
    w, h = opts.width, opts.height
    cut = mosaic_cut(rng, w, h)
    image = np.zeros((opts.channels, h, w), np.uint8)       # mosaic exists only in the 8-bit OpenCV pipeline
    truth = np.zeros((opts.max_boxes, opts.truth.truth_size), F32)
    paths = []
    for k in range(4):
        sample = source.draw(rng)
        piece, piece_truth, crop = _augment_ab(sample, rng, opts, mosaic_pass=k)
        oh, ow = _size(sample.pixels, opts)
        shifts = mosaic_shifts(crop, cut, w, h, ow, oh)
        paste_mosaic_pass(image, piece, k, cut, shifts)
        truth = blend_truth_mosaic(truth, piece_truth, k, cut, shifts, w, h, opts.mosaic_bound)
        paths.append(sample.path)
    return image, truth, paths


# -- AlexeyAB --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crop:
    """AB's crop of the original image: offsets (negative = padding) and the crop size."""
    pleft: int
    pright: int
    ptop: int
    pbot: int
    swidth: int
    sheight: int
    flip: bool


def augment_ab(sample: Sample, rng: np.random.Generator, opts: AugmentOptions,
               mosaic_pass: int | None = None) -> tuple[np.ndarray, np.ndarray, Crop]:
    """AB's per-image augmentation (either backend): jitter crop, stretch to the network size, flip, HSV.
    The image is float32 (C, h, w) in [0, 1]."""
    image, truth, crop = _augment_ab(sample, rng, opts, mosaic_pass)
    return as_float(image), truth, crop


def _augment_ab(sample: Sample, rng: np.random.Generator, opts: AugmentOptions,
                mosaic_pass: int | None = None) -> tuple[np.ndarray, np.ndarray, Crop]:
    """:func:`augment_ab` with the OpenCV backend's image left as uint8 (C, h, w)."""
    oh, ow = _size(sample.pixels, opts)
    crop, dhue, dsat, dexp = draw_ab_crop(rng, opts, ow, oh, mosaic_pass)
    sx, sy = F32(crop.swidth) / F32(ow), F32(crop.sheight) / F32(oh)
    transform = BoxTransform(dx=(F32(crop.pleft) / F32(ow)) / sx, dy=(F32(crop.ptop) / F32(oh)) / sy,
                             sx=F32(1.0 / float(sx)), sy=F32(1.0 / float(sy)), flip=crop.flip)
    truth = fill_truth_detection(sample.records, rng, opts.truth, transform, sample.label_file)
    if opts.backend == "opencv":
        image = image_data_augmentation_u8(sample.pixels, crop, opts, dhue, dsat, dexp)
    else:
        image = image_data_augmentation_darknet(sample.pixels, crop, opts, dhue, dsat, dexp)
    return image, truth, crop


def draw_ab_crop(rng: np.random.Generator, opts: AugmentOptions, ow: int, oh: int,
                 mosaic_pass: int | None = None) -> tuple[Crop, float, float, float]:
    """AB's random crop offsets (jitter, `resize` zoom, letter_box, mosaic corner hugging) and HSV factors.
    All C `int` conversions truncate toward zero, as in Darknet."""
    jitter, resize = F32(opts.jitter), F32(opts.resize)
    dw, dh = int(F32(ow) * jitter), int(F32(oh) * jitter)
    down = F32(1) / resize if resize > 1 else resize
    up = F32(1) / resize if resize < 1 else resize
    min_rdw, min_rdh = (int(F32(n) * (F32(1) - F32(1) / down) / F32(2)) for n in (ow, oh))
    max_rdw, max_rdh = (int(F32(n) * (F32(1) - F32(1) / up) / F32(2)) for n in (ow, oh))
    rr1, rr2 = random_float(rng), random_float(rng)
    r1, r2, r3, r4 = (random_float(rng) for _ in range(4))
    flip = bool(rng.integers(2)) if opts.flip else False
    dhue = rand_uniform(rng, -opts.hue, opts.hue)
    dsat, dexp = rand_scale(rng, opts.saturation), rand_scale(rng, opts.exposure)
    pleft, pright = int(_precalc(-dw, dw, r1)), int(_precalc(-dw, dw, r2))
    ptop, pbot = int(_precalc(-dh, dh, r3)), int(_precalc(-dh, dh, r4))
    high_w, high_h = (0, 0) if resize < 1 else (max_rdw, max_rdh)   # resize < 1: only zoom out
    pleft, pright = int(pleft + _precalc(min_rdw, high_w, rr1)), int(pright + _precalc(min_rdw, high_w, rr2))
    ptop, pbot = int(ptop + _precalc(min_rdh, high_h, rr1)), int(pbot + _precalc(min_rdh, high_h, rr2))
    if opts.letter_box:
        pleft, pright, ptop, pbot = _letter_box(pleft, pright, ptop, pbot, ow, oh, opts)
    if mosaic_pass is not None and rng.integers(2) == 0:
        pleft, pright, ptop, pbot = hug_corner(pleft, pright, ptop, pbot, mosaic_pass, flip)
    swidth, sheight = ow - pleft - pright, oh - ptop - pbot
    if swidth <= 0 or sheight <= 0 or ow - pleft <= 0 or oh - ptop <= 0:
        # AB-OpenCV falls back to the whole image (pright/pbot keep their values); AB without OpenCV has no
        # check and would crash, so both backends fall back here.
        swidth, sheight, pleft, ptop = ow, oh, 0, 0
    return Crop(pleft, pright, ptop, pbot, swidth, sheight, flip), float(dhue), float(dsat), float(dexp)


def _precalc(low: float, high: float, r: np.float32) -> np.float32:
    """AB `rand_precalc_random(min, max, r)`: min + r·(max − min) with a pre-drawn r."""
    low, high = F32(low), F32(high)
    if high < low:
        low, high = high, low
    return F32(r * (high - low) + low)


def _letter_box(pleft, pright, ptop, pbot, ow, oh, opts):
    """Pad the crop to the network's aspect ratio (AB `letter_box=1` in training)."""
    img_ar, net_ar = F32(ow) / F32(oh), F32(opts.width) / F32(opts.height)
    if img_ar / net_ar > 1:
        delta = (F32(ow) / net_ar - F32(oh)) / F32(2)
        return pleft, pright, int(F32(ptop) - delta), int(F32(pbot) - delta)
    delta = (F32(oh) * net_ar - F32(ow)) / F32(2)
    return int(F32(pleft) - delta), int(F32(pright) - delta), ptop, pbot


def hug_corner(pleft, pright, ptop, pbot, k, flip):
    """Mosaic: move the crop so the image touches the outer corner of quadrant k (0 TL, 1 TR, 2 BL, 3 BR);
    with flip the left/right roles are exchanged."""
    if (k in (0, 2)) != flip:     # the kept part must reach the crop's right edge: no left padding
        pright, pleft = pright + pleft, 0
    else:
        pleft, pright = pleft + pright, 0
    if k in (0, 1):
        pbot, ptop = pbot + ptop, 0
    else:
        ptop, pbot = ptop + pbot, 0
    return pleft, pright, ptop, pbot


def image_data_augmentation(rgb: np.ndarray, crop: Crop, opts: AugmentOptions,
                            dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """AB `image_data_augmentation`: uint8 throughout, mean-colour padding, INTER_LINEAR, /255 at the end."""
    return unit_float(image_data_augmentation_u8(rgb, crop, opts, dhue, dsat, dexp))


def image_data_augmentation_u8(rgb: np.ndarray, crop: Crop, opts: AugmentOptions,
                               dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """:func:`image_data_augmentation` before the /255: planar uint8 (C, h, w)."""
    sized = cv2.resize(_crop_u8(rgb, crop), (opts.width, opts.height), interpolation=cv2.INTER_LINEAR)
    if crop.flip:
        sized = cv2.flip(sized, 1)
    sized = distort_image_u8(sized, dhue, dsat, dexp)
    return sized[None] if sized.ndim == 2 else sized.transpose(2, 0, 1)


def _crop_u8(rgb: np.ndarray, crop: Crop) -> np.ndarray:
    """AB's crop: the part inside the image (a view, no copy), padded with the image's mean colour (rounded)
    where the crop reaches outside it."""
    oh, ow = rgb.shape[:2]
    x0, y0 = max(crop.pleft, 0), max(crop.ptop, 0)
    x1, y1 = min(crop.pleft + crop.swidth, ow), min(crop.ptop + crop.sheight, oh)
    pad = (y0 - crop.ptop, crop.ptop + crop.sheight - y1, x0 - crop.pleft, crop.pleft + crop.swidth - x1)
    if not any(pad):
        return rgb[y0:y1, x0:x1]
    channels = 1 if rgb.ndim == 2 else rgb.shape[2]
    mean = [float(v) for v in np.clip(np.rint(cv2.mean(rgb)[:channels]), 0, 255)]
    if x1 <= x0 or y1 <= y0:            # nothing of the image is kept
        return np.full((crop.sheight, crop.swidth) + rgb.shape[2:], mean if rgb.ndim == 3 else mean[0], np.uint8)
    return cv2.copyMakeBorder(rgb[y0:y1, x0:x1], *pad, cv2.BORDER_CONSTANT, value=mean + [0.0] * (4 - channels))


def image_data_augmentation_darknet(im: np.ndarray, crop: Crop, opts: AugmentOptions,
                                    dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """AB without OpenCV: `crop_image` (edge replication), `resize_image`, `flip_image`, `distort_image`."""
    _, oh, ow = im.shape
    rows = np.clip(np.arange(crop.sheight) + crop.ptop, 0, oh - 1)
    cols = np.clip(np.arange(crop.swidth) + crop.pleft, 0, ow - 1)
    sized = resize_image(im[:, rows][:, :, cols], opts.width, opts.height)
    if crop.flip:
        sized = sized[:, :, ::-1]
    return distort_image(np.ascontiguousarray(sized), dhue, dsat, dexp)


# -- pjreddie -------------------------------------------------------------------------------------------
def augment_pj(sample: Sample, rng: np.random.Generator, opts: AugmentOptions) -> tuple[np.ndarray, np.ndarray]:
    """pjreddie `load_data_detection` for one image: aspect jitter, scale 1, random placement on grey.
    ``sample.pixels``: uint8 (H, W, 3) RGB as decoded (the loader's) or float32 (C, H, W) in [0, 1]."""
    im = sample.pixels
    eight_bit = im.dtype == np.uint8
    oh, ow = im.shape[:2] if eight_bit else im.shape[1:3]
    w, h = F32(opts.width), F32(opts.height)
    dw, dh = F32(opts.jitter) * F32(ow), F32(opts.jitter) * F32(oh)
    new_ar = (F32(ow) + rand_uniform(rng, -dw, dw)) / (F32(oh) + rand_uniform(rng, -dh, dh))
    nw, nh = (h * new_ar, h) if new_ar < 1 else (w, w / new_ar)
    dx, dy = rand_uniform(rng, 0, w - nw), rand_uniform(rng, 0, h - nh)
    dhue = rand_uniform(rng, -opts.hue, opts.hue)
    dsat, dexp = rand_scale(rng, opts.saturation), rand_scale(rng, opts.exposure)
    flip = bool(rng.integers(2))
    place = (int(nw), int(nh), int(dx), int(dy))
    if eight_bit and kernels.AVAILABLE and im.ndim == 3 and im.shape[2] == 3:
        image = kernels.pj_image(im, place, opts.width, opts.height, dhue, dsat, dexp, flip)
    else:
        image = _pj_image(unit_float(im.transpose(2, 0, 1)) if eight_bit else im, place, opts, dhue, dsat,
                          dexp, flip)
    transform = BoxTransform(dx=-dx / w, dy=-dy / h, sx=nw / w, sy=nh / h, flip=flip)
    return image, fill_truth_detection(sample.records, rng, opts.truth, transform, sample.label_file)


def _pj_image(im: np.ndarray, place: tuple, opts: AugmentOptions, dhue, dsat, dexp, flip: bool) -> np.ndarray:
    """pjreddie's image steps in numpy: place on a 0.5 grey canvas, `distort_image`, flip
    (:func:`darknet_py.data.kernels.pj_image` computes the same values)."""
    canvas = np.full((im.shape[0], opts.height, opts.width), 0.5, F32)
    place_image(im, *place, canvas)
    image = distort_image(canvas, dhue, dsat, dexp)
    return image[:, :, ::-1] if flip else image     # a view: the batch copies the image anyway


def _size(pixels: np.ndarray, opts: AugmentOptions) -> tuple[int, int]:
    """(height, width) of a decoded image in the pipeline's layout."""
    return pixels.shape[:2] if opts.decodes_u8 else pixels.shape[1:3]
