"""The two Darknet forks as values: pjreddie's darknet ("pj") and AlexeyAB's ("ab").

Darknet has no `if fork == ...`: each fork is its own code base. Here both live in one code base, so every
constant and small rule in which they differ is a field of one frozen `Flavor` value per fork, and code asks
the value (``flavor.weights_version``, ``flavor.label_path(...)``) instead of comparing names. This module is
the only place that knows the fork names; `flavor_of` turns a name from the command line or a caller into
the value. Where the forks differ by a whole algorithm (the [yolo] loss, the augmentation pipeline), code
asks ``flavor.alexeyab``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

# section kinds Darknet's trainer and detector commands treat as detection layers
DETECTION_KINDS = ("yolo", "region")


@dataclass(frozen=True)
class Flavor:
    name: str                                   # "ab" or "pj", as --flavor spells it
    alexeyab: bool                              # AlexeyAB's fork (the larger algorithmic differences key on this)
    # -- .weights files (spec §6) --
    weights_version: tuple[int, int, int]       # (major, minor, revision) written in a .weights header
    seen_wide_below_1000_only: bool             # PJ reads an 8-byte `seen` only when major and minor < 1000
    saves_seen_from_iteration: bool             # AB writes `seen` = iteration · batch, PJ the live `seen`
    # -- cfg defaults and keys (spec §1-§3) --
    train_list_default: str                     # .data `train` when absent
    adam_eps_default: float                     # [net] `eps`
    ab_only_sections_allowed: bool              # sections only AlexeyAB's parser knows ([sam], [scale_channels] ...)
    max_boxes_default: int                      # [yolo] `max` (PJ's truth buffer is hard-wired to 90)
    region_max_default: int                     # [region] `max`
    dropout_probability_default: float          # [dropout] `probability`
    shortcut_weighted_inputs: bool              # AB [shortcut]: many `from`, weights_type; PJ: one, alpha/beta
    bn_eps_outside_sqrt: bool                   # PJ CPU inference: (x-mean)/(sqrt(var)+1e-6)
    batchnorm_layer_saves_biases: bool          # standalone [batchnorm] in a .weights file: AB writes β first
    iou_zero_guard: bool                        # AB box_iou answers 0 for an empty intersection/union, PJ 0/0
    # -- training data (spec §1.5, §11) --
    label_rule: Callable[[str], str]            # image path -> the label file Darknet reads
    label_rule_text: str                        # that rule in words, for messages
    missing_label_file_is_error: bool           # PJ aborts on a label file it cannot open; AB trains on no boxes
    truth_size: int                             # numbers per truth row: x y w h class (+ AB track id)
    trainer_takes_last_layer: bool              # PJ's trainer reads jitter/max/random from the last layer itself
    backup_last_suffix: str                     # the rolling checkpoint: PJ base.backup, AB base_last.weights
    # -- evaluation (spec §12) --
    test_thresh: float                          # `detector test` -thresh default
    valid_thresh: float                         # `detector valid` detection threshold
    valid_nms: float                            # `detector valid` NMS threshold
    letterbox_always: bool                      # PJ letterboxes test/valid/map input; AB only with letter_box=1

    # training loop
    backup_banner: bool                         # says the save periods at the start and `-clear` at the end
    small_batch_warning: bool                   # warns when batch < 8 (AB recommends 64)
    map_progress_lines: bool                    # with -map: the next mAP iteration and last/best mAP each iteration
    resizing_line: str                          # a multiscale resize ({width}, {height}, {coef})

    @property
    def pjreddie(self) -> bool:
        return not self.alexeyab

    @property
    def other(self) -> "Flavor":
        """The other fork (messages: a dataset laid out for one fork often fails in the other)."""
        return next(f for f in FLAVORS.values() if f.name != self.name)

    def label_path(self, image_path: str) -> str:
        return self.label_rule(image_path)

    def backup_name(self, base: str) -> str:
        """File name of the rolling checkpoint a resume starts from."""
        return base + self.backup_last_suffix

    def trainer_layer(self, layers: Sequence) -> Optional[object]:
        """The detection layer Darknet's trainer takes jitter/random/max/classes from (spec §2): AB the last
        [yolo]/[region], PJ the last layer when it is one. ``layers``: anything with a ``kind``."""
        if self.trainer_takes_last_layer:
            return layers[-1] if layers and layers[-1].kind in DETECTION_KINDS else None
        return last_detection_layer(layers)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Flavor({self.name!r})"

    def __reduce__(self):
        # unpickle (DataLoader workers, DDP) to the one value per fork
        return flavor_of, (self.name,)


def last_detection_layer(layers: Sequence) -> Optional[object]:
    """The last [yolo]/[region] of ``layers`` (anything with a ``kind``), None when there is none."""
    return next((layer for layer in reversed(layers) if layer.kind in DETECTION_KINDS), None)


# -- label-path rules (spec §1.5) -------------------------------------------------------------------
# pjreddie: plain first-occurrence substring replacements, in this order.
PJ_REPLACEMENTS = (("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"),
                   (".jpg", ".txt"), (".png", ".txt"), (".JPG", ".txt"), (".JPEG", ".txt"))
# AlexeyAB: directory replacements (first occurrence each) ...
AB_DIR_REPLACEMENTS = (
    ("/images/train2017/", "/labels/train2017/"), ("/images/val2017/", "/labels/val2017/"),
    ("/JPEGImages/", "/labels/"),
    ("\\images\\train2017\\", "\\labels\\train2017\\"), ("\\images\\val2017\\", "\\labels\\val2017\\"),
    ("\\images\\train2014\\", "\\labels\\train2014\\"), ("\\images\\val2014\\", "\\labels\\val2014\\"),
    ("/images/train2014/", "/labels/train2014/"), ("/images/val2014/", "/labels/val2014/"),
    ("\\JPEGImages\\", "\\labels\\"),
)
# ... then the extension, only when the path ends with it.
AB_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP", ".ppm", ".PPM",
                 ".tiff", ".TIFF")


def pj_label_path(image_path: str) -> str:
    path = image_path
    for old, new in PJ_REPLACEMENTS:
        path = path.replace(old, new, 1)
    return path


def ab_label_path(image_path: str) -> str:
    path = image_path
    for old, new in AB_DIR_REPLACEMENTS:
        path = path.replace(old, new, 1)
    path = path.strip(" \t")
    for ext in AB_EXTENSIONS:
        if path.endswith(ext):
            return path[:-len(ext)] + ".txt"
    return path


AB = Flavor(
    name="ab", alexeyab=True,
    weights_version=(0, 2, 5), seen_wide_below_1000_only=False, saves_seen_from_iteration=True,
    train_list_default="data/train.txt", adam_eps_default=1e-6, ab_only_sections_allowed=True,
    max_boxes_default=200, region_max_default=200, dropout_probability_default=0.2,
    shortcut_weighted_inputs=True, bn_eps_outside_sqrt=False, batchnorm_layer_saves_biases=True,
    iou_zero_guard=True,
    label_rule=ab_label_path,
    label_rule_text="AlexeyAB rule: /JPEGImages/ (and /images/train2017/ ...) -> /labels/, image extension -> .txt",
    missing_label_file_is_error=False, truth_size=6, trainer_takes_last_layer=False,
    backup_last_suffix="_last.weights",
    test_thresh=.25, valid_thresh=.001, valid_nms=.6, letterbox_always=False,
    backup_banner=True, small_batch_warning=True, map_progress_lines=True,
    resizing_line="Resizing, random_coef = {coef:.2f} \n\n {width} x {height} ")

PJ = Flavor(
    name="pj", alexeyab=False,
    weights_version=(0, 2, 0), seen_wide_below_1000_only=True, saves_seen_from_iteration=False,
    train_list_default="data/train.list", adam_eps_default=1e-7, ab_only_sections_allowed=False,
    max_boxes_default=90, region_max_default=30, dropout_probability_default=0.5,
    shortcut_weighted_inputs=False, bn_eps_outside_sqrt=True, batchnorm_layer_saves_biases=False,
    iou_zero_guard=False,
    label_rule=pj_label_path,
    label_rule_text="pjreddie rule: first 'images', 'JPEGImages', 'raw' -> 'labels', .jpg/.png/.JPG/.JPEG -> .txt",
    missing_label_file_is_error=True, truth_size=5, trainer_takes_last_layer=True,
    backup_last_suffix=".backup",
    test_thresh=.5, valid_thresh=.005, valid_nms=.45, letterbox_always=True,
    backup_banner=False, small_batch_warning=False, map_progress_lines=False,
    resizing_line="Resizing\n{width}")

FLAVORS: dict[str, Flavor] = {"ab": AB, "pj": PJ}


def flavor_of(value: "Flavor | str") -> Flavor:
    """The Flavor for a name ("ab"/"pj") or a Flavor; ValueError naming the value otherwise."""
    if isinstance(value, Flavor):
        return value
    try:
        return FLAVORS[value]
    except (KeyError, TypeError):
        raise ValueError(f"unknown flavor {value!r}, expected one of {', '.join(FLAVORS)}") from None
