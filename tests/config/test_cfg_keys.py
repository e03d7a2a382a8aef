"""No silent cfg keys: every key either Darknet parser reads (tests/fixtures/darknet_cfg_keys.txt, listed from
AlexeyAB's and pjreddie's src/parser.c) is implemented, inert (it changes nothing for a detector in Darknet
either), warned about with its file:line, or refused with an error — found by parsing a small cfg that sets it,
not by asking a table. docs/cfg-keys.md is this classification; regenerate it with
`PYTHONPATH=.:tests python3 tests/config/test_cfg_keys.py > docs/cfg-keys.md`."""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import pytest

from darknet_py.network import parse_cfg
from darknet_py.config.known_keys import (CONV_KEYS, DROPOUT_INERT, LAYER_INERT, LAYER_WARNED, NET_INERT,
                                         NET_WARNED, REGION_INERT, YOLO_INERT, YOLO_WARNED)
from darknet_py.errors import DarknetError
from darknet_py.layers import SECTION_KINDS, UNSUPPORTED_KINDS
from helpers.paths import FIXTURES, ROOT

KEYS_FILE = FIXTURES / "darknet_cfg_keys.txt"
DOC = ROOT / "docs" / "cfg-keys.md"

NET = {"batch": "2", "subdivisions": "1", "width": "32", "height": "32", "channels": "3", "max_batches": "10"}
# the smallest section of each kind that parses; the probed key is added (or replaces the template's value)
TEMPLATES = {
    "convolutional": {"filters": "6", "size": "1", "stride": "1", "pad": "1", "activation": "linear"},
    "maxpool": {"size": "2", "stride": "2"}, "avgpool": {}, "local_avgpool": {"size": "2", "stride": "2"},
    "route": {"layers": "-1"}, "shortcut": {"from": "-1", "activation": "linear"}, "upsample": {"stride": "2"},
    "yolo": {"mask": "0", "anchors": "10,14", "classes": "1", "num": "1"},
    "region": {"anchors": "1,1", "classes": "1", "num": "1", "coords": "4"},
    "reorg": {"stride": "2"}, "reorg3d": {"stride": "2"}, "dropout": {"probability": ".5"},
    "connected": {"output": "4", "activation": "linear"}, "softmax": {"groups": "1"}, "sam": {"from": "-1"},
    "scale_channels": {"from": "-1"}, "activation": {"activation": "linear"}, "batchnorm": {},
}
# a value that switches the key on and that its parser accepts (default: 1)
SAMPLES = {
    "activation": "leaky", "anchors": "10,14", "mask": "0", "layers": "-1", "from": "-1", "policy": "poly",
    "nms_kind": "greedynms", "iou_loss": "ciou", "iou_thresh_kind": "ciou", "steps": "5", "scales": ".1",
    "seq_scales": ".5", "weights_type": "per_channel", "weights_normalization": "relu", "lstm_activation": "tanh",
    "counters_per_class": "1", "map": "", "tree": "data/9k.tree", "type": "sse", "classes": "1", "num": "1",
    "output": "4", "filters": "6", "size": "1", "stride": "1", "groups": "1", "max_batches": "10", "batch": "2",
    "subdivisions": "1", "width": "32", "height": "32", "channels": "3", "probability": ".5", "coords": "4",
    "group_id": "0",
}
STATUS_TEXT = {
    "implemented": "implemented",
    "inert": "inert: changes nothing for a detector (not reported)",
    "warned": "warned: read, not implemented; a warning with file:line says what that changes",
    "refused": "refused: a clear error",
    "section refused": "the section kind is refused (a clear error)",
}


def darknet_keys() -> list[tuple[str, str, str]]:
    rows = []
    for line in KEYS_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            rows.append(tuple(line.split()))
    return rows


def probe(flavor: str, section: str, key: str) -> str:
    """What darknet_py does with ``key=<sample>`` in ``[section]`` of a small cfg read with ``flavor``."""
    if section != "net" and section != "*" and section not in SECTION_KINDS:
        assert section in UNSUPPORTED_KINDS, section
        return "section refused"
    net, layer_kind = dict(NET), "convolutional" if section in ("*", "net") else section
    layer = dict(TEMPLATES[layer_kind])
    target = net if section == "net" else layer
    target[key] = SAMPLES.get(key, "1")
    text = _section("net", net) + _section("convolutional", TEMPLATES["convolutional"]) + _section(layer_kind, layer)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.cfg"
        path.write_text(text)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                parse_cfg(path, flavor=flavor)
            except DarknetError:
                return "refused"
    messages = [str(w.message) for w in caught]
    if any("unused field" in m and f"'{key}=" in m for m in messages):
        return "unread"
    if any(f"'{key}=" in m and "is not implemented by darknet_py" in m for m in messages):
        return "warned"
    by_section = {"net": NET_INERT, "yolo": YOLO_INERT, "region": REGION_INERT, "dropout": DROPOUT_INERT,
                  "convolutional": CONV_KEYS[flavor][1]}
    inert = by_section["net"] if section == "net" else {**LAYER_INERT, **by_section.get(section, {})}
    return "inert" if key in inert else "implemented"


def _section(kind: str, options: dict) -> str:
    return f"[{kind}]\n" + "".join(f"{k}={v}\n" for k, v in options.items()) + "\n"


def classification() -> dict[tuple[str, str], dict[str, str]]:
    """(section, key) -> {fork: status} for every key either fork reads."""
    table: dict[tuple[str, str], dict[str, str]] = {}
    for fork, section, key in darknet_keys():
        table.setdefault((section, key), {})[fork] = probe(fork, section, key)
    return table


def markdown(table) -> str:
    lines = ["# Cfg keys: what darknet_py does with every key Darknet reads", "",
             "Generated by `tests/config/test_cfg_keys.py` (which fails when this file and the code disagree) from the",
             "`option_find*` calls in AlexeyAB's and pjreddie's `src/parser.c`. `*` is any layer section.",
             "Statuses:", ""]
    lines += [f"- **{name}**: {text}" for name, text in STATUS_TEXT.items()]
    lines += ["", "A key one fork does not read is shown as `-` for it (darknet_py then reports it as an unused",
              "field when the cfg is read with that `--flavor`, as Darknet does).", "",
              "| section | key | AlexeyAB (`--flavor ab`) | pjreddie (`--flavor pj`) | why |", "|---|---|---|---|---|"]
    order = {"net": 0, "*": 1}
    for (section, key), status in sorted(table.items(), key=lambda kv: (order.get(kv[0][0], 2), kv[0])):
        why = _why(section, key) if {"inert", "warned"} & set(status.values()) else ""
        lines.append(f"| {section} | {key} | {status.get('ab', '-')} | {status.get('pj', '-')} | {why} |")
    return "\n".join(lines) + "\n"


def _why(section: str, key: str) -> str:
    """The reason darknet_py's tables give for an inert or warned key."""
    tables = {"net": (NET_WARNED, NET_INERT), "*": (LAYER_WARNED, LAYER_INERT), "yolo": (YOLO_WARNED, YOLO_INERT),
              "region": (REGION_INERT,), "dropout": (DROPOUT_INERT,),
              "convolutional": CONV_KEYS["ab"] + CONV_KEYS["pj"]}
    for reasons in tables.get(section, ()) + (LAYER_WARNED, LAYER_INERT):
        if key in reasons:
            return reasons[key]
    return ""


@pytest.fixture(scope="module")
def table():
    return classification()


def test_no_key_darknet_reads_is_silently_unread(table):
    unread = sorted(f"{fork} [{section}] {key}" for (section, key), status in table.items()
                    for fork, s in status.items() if s == "unread")
    assert unread == []


def test_doc_matches_the_code(table):
    assert DOC.read_text() == markdown(table), \
        "docs/cfg-keys.md is stale: PYTHONPATH=.:tests python3 tests/config/test_cfg_keys.py > docs/cfg-keys.md"


def test_keys_that_change_training_are_warned_once_with_file_and_line(tmp_path):
    cfg = tmp_path / "w.cfg"
    cfg.write_text(_section("net", {**NET, "cutmix": "1", "blur": "0"})
                   + _section("convolutional", {**TEMPLATES["convolutional"], "train_only_bn": "1"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse_cfg(cfg)
    messages = [str(w.message) for w in caught]
    assert messages == [
        f"{cfg}:8: 'cutmix=1' is not implemented by darknet_py: no CutMix augmentation: training images are not "
        "cut and mixed",
        f"{cfg}:17: 'train_only_bn=1' is not implemented by darknet_py: all layers up to this one still learn "
        "(Darknet trains only their batch-norm)"]


if __name__ == "__main__":
    sys.stdout.write(markdown(classification()))


def test_detector_check_lists_unimplemented_keys(tmp_path):
    from darknet_py.check import check_dataset
    from helpers.datasets import make_dataset, tiny_cfg
    data = make_dataset(tmp_path / "set", count=2, valid=1)
    cfg = tmp_path / "c.cfg"
    cfg.write_text(tiny_cfg().replace("[net]\n", "[net]\ngaussian_noise=1\n"))
    report = check_dataset(data, cfg, fast=True)
    found = [str(f) for f in report.by_code("cfg-keys")]
    assert found == [f"{cfg}:2: 'gaussian_noise=1' is not implemented by darknet_py: no Gaussian-noise "
                     "augmentation of training images"]
    assert report.ok                                  # a warning, not an error
