"""Every official cfg shipped with Debian's darknet: darknet_py (flavor pj) builds it with the layer shapes the
real binary prints, or refuses it with a CfgError naming the unsupported section.

The golden table is printed live by `darknet ops CFG` (pjreddie), one row per layer:
`conv/max/res/upsample/reorg ... W x H x C -> W x H x C`, `avg W x H x C -> C`, `connected N -> M`,
`dropout p = P N -> N`, `softmax N`, `route I J ...`, and a bare `yolo`/`detection` (region). For `res`
(shortcut) the left shape is the `from` layer's, not the previous layer's.
"""
from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from darknet_py.network import parse_cfg
from darknet_py.errors import CfgError
from darknet_py.network import Network

CFG_DIR = Path("/usr/share/darknet/cfg")
CFGS = sorted(p.name for p in CFG_DIR.glob("*.cfg")) if CFG_DIR.is_dir() else []

# What darknet_py implements (issue #2), and the Darknet features it knowingly refuses.
SUPPORTED_SECTIONS = {"net", "network", "convolutional", "conv", "maxpool", "max", "avgpool", "avg", "route",
                      "shortcut", "upsample", "yolo", "region", "reorg", "dropout", "connected", "conn",
                      "softmax", "soft"}
UNSUPPORTED_OPTIONS = {"softmax": "tree", "region": "tree", "reorg": "extra"}

DARKNET_KIND = {"conv": "convolutional", "max": "maxpool", "avg": "avgpool", "res": "shortcut", "route": "route",
                "upsample": "upsample", "reorg": "reorg", "yolo": "yolo", "detection": "region",
                "connected": "connected", "dropout": "dropout", "softmax": "softmax"}

ROW = re.compile(r"^\s*(\d+)\s+(\w+)(.*)$")
IMAGE_TO_IMAGE = re.compile(r"(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*->\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)")
IMAGE_TO_FLAT = re.compile(r"(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*->\s*(\d+)\s*$")
FLAT_TO_FLAT = re.compile(r"(\d+)\s*->\s*(\d+)\s*$")
FLAT = re.compile(r"(\d+)\s*$")


def unsupported_features(cfg: Path) -> set[str]:
    """Section kinds and options in ``cfg`` outside darknet_py's scope (read independently of the parser
    under test: section headers and `key=` lines only)."""
    found, section = set(), None
    for line in cfg.read_text().splitlines():
        line = "".join(line.split())
        if line.startswith("["):
            section = line.strip("[]")
            if section not in SUPPORTED_SECTIONS:
                found.add(section)
        elif UNSUPPORTED_OPTIONS.get(section) and line.startswith(UNSUPPORTED_OPTIONS[section] + "="):
            found.add(UNSUPPORTED_OPTIONS[section])
    return found


def is_supported(name: str) -> bool:
    return not unsupported_features(CFG_DIR / name)


def parse_darknet_table(text: str) -> dict[int, tuple[str, str]]:
    """``{layer index: (kind, rest of the row)}`` from `darknet ops` output."""
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match and match.group(2) in DARKNET_KIND:
            rows[int(match.group(1))] = (DARKNET_KIND[match.group(2)], match.group(3))
    return rows


@pytest.fixture(scope="module")
def darknet_tables(darknet_binary, request):
    """`darknet ops` of every supported cfg this session runs, started at once (each run spends seconds
    initialising random weights, so they overlap)."""
    selected = {item.callspec.params["name"] for item in request.session.items
                if getattr(item, "function", None) is test_debian_cfg and is_supported(item.callspec.params["name"])}
    pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
    run = lambda name: subprocess.run([darknet_binary, "ops", str(CFG_DIR / name)], capture_output=True,  # noqa
                                      text=True, timeout=300)
    futures = {name: pool.submit(run, name) for name in sorted(selected)}
    yield futures
    pool.shutdown(wait=True)


def chw(w, h, c) -> tuple[int, int, int]:
    return int(c), int(h), int(w)


def check_row(network: Network, index: int, kind: str, rest: str) -> None:
    layer = network.layers[index]
    assert layer.kind == kind, (index, layer.kind, kind)
    ins, out = layer.in_shape, layer.out_shape
    ours_in, ours_out = (ins.c, ins.h, ins.w), (out.c, out.h, out.w)
    if kind == "route":
        assert list(layer.sources) == [int(v) for v in rest.split()]
    elif kind == "shortcut":
        source, *_ = rest.split()
        assert list(layer.sources) == [int(source)]
        numbers = IMAGE_TO_IMAGE.search(rest).groups()
        src = network.layers[int(source)].out_shape
        assert ((src.c, src.h, src.w), ours_out) == (chw(*numbers[:3]), chw(*numbers[3:]))
    elif kind in ("yolo", "region"):
        assert ours_out == ours_in
    elif IMAGE_TO_IMAGE.search(rest):
        numbers = IMAGE_TO_IMAGE.search(rest).groups()
        assert (ours_in, ours_out) == (chw(*numbers[:3]), chw(*numbers[3:]))
    elif IMAGE_TO_FLAT.search(rest):
        w, h, c, outputs = map(int, IMAGE_TO_FLAT.search(rest).groups())
        assert (ours_in, out.size) == ((c, h, w), outputs)
    elif FLAT_TO_FLAT.search(rest):
        inputs, outputs = map(int, FLAT_TO_FLAT.search(rest).groups())
        assert (ins.size, out.size) == (inputs, outputs)
    else:
        assert out.size == int(FLAT.search(rest).group(1))


# `darknet ops` takes under ~1 s on these; together they cover every supported kind except [reorg] and
# SPP-style maxpools (yolov2.cfg, yolov3-spp.cfg), which the slow part of the sweep covers.
QUICK = {"cifar.cfg", "darknet.cfg", "darknet19_448.cfg", "jnet-conv.cfg", "resnet18.cfg", "tiny.cfg",
         "vgg-conv.cfg", "yolov2-tiny.cfg", "yolov3-tiny.cfg"}


@pytest.mark.oracle
@pytest.mark.parametrize("name", [n if n in QUICK or not is_supported(n) else pytest.param(n, marks=pytest.mark.slow)
                                  for n in CFGS])
def test_debian_cfg(name, darknet_tables):
    cfg = CFG_DIR / name
    features = unsupported_features(cfg)
    if features:
        with pytest.raises(CfgError) as error:
            parse_cfg(cfg, flavor="pj")
        assert error.value.file == str(cfg) and error.value.line is not None
        assert "not supported" in str(error.value)
        assert any(feature in str(error.value) for feature in features)
        return
    result = darknet_tables[name].result()
    assert result.returncode == 0, result.stderr[-2000:]
    table = parse_darknet_table(result.stderr)
    network = Network(parse_cfg(cfg, flavor="pj"))
    assert sorted(table) == list(range(len(network.layers)))
    for index, (kind, rest) in sorted(table.items()):
        check_row(network, index, kind, rest)


def test_the_sweep_covers_the_interesting_cfgs(darknet_binary):
    """Guards against a silently empty parametrisation (e.g. the package layout changed)."""
    supported = {name for name in CFGS if is_supported(name)}
    assert {"yolov3.cfg", "yolov3-tiny.cfg", "yolov3-spp.cfg", "yolov2.cfg", "resnet50.cfg",
            "densenet201.cfg", "alexnet.cfg"} <= supported
    assert {"yolov1.cfg", "rnn.cfg", "vgg-16.cfg", "yolo9000.cfg", "go.cfg"}.isdisjoint(supported)
