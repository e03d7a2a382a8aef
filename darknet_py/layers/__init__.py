"""One module per cfg section kind. :data:`SECTION_KINDS` maps a section name (and its aliases) to the
module's option parser and layer class; :data:`SECTIONS` hands that table to the cfg reader."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from ..config.cfg import SectionTable
from . import (activation, avgpool, batchnorm, connected, convolutional, dropout, empty, local_avgpool,
               maxpool, region, reorg, route, sam, scale_channels, shortcut, softmax, upsample, yolo)
from .base import BuildContext, DarknetLayer, Shape  # noqa: F401


class LayerKind(NamedTuple):
    name: str
    parse: Callable[..., Any]
    layer: type
    ab_only: bool = False


_KINDS = (
    (("convolutional", "conv"), LayerKind("convolutional", convolutional.parse, convolutional.ConvolutionalLayer)),
    (("maxpool", "max"), LayerKind("maxpool", maxpool.parse, maxpool.MaxpoolLayer)),
    (("avgpool", "avg"), LayerKind("avgpool", avgpool.parse, avgpool.AvgpoolLayer)),
    (("local_avgpool", "local_avg"), LayerKind("local_avgpool", local_avgpool.parse,
                                               local_avgpool.LocalAvgpoolLayer, True)),
    (("route",), LayerKind("route", route.parse, route.RouteLayer)),
    (("shortcut",), LayerKind("shortcut", shortcut.parse, shortcut.ShortcutLayer)),
    (("upsample",), LayerKind("upsample", upsample.parse, upsample.UpsampleLayer)),
    (("yolo",), LayerKind("yolo", yolo.parse, yolo.YoloLayer)),
    (("region",), LayerKind("region", region.parse, region.RegionLayer)),
    (("reorg",), LayerKind("reorg", reorg.parse, reorg.ReorgLayer)),
    (("reorg3d",), LayerKind("reorg3d", reorg.parse, reorg.Reorg3dLayer, True)),
    (("dropout",), LayerKind("dropout", dropout.parse, dropout.DropoutLayer)),
    (("connected", "conn"), LayerKind("connected", connected.parse, connected.ConnectedLayer)),
    (("softmax", "soft"), LayerKind("softmax", softmax.parse, softmax.SoftmaxLayer)),
    (("sam",), LayerKind("sam", sam.parse, sam.SamLayer, True)),
    (("scale_channels",), LayerKind("scale_channels", scale_channels.parse, scale_channels.ScaleChannelsLayer,
                                    True)),
    (("empty", "silence"), LayerKind("empty", empty.parse, empty.EmptyLayer, True)),
    (("activation",), LayerKind("activation", activation.parse, activation.ActivationLayer)),
    (("batchnorm",), LayerKind("batchnorm", batchnorm.parse, batchnorm.BatchNormLayer)),
)

SECTION_KINDS: dict[str, LayerKind] = {name: kind for names, kind in _KINDS for name in names}

# Darknet section kinds that darknet_py knowingly does not implement (a clear error, not "unknown").
UNSUPPORTED_KINDS = ("local", "rnn", "gru", "lstm", "crnn", "conv_lstm", "crop", "cost", "detection",
                     "normalization", "lrn", "deconvolutional", "deconv", "Gaussian_yolo", "history",
                     "contrastive", "implicit", "logistic", "l2norm", "iseg")

SECTIONS = SectionTable(SECTION_KINDS, UNSUPPORTED_KINDS)
