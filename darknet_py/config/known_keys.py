"""Cfg keys that Darknet reads and darknet_py does not implement: each is either *inert* (it changes nothing a
detector computes, in Darknet either: classifier/RNN settings, GPU memory knobs, a key that only the current
lr policy or optimizer would read) and stays silent, or *warned* once with its file:line and what ignoring it
changes. Keys darknet_py refuses (xnor, binary, ...) raise in their layer's parser; docs/cfg-keys.md lists
every key of both forks with its status and is checked against the code by tests/test_cfg_keys.py."""
from __future__ import annotations

from ..errors import warn
from ..flavor import AB, PJ
from .reader import Section

_CLASSIFIER = "used by Darknet's classifier/RNN training only, not by a detector"
_GPU = "a GPU speed/memory setting of Darknet's CUDA code; results are the same"
_POLICY = "read only by another lr policy or by Adam, as in Darknet"

# [net] keys Darknet reads that change nothing in a detector: not reported.
NET_INERT = {
    **dict.fromkeys(("time_steps", "inputs", "angle", "aspect", "max_crop", "min_crop", "center", "max_ratio",
                     "min_ratio", "random", "notruth", "label_smooth_eps", "unsupervised", "attention"),
                    _CLASSIFIER),
    **dict.fromkeys(("use_cuda_graph", "optimized_memory", "workspace_size_limit_MB"), _GPU),
    **dict.fromkeys(("step", "scale", "steps", "scales", "gamma", "B1", "B2", "eps"), _POLICY),
    "show_receptive_field": "prints the receptive field of each layer; nothing is computed from it",
    **dict.fromkeys(("augment_speed", "sequential_subdivisions", "seq_scales"), "read for track=1 only"),
    **dict.fromkeys(("contrastive_jit_flip", "contrastive_color"), "read for contrastive=1 only"),
}

# [net] keys of AlexeyAB's detector training that darknet_py does not implement: what ignoring them changes.
NET_WARNED = {
    "cutmix": "no CutMix augmentation: training images are not cut and mixed",
    "blur": "no blur augmentation of training images",
    "gaussian_noise": "no Gaussian-noise augmentation of training images",
    "track": "no sequential video-frame batches: images are drawn at random",
    "dynamic_minibatch": "the mini-batch size stays fixed when random= resizes the network",
    "contrastive": "no contrastive (self-supervised) loss",
    "adversarial_lr": "no adversarial-example training steps",
    "try_fix_nan": "NaN/inf values are not replaced; training stops with a diagnosis instead",
    "equidistant_point": "the [yolo] losses are not changed for tracking",
    "badlabels_rejection_percentage": "boxes the network disagrees with are not rejected from the loss",
    "num_sigmas_reject_badlabels": "boxes the network disagrees with are not rejected from the loss",
}

# keys any layer section may carry (AB parse_network_cfg_custom, PJ parse_network_cfg) that darknet_py does
# not implement
LAYER_WARNED = {
    "clip": "this layer's weights are not clipped after each update",
    "onlyforward": "this layer still learns (Darknet skips its backward pass and update)",
    "dont_update": "this layer is still updated from the first iteration",
    "burnin_update": "this layer is updated during burn_in too",
    "train_only_bn": "all layers up to this one still learn (Darknet trains only their batch-norm)",
    "truth": "no ground truth is fed into this layer (PJ RNN option)",
    "numload": "all of this layer's filters are loaded",
    "smooth": "no smoothing term in this layer's delta",
}
LAYER_INERT = {"stream": _GPU, "wait_stream": _GPU}

# [convolutional] keys besides those implemented or refused by the layer's parser: (warned, inert) per fork
_DOT = {"dot": "its only use, a GPU gradient term, is commented out in both forks"}
CONV_KEYS = {    # keyed by Flavor.name
    AB.name: ({"cbn": "plain batch-norm statistics (no cross-iteration batch-norm)",
               "grad_centr": "the weight gradients are not centralised"},
              {**_DOT, **dict.fromkeys(("angle", "reverse", "bin_output"),
                                       "read only with sway/rotate/stretch or xnor, which darknet_py refuses")}),
    PJ.name: ({}, _DOT),
}

# [region] (YOLOv2) training keys: darknet_py runs [region] detectors but does not train them
REGION_INERT = dict.fromkeys(
    ("rescore", "thresh", "bias_match", "coord_scale", "object_scale", "noobject_scale", "class_scale",
     "mask_scale", "absolute", "log", "sqrt", "background", "map", "classfix", "focal_loss", "resize"),
    "used by Darknet's [region] training only; darknet_py trains [yolo] detectors")
DROPOUT_INERT = dict.fromkeys(("dropblock_size_abs", "dropblock_size_rel"),
                              "read only with dropblock=1, which darknet_py refuses")

# AlexeyAB's [yolo] tracking keys: the embedding loss changes training; the rest only its demo's tracker
YOLO_WARNED = {"embedding_layer": "no embedding (tracking) loss is trained"}
YOLO_INERT = dict.fromkeys(("track_history_size", "sim_thresh", "dets_for_track", "dets_for_show",
                            "track_ciou_norm"), "used by AlexeyAB's demo tracker only")


def report_unimplemented(section: Section, warned: dict[str, str], inert: dict[str, str]) -> None:
    """Mark the section's known-but-unimplemented keys as read; warn once about each one whose value turns on
    something darknet_py does not do (Darknet's defaults, 0, turn them all off)."""
    for opt in section.options:
        if opt.used or (opt.key not in warned and opt.key not in inert):
            continue
        opt.used = True
        if opt.key in warned and not _is_zero(opt.value):
            warn(f"'{opt.key}={opt.value}' is not implemented by darknet_py: {warned[opt.key]}", section.file,
                 opt.line)


def _is_zero(value: str) -> bool:
    try:
        return float(value) == 0
    except (TypeError, ValueError):
        return False
