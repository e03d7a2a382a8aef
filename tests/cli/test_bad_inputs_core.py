"""Malformed cfg / weights / .pt / .data / .names files through the command line: each must end with a non-zero
exit and ONE clear error message naming the file (and the line, for text files) — never a traceback.

Expected numbers (lines, float counts) are derived here from the files the cases write, not from darknet_py.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest
import torch

from darknet_py import Network, save_pt
from darknet_py.network import parse_cfg
from helpers.cli import run_cli
from helpers.paths import FIXTURES

TINY3 = FIXTURES / "tiny3"

# A small valid detector: 0 conv, 1 maxpool, 2 conv, 3 conv (filters = (classes + 5) * len(mask) = 21),
# 4 yolo, 5 route, 6 upsample, 7 route, 8 conv, 9 yolo.
GOOD_CFG = """[net]
batch=1
width=64
height=64
channels=3
policy=steps
steps=100,200
scales=.1,.1

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=16
size=3
pad=1
activation=leaky

[convolutional]
filters=21
size=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3

[route]
layers=-3

[upsample]
stride=2

[route]
layers=-1,0

[convolutional]
filters=21
size=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3
"""


class Case(NamedTuple):
    args: list                  # command line after `darknet_py`
    file: Path                  # the file the message must name
    expect: tuple = ()          # further substrings of the message (line numbers as ":N:")


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the ``occurrence``-th line equal to ``needle``."""
    hits = [n for n, line in enumerate(text.split("\n"), start=1) if line == needle]
    return hits[occurrence - 1]


def good_weights(tmp_path: Path) -> Path:
    """Weights for GOOD_CFG (never read when the cfg fails first, but must exist)."""
    path = tmp_path / "good.weights"
    path.write_bytes(struct.pack("<3iQ", 0, 2, 5, 0))
    return path


def cfg_case(tmp_path: Path, text: str, needle: str = None, *expect: str, occurrence: int = 1) -> Case:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(text)
    line = (f":{line_of(text, needle, occurrence)}:",) if needle is not None else ()
    return Case(["convert", cfg, good_weights(tmp_path), tmp_path / "out.pt"], cfg, line + expect)


def edit(old: str, new: str, count: int = 1) -> str:
    assert old in GOOD_CFG
    return GOOD_CFG.replace(old, new, count)


# -- cfg cases -------------------------------------------------------------------------------------------

def garbage_cfg(tmp_path: Path) -> Case:
    cfg = tmp_path / "garbage.cfg"
    cfg.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return Case(["convert", cfg, good_weights(tmp_path), tmp_path / "out.pt"], cfg, ("binary",))


def ab_only_section_in_pj(tmp_path: Path) -> Case:
    case = cfg_case(tmp_path, edit("[upsample]", "[sam]\nfrom=-1\n[upsample]"), "[sam]", "AlexeyAB")
    return case._replace(args=case.args[:1] + ["--flavor", "pj"] + case.args[1:])


CFG_CASES: dict[str, Callable[[Path], Case]] = {
    "unknown section": lambda t: cfg_case(t, edit("[maxpool]", "[maxpooling]"), "[maxpooling]", "unknown section"),
    "unsupported section": lambda t: cfg_case(t, edit("[maxpool]", "[local]"), "[local]", "not supported"),
    "ab-only section in pj": ab_only_section_in_pj,
    "section names are case-sensitive": lambda t: cfg_case(t, edit("[maxpool]", "[Maxpool]"), "[Maxpool]",
                                                           "case-sensitive"),
    "unterminated section header": lambda t: cfg_case(t, edit("[maxpool]", "[maxpool"), "[maxpool", "']'"),
    "bad integer": lambda t: cfg_case(t, edit("filters=16", "filters=sixteen"), "filters=sixteen", "sixteen"),
    "bad float": lambda t: cfg_case(t, edit("batch=1", "batch=1\nmomentum=0,9.x"), "momentum=0,9.x", "0,9.x"),
    "negative filters": lambda t: cfg_case(t, edit("filters=16", "filters=-16"), "filters=-16", "'filters'"),
    "bad activation": lambda t: cfg_case(t, edit("activation=leaky", "activation=leakyrelu"),
                                         "activation=leakyrelu", "leakyrelu"),
    "filters do not fit the yolo layer": lambda t: cfg_case(t, edit("filters=21", "filters=255"), "[yolo]",
                                                           "(2 + 5) * 3 = 21", "filters=21"),
    "yolo mask outside the anchors": lambda t: cfg_case(t, edit("mask=0,1,2", "mask=0,1,7"), "mask=0,1,7",
                                                       "mask"),
    "yolo classes=0": lambda t: cfg_case(t, edit("classes=2", "classes=0"), "classes=0", "'classes'"),
    "route to a future layer": lambda t: cfg_case(t, edit("layers=-3", "layers=7"), "[route]", "layer 7",
                                                  "earlier"),
    "route to a layer before 0": lambda t: cfg_case(t, edit("layers=-3", "layers=-9"), "[route]", "layer -4"),
    "route without layers": lambda t: cfg_case(t, edit("layers=-3\n", ""), "[route]", "'layers'"),
    "route of different sizes": lambda t: cfg_case(t, edit("layers=-1,0", "layers=-1,2"), "[route]",
                                                   "width/height", occurrence=2),
    "no [net]": lambda t: cfg_case(t, GOOD_CFG.replace("[net]", "[convolutional]", 1), "[convolutional]",
                                   "[net]"),
    "option before any section": lambda t: cfg_case(t, "width=64\n" + GOOD_CFG, "width=64", "before the first"),
    "[net] twice": lambda t: cfg_case(t, edit("[upsample]", "[net]"), "[net]", "first section", occurrence=2),
    "[net] width=0": lambda t: cfg_case(t, edit("width=64", "width=0"), "width=0", "'width'"),
    "[net] without channels": lambda t: cfg_case(t, edit("channels=3\n", ""), "[net]", "'channels'"),
    "[net] negative height": lambda t: cfg_case(t, edit("height=64", "height=-64"), "height=-64", "'height'"),
    "steps and scales differ in length": lambda t: cfg_case(t, edit("scales=.1,.1", "scales=.1"), "scales=.1",
                                                            "'scales' has 1 values but 'steps' has 2"),
    "unknown lr policy": lambda t: cfg_case(t, edit("policy=steps", "policy=cosine"), "policy=cosine", "policy"),
    "kernel larger than the input": lambda t: cfg_case(t, edit("size=3\npad=1\nactivation=leaky\n\n[maxpool]",
                                                               "size=99\nactivation=leaky\n\n[maxpool]"),
                                                       "[convolutional]", "does not fit"),
    "groups do not divide channels": lambda t: cfg_case(t, edit("filters=16", "filters=16\ngroups=3"),
                                                        "[convolutional]", "groups=3", occurrence=2),
    "maxpool stride 0": lambda t: cfg_case(t, edit("stride=2\n\n[convolutional]", "stride=0\n\n[convolutional]"),
                                           "stride=0", "'stride'"),
    "upsample stride 0": lambda t: cfg_case(t, edit("stride=2\n\n[route]", "stride=0\n\n[route]"), "stride=0",
                                            "'stride'"),
    "only [net]": lambda t: cfg_case(t, GOOD_CFG[:GOOD_CFG.index("[convolutional]")], None, "no layers"),
    "empty cfg": lambda t: cfg_case(t, "", None, "empty"),
    "comments only": lambda t: cfg_case(t, "# nothing here\n;\n", None, "no sections"),
    "binary garbage as cfg": garbage_cfg,
    "cfg not found": lambda t: Case(["convert", t / "missing.cfg", good_weights(t), t / "o.pt"], t / "missing.cfg",
                                    ("not found",)),
    "cfg is a directory": lambda t: Case(["convert", t, good_weights(t), t / "o.pt"], t, ("directory",)),
}


# -- weights cases (tiny3.cfg with its real trained.weights) ------------------------------------------------

TINY3_LAYER0 = 8 + 3 * 8 + 8 * 3 * 3 * 3          # biases, BN scales/mean/var, 8 filters of 3x3x3


def tiny3_payload() -> np.ndarray:
    return np.fromfile(TINY3 / "trained.weights", dtype="<f4", offset=20)


def weights_case(tmp_path: Path, data: bytes, *expect: str, name: str = "bad.weights") -> Case:
    path = tmp_path / name
    path.write_bytes(data)
    return Case(["convert", TINY3 / "tiny3.cfg", path, tmp_path / "out.pt"], path, expect)


HEADER = struct.pack("<3iQ", 0, 2, 5, 0)


def truncated(t: Path) -> Case:
    payload = tiny3_payload()
    kept = TINY3_LAYER0 + 100          # ends 100 floats into layer 2
    return weights_case(t, HEADER + payload[:kept].tobytes(),
                        f"cfg needs {payload.size - TINY3_LAYER0} floats from layer 2 on, file has 100")


def oversized(t: Path) -> Case:
    payload = tiny3_payload()
    return weights_case(t, HEADER + payload.tobytes() + np.zeros(7, "<f4").tobytes(), "7 floats left over",
                        f"cfg needs {payload.size} floats")


def pt_case(tmp_path: Path, payload, *expect: str) -> Case:
    path = tmp_path / "bad.pt"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    return Case(["convert", TINY3 / "tiny3.cfg", path, tmp_path / "out.weights"], path, expect)


def pt_for_another_cfg(t: Path) -> Case:
    cfg = t / "other.cfg"
    cfg.write_text(GOOD_CFG)
    save_pt(Network(parse_cfg(cfg)), t / "other.pt")
    return Case(["convert", TINY3 / "tiny3.cfg", t / "other.pt", t / "out.weights"], t / "other.pt",
                ("does not fit this cfg",))


def another_cfg_weights(t: Path) -> Case:
    """tiny3's real weights (111464 floats) against GOOD_CFG, which needs far fewer."""
    cfg = t / "g.cfg"
    cfg.write_text(GOOD_CFG)
    return Case(["convert", cfg, TINY3 / "trained.weights", t / "o.pt"], TINY3 / "trained.weights",
                ("floats left over",))


WEIGHTS_CASES: dict[str, Callable[[Path], Case]] = {
    "truncated inside a layer": truncated,
    "oversized": oversized,
    "weights of another cfg": another_cfg_weights,
    "empty weights": lambda t: weights_case(t, b"", "empty"),
    "shorter than a header": lambda t: weights_case(t, b"\x00" * 10, "10 bytes"),
    "ends inside the 20-byte header": lambda t: weights_case(t, struct.pack("<3i", 0, 2, 5) + b"\0\0", "header"),
    "implausible header (a JPEG)": lambda t: weights_case(t, b"\xff\xd8\xff\xe0" + bytes(200), "header version"),
    "implausible header (text)": lambda t: weights_case(t, b"[net]\nwidth=416\nheight=416\n", "header version"),
    "payload not whole floats": lambda t: weights_case(t, HEADER + b"\0" * 6, "whole number of float32"),
    "weights not found": lambda t: Case(["convert", TINY3 / "tiny3.cfg", t / "nope.weights", t / "o.pt"],
                                        t / "nope.weights", ("not found",)),
    ".pt that is not a checkpoint": lambda t: pt_case(t, b"this is not a zip file", "not a darknet_py .pt"),
    ".weights renamed .pt": lambda t: pt_case(t, (TINY3 / "trained.weights").read_bytes(), "not a darknet_py .pt"),
    ".pt of another program": lambda t: pt_case(t, {"model": torch.zeros(3)}, "format"),
    ".pt with a damaged entry": lambda t: pt_case(t, {"format": "darknet_py/1", "state_dict": {}, "seen": "many",
                                                      "header": [0, 2, 5]}, "damaged"),
    ".pt for another cfg": pt_for_another_cfg,
    "partial with a negative count": lambda t: Case(["partial", TINY3 / "tiny3.cfg", TINY3 / "trained.weights",
                                                     t / "p.weights", "--", "-1"], None, ("negative",)),
    "convert to the same format": lambda t: Case(["convert", TINY3 / "tiny3.cfg", TINY3 / "trained.weights",
                                                  t / "x.weights"], t / "x.weights", ("nothing to convert",)),
    "convert to an unknown format": lambda t: Case(["convert", TINY3 / "tiny3.cfg", TINY3 / "trained.weights",
                                                    t / "x.onnx"], t / "x.onnx", ("extension",)),
}


# -- .data / .names (through `detector test`) ----------------------------------------------------------------

def data_case(tmp_path: Path, data_text: str, names_text: str, needle: str = None, *expect: str) -> Case:
    (tmp_path / "obj.names").write_text(names_text)
    data = tmp_path / "obj.data"
    data.write_text(data_text.replace("NAMES", str(tmp_path / "obj.names")))
    image = tmp_path / "img.png"
    image.write_bytes(b"")
    line = (f":{line_of(data.read_text(), needle)}:",) if needle else ()
    args = ["detector", "test", data, TINY3 / "tiny3.cfg", TINY3 / "trained.weights", image, "-dont_show"]
    return Case(args, tmp_path / "obj.names" if not needle else data, line + expect)


DATA_CASES: dict[str, Callable[[Path], Case]] = {
    ".data with a [section]": lambda t: data_case(t, "classes=3\n[net]\nnames=NAMES\n", "a\nb\nc\n", "[net]",
                                                  "no [sections]"),
    ".data with a bad classes value": lambda t: data_case(t, "classes=three\nnames=NAMES\n", "a\nb\nc\n",
                                                          "classes=three", "three"),
    ".names empty": lambda t: data_case(t, "classes=3\nnames=NAMES\n", "", None, "empty"),
    ".names shorter than classes": lambda t: data_case(t, "classes=3\nnames=NAMES\n", "a\nb\n", None, "2 names"),
}

ALL_CASES = {**CFG_CASES, **WEIGHTS_CASES, **DATA_CASES}


def test_there_are_at_least_30_cases():
    assert len(ALL_CASES) >= 30


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_bad_input_gives_one_clear_error(name, tmp_path):
    case = ALL_CASES[name](tmp_path)
    result = run_cli(*case.args)
    assert result.code != 0, result
    assert "Traceback" not in result.err and "Traceback" not in result.out
    messages = [line for line in result.err.splitlines() if "error" in line.lower()]
    assert len(messages) == 1, result.err
    message = messages[0]
    if case.file is not None:
        assert str(case.file) in message, (str(case.file), message)
    for part in case.expect:
        assert part in result.err, (part, result.err)
