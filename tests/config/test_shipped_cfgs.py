"""The cfgs shipped in cfg/: the standard YOLO layouts, COCO metadata and the demo's shapes-tiny.cfg.

Golden data:
* YOLOv3 family: Debian's official pjreddie cfgs (/usr/share/darknet/cfg, oracle `debian_share`), compared
  layer by layer after parsing both with darknet_py, and the real `darknet ops` layer table of our files.
* YOLOv4 family (Debian's 2018 darknet cannot parse mish/groups): the published models' figures -- the
  official .weights file sizes (yolov4.weights 257,717,640 bytes, yolov4-tiny.weights 24,251,276 bytes,
  yolov3.weights 248,007,048, yolov3-spp.weights 252,209,544, yolov3-tiny.weights 35,434,956; 20-byte
  header + float32 payload) and YOLOv4's 64,363,101 trainable parameters, plus the layer counts and head
  positions of AlexeyAB's yolov4.cfg / yolov4-tiny.cfg (verified against those files with
  `python cfg/make_standard_cfgs.py --compare <AlexeyAB cfg dir>`: identical layer by layer).
"""
from __future__ import annotations

import collections
import importlib.util
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from darknet_py.network import parse_cfg
from darknet_py.config.data import parse_data, read_names
from darknet_py.network import Network, load_network
from helpers.paths import ROOT

CFG = ROOT / "cfg"
V3 = ("yolov3", "yolov3-spp", "yolov3-tiny")


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / ("cfg" if "cfg" in name else "data") /
                                                  f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator():
    return _script("make_standard_cfgs")


def build(name: str, flavor: str, device: str = "meta") -> Network:
    """The network of cfg/<name>.cfg; on the meta device (shapes, no weights) unless it must run."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # a shipped cfg must not have unused or doubtful keys
        model = parse_cfg(CFG / f"{name}.cfg", flavor=flavor, batch=1)
    with torch.device(device):
        return Network(model)


def payload_floats(network: Network) -> int:
    return sum(t.numel() for layer in network.layers for t in layer.darknet_arrays())


def trainable(network: Network) -> int:
    return sum(p.numel() for p in network.parameters())


def test_committed_files_are_what_the_generator_writes(generator):
    for name, text in generator.standard_files().items():
        assert (CFG / name).read_text() == text, f"cfg/{name} is stale: run python cfg/make_standard_cfgs.py"


# -- YOLOv3 family against Debian's official cfgs --------------------------------------------------------
@pytest.mark.parametrize("flavor", ["pj", "ab"])
@pytest.mark.parametrize("name", V3)
def test_v3_layers_equal_debian_official_cfg(generator, debian_share, name, flavor):
    net, ours = generator.layer_table(CFG / f"{name}.cfg", flavor)
    ref_net, theirs = generator.layer_table(debian_share / "cfg" / f"{name}.cfg", flavor)
    assert len(ours) == len(theirs)
    for index, (mine, official) in enumerate(zip(ours, theirs)):
        assert mine == official, f"layer {index}"
    assert (net.width, net.height, net.channels) == (ref_net.width, ref_net.height, ref_net.channels)
    for key in ("learning_rate", "momentum", "decay", "burn_in", "max_batches", "policy", "steps", "scales",
                "saturation", "exposure", "hue"):
        assert getattr(net, key) == getattr(ref_net, key), key


def darknet_ops(binary: str, cfg: Path, tmp_path: Path) -> list[tuple]:
    """(index, kind, output (w, h, c) or None, sources) rows of the real binary's layer table."""
    one = tmp_path / cfg.name    # batch=1 copy: Darknet allocates every layer's output for the whole batch
    one.write_text(re.sub(r"(?m)^(batch|subdivisions)=\d+$", r"\1=1", cfg.read_text()))
    out = subprocess.run([binary, "ops", str(one)], capture_output=True, text=True, timeout=120)
    rows = []
    kinds = {"conv": "convolutional", "max": "maxpool", "res": "shortcut", "route": "route",
             "upsample": "upsample", "yolo": "yolo"}
    for line in (out.stdout + out.stderr).splitlines():
        match = re.match(r"\s*(\d+) (conv|max|res|route|upsample|yolo)\b(.*)", line)
        if not match:
            continue
        index, kind, rest = int(match[1]), kinds[match[2]], match[3]
        shape = re.search(r"->\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)", rest)
        sources = ()
        if kind in ("route", "shortcut"):
            sources = tuple(int(v) for v in rest.split("->")[0].split()[:4 if kind == "route" else 1])
        rows.append((index, kind, tuple(map(int, shape.groups())) if shape else None, sources))
    return rows


@pytest.mark.parametrize("name", V3 + ("shapes-tiny",))
def test_real_darknet_reads_the_shipped_cfg(darknet_binary, name, tmp_path):
    network = build(name, "pj")
    rows = darknet_ops(darknet_binary, CFG / f"{name}.cfg", tmp_path)
    assert [r[0] for r in rows] == list(range(len(network.layers)))
    for (index, kind, shape, sources), layer in zip(rows, network.layers):
        assert kind == layer.kind, index
        if shape is not None:
            s = layer.out_shape
            assert shape == (s.w, s.h, s.c), index
        if kind in ("route", "shortcut"):
            assert sources == tuple(layer.sources), index


@pytest.mark.parametrize("name, file_bytes", [("yolov3", 248_007_048), ("yolov3-spp", 252_209_544),
                                              ("yolov3-tiny", 35_434_956)])
def test_v3_payload_matches_official_weights_size(name, file_bytes):
    assert 20 + 4 * payload_floats(build(name, "pj")) == file_bytes


def test_official_yolov3_tiny_weights_load_exactly(yolov3_tiny_weights):
    # load_weights refuses files with floats left over or missing, so this is an exact fit
    network = load_network(str(CFG / "yolov3-tiny.cfg"), str(yolov3_tiny_weights), flavor="pj", batch=1)
    assert network.seen == 32013312


# -- YOLOv4 family against the published models ----------------------------------------------------------
def kind_counts(network: Network) -> dict:
    return dict(collections.Counter(layer.kind for layer in network.layers))


def yolo_heads(network: Network) -> list[tuple]:
    return [(i, network.layers[i].out_shape.w, network.layers[i].options.mask)
            for i in network.detection_indices]


def test_yolov4_is_the_published_model():
    network = build("yolov4", "ab")
    assert len(network.layers) == 162
    assert kind_counts(network) == {"convolutional": 110, "route": 21, "shortcut": 23, "maxpool": 3,
                                    "upsample": 2, "yolo": 3}
    assert trainable(network) == 64_363_101
    assert 20 + 4 * payload_floats(network) == 257_717_640
    assert yolo_heads(network) == [(139, 76, (0, 1, 2)), (150, 38, (3, 4, 5)), (161, 19, (6, 7, 8))]
    activations = [layer.options.activation for layer in network.layers if layer.kind == "convolutional"]
    assert set(activations[:72]) == {"mish"} and "mish" not in activations[72:]
    heads = [network.layers[i].options for i in network.detection_indices]
    assert [h.scale_x_y for h in heads] == [1.2, 1.1, 1.05]
    assert {(h.iou_loss, h.iou_normalizer, h.iou_thresh, h.max_delta, h.nms_kind) for h in heads} == \
        {("ciou", 0.07, 0.213, 5.0, "greedynms")}
    assert network.net_options.mosaic and (network.net_options.width, network.net_options.height) == (608, 608)


def test_yolov4_tiny_is_the_published_model():
    network = build("yolov4-tiny", "ab")
    assert len(network.layers) == 38
    assert 20 + 4 * payload_floats(network) == 24_251_276
    assert yolo_heads(network) == [(30, 13, (3, 4, 5)), (37, 26, (1, 2, 3))]
    halves = [i for i, layer in enumerate(network.layers) if layer.kind == "route" and layer.groups == 2]
    assert halves == [3, 11, 19]
    assert {network.layers[i].options.resize for i in network.detection_indices} == {1.5}


# -- COCO metadata ---------------------------------------------------------------------------------------
def test_coco_names_equal_debian_list(debian_share):
    ours = read_names(CFG / "coco.names")
    assert len(ours) == 80
    assert ours == read_names(debian_share / "data" / "coco.names")


def test_coco_data_points_at_shipped_names():
    config = parse_data(CFG / "coco.data")
    assert config.classes == 80 and config.eval == "coco"
    assert config.names == "cfg/coco.names" and (ROOT / config.names).is_file()


def test_v3_and_v4_cfgs_use_80_classes():
    for name in V3 + ("yolov4", "yolov4-tiny"):
        heads = [spec.options for spec in parse_cfg(CFG / f"{name}.cfg").layers if spec.kind == "yolo"]
        assert len(heads) in (2, 3) and {h.classes for h in heads} == {80}, name


# -- the demo cfg ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flavor", ["ab", "pj"])
def test_shapes_tiny_builds_for_both_forks(flavor):
    network = build("shapes-tiny", flavor, device="cpu")
    assert (network.net_options.width, network.net_options.height) == (128, 128)
    names = read_names(ROOT / "data" / "shapes.names")
    assert {layer.options.classes for layer in network.detection_layers()} == {len(names)}
    assert yolo_heads(network) == [(16, 4, (3, 4, 5)), (23, 8, (0, 1, 2))]
    with torch.no_grad():
        out = network.eval()(torch.rand(2, 3, 128, 128))
    assert {i: tuple(t.shape) for i, t in out.items()} == {16: (2, 24, 4, 4), 23: (2, 24, 8, 8)}


def test_shapes_tiny_anchors_are_the_dataset_kmeans():
    make_shapes = _script("make_shapes")
    sizes = make_shapes.label_sizes(make_shapes.SEED, "train", make_shapes.SPLITS["train"], 128, 128)
    expected = [tuple(float(round(v)) for v in pair) for pair in make_shapes.kmeans_anchors(sizes, 6)]
    network = build("shapes-tiny", "ab")
    assert {layer.options.anchors for layer in network.detection_layers()} == {tuple(expected)}
