"""`cfg custom`: AlexeyAB's README rules applied by editing lines. Golden values come from Darknet's own
shipped cfgs (Debian's yolov3-voc.cfg is yolov3.cfg made for the 20 VOC classes by Darknet's authors;
yolov2-voc.cfg likewise for yolov2.cfg's [region]) and from the README's formulas, never from the code
under test. Untouched lines stay byte for byte."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from darknet_py.config.reader import read_sections
from helpers.cli import run_cli
from helpers.datasets import make_dataset
from helpers.paths import ROOT

SHAPES = ROOT / "cfg" / "shapes-tiny.cfg"


def values(path: Path, kinds: tuple[str, ...], key: str) -> list[str]:
    """``key``'s value in each section of ``kinds`` (and, for filters, the conv before each head)."""
    sections = read_sections(path)
    found = []
    for k, section in enumerate(sections):
        if section.kind in kinds:
            target = sections[k - 1] if key == "filters" else section
            found.append(target.get_str(key, ""))
    return found


@pytest.mark.parametrize("base, voc, kind", [("yolov3.cfg", "yolov3-voc.cfg", "yolo"),
                                             ("yolov2.cfg", "yolov2-voc.cfg", "region")])
def test_classes_and_filters_equal_darknets_own_voc_cfgs(debian_share, tmp_path, base, voc, kind):
    out = tmp_path / "custom.cfg"
    result = run_cli("cfg", "custom", debian_share / "cfg" / base, out, "--classes", 20)
    assert result.code == 0, result.output
    golden = debian_share / "cfg" / voc
    for key in ("classes", "filters"):
        assert values(out, (kind,), key) == values(golden, (kind,), key), key


def test_untouched_lines_stay_byte_for_byte_and_changes_are_printed(tmp_path):
    base = tmp_path / "base.cfg"
    base.write_bytes(SHAPES.read_bytes().replace(b"\n", b"\r\n"))       # CRLF: kept too
    out = tmp_path / "out.cfg"
    result = run_cli("cfg", "custom", base, out, "--classes", 7, "--width", 96, "--height", 96)
    assert result.code == 0, result.output
    old, new = base.read_bytes().split(b"\r\n"), out.read_bytes().split(b"\r\n")
    assert len(old) == len(new)
    changed = {k + 1: (a.decode(), b.decode()) for k, (a, b) in enumerate(zip(old, new)) if a != b}
    want = {11: ("width=128", "width=96"), 12: ("height=128", "height=96"),
            22: ("max_batches=1000", "max_batches=14000"), 24: ("steps=800,900", "steps=11200,12600"),
            138: ("filters=24", "filters=36"), 145: ("classes=3", "classes=7"),
            182: ("filters=24", "filters=36"), 189: ("classes=3", "classes=7")}
    assert changed == want                          # (7 + 5) * 3 = 36; 2000 * 7 = 14000 > 6000
    printed = [line for line in result.out.splitlines() if " -> " in line]
    assert printed == [f"{out}:{line} {a} -> {b}" for line, (a, b) in want.items()]
    assert "max_batches=max(2000*classes=14000, 6000)=14000" in result.out


def test_max_batches_counts_the_training_images_and_missing_keys_are_added(tmp_path):
    data = make_dataset(tmp_path / "set", count=12)
    base = tmp_path / "base.cfg"
    base.write_text(re.sub(r"max_batches=\d+\n", "", SHAPES.read_text()))
    out = tmp_path / "out.cfg"
    result = run_cli("cfg", "custom", base, out, "--classes", 2, "--data", data)
    assert result.code == 0, result.output
    assert "max_batches=max(2000*classes=4000, training images=12, 6000)=6000" in result.out
    net = read_sections(out)[0]
    assert net.get_int("max_batches", 0) == 6000 and net.get_str("steps", "") == "4800,5400"
    assert re.search(rf"{re.escape(str(out))}:\d+ \(added\) -> max_batches=6000", result.out)


def test_anchors_from_data_run_calc_anchors_per_layer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)             # calc_anchors writes anchors.txt and counters_per_class.txt here
    data = make_dataset(tmp_path / "set", count=12)
    out = tmp_path / "out.cfg"
    result = run_cli("cfg", "custom", SHAPES, out, "--classes", 2, "--anchors-from", data, "--width", 64,
                     "--height", 64)
    assert result.code == 0, result.output
    expected = run_cli("detector", "calc_anchors", data, "-num_of_clusters", 6, "-width", 64, "-height", 64,
                       "-seed", 1)
    assert expected.code == 0
    anchors = re.search(r"anchors = (.*)", expected.out).group(1).strip()
    assert values(out, ("yolo",), "anchors") == [anchors.replace(" ", "")] * 2


def test_result_passes_detector_checks_cfg_rules(tmp_path):
    data = make_dataset(tmp_path / "set", count=4, valid=2)
    out = tmp_path / "out.cfg"
    assert run_cli("cfg", "custom", SHAPES, out, "--classes", 2, "--width", 64, "--height", 64).code == 0
    check = run_cli("detector", "check", data, out, "--fast")
    assert check.code == 0, check.output
    assert re.search(r"\[yolo\] classes == \.data classes\s+ok", check.out)
    assert re.search(r"filters = \(classes\+5\)\*len\(mask\)\s+ok", check.out)


def test_output_must_not_be_the_base(tmp_path):
    base = tmp_path / "base.cfg"
    base.write_bytes(SHAPES.read_bytes())
    result = run_cli("cfg", "custom", base, base, "--classes", 2)
    assert result.code == 1 and "is the input base cfg" in result.err
    assert base.read_bytes() == SHAPES.read_bytes()


def test_a_cfg_without_detection_layer_is_refused(tmp_path):
    base = tmp_path / "base.cfg"
    base.write_text("[net]\nwidth=64\nheight=64\n[convolutional]\nfilters=4\nsize=1\n")
    result = run_cli("cfg", "custom", base, tmp_path / "out.cfg", "--classes", 2)
    assert result.code == 1 and "not a detection cfg" in result.err and not (tmp_path / "out.cfg").exists()


@pytest.mark.parametrize("name", ["yolov3-tiny.cfg", "yolov3.cfg", "yolov3-spp.cfg", "yolov4-tiny.cfg",
                                  "yolov4.cfg", "shapes-tiny.cfg"])
def test_repository_cfgs_build_for_new_classes(tmp_path, name):
    """Every [yolo] gets classes=5 and the conv before it (5 + 5) * len(mask) filters, len(mask) read from the
    base's text; the result builds as a network with 10 * 3 outputs per cell per head."""
    import torch

    from darknet_py.network import Network, parse_cfg

    base = ROOT / "cfg" / name
    out = tmp_path / name
    assert run_cli("cfg", "custom", base, out, "--classes", 5).code == 0
    masks = [len(m.split(",")) for m in values(base, ("yolo",), "mask")]
    assert values(out, ("yolo",), "classes") == ["5"] * len(masks)
    assert values(out, ("yolo",), "filters") == [str(10 * m) for m in masks]
    with torch.device("meta"):
        Network(parse_cfg(out))
