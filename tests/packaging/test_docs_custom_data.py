"""docs/custom-data.md's commands run as written: every line of its ```bash blocks, in order, once for each
of the three `dataset import` lines (COCO, VOC, YOLO sources generated from the same pictures in the guide's
folders). For speed only, the test appends size and length flags the guide leaves to the reader: `cfg custom`
gets 64x64, batch 4, 2 iterations; `detector train`/`map` run on the CPU without loader processes."""
from __future__ import annotations

import os
import re
import shlex

import pytest

from helpers.annotation_sets import make_pictures, write_coco, write_voc, write_yolo
from helpers.cli import run_cli
from helpers.paths import ROOT

DOC = ROOT / "docs" / "custom-data.md"
FAST = {("cfg", "custom"): ["--width", "64", "--height", "64", "--batch", "4", "--subdivisions", "1",
                            "--max-batches", "2"],
        ("detector", "train"): ["--device", "cpu", "--workers", "0", "--no-progress"],
        ("detector", "map"): ["--device", "cpu", "--workers", "0"]}


def guide_commands() -> list[list[str]]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S):
        lines += [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert all(words[0] == "darknet_py" for words in lines)
    return [words[1:] for words in lines]


def test_guide_has_the_whole_path():
    commands = [tuple(words[:2]) for words in guide_commands()]
    assert [c for c in commands if c == ("dataset", "import")] == [("dataset", "import")] * 3
    for step in (("detector", "check"), ("cfg", "custom"), ("detector", "train"), ("detector", "map"),
                 ("dataset", "export")):
        assert step in commands, step


@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo"])
def test_guide_commands_run(fmt, tmp_path, monkeypatch):
    pictures = make_pictures(count=8, valid=3)
    write_coco(tmp_path / "coco", pictures)
    write_voc(tmp_path / "voc", pictures)
    write_yolo(tmp_path / "yolo", pictures)
    os.symlink(ROOT / "cfg", tmp_path / "cfg")
    monkeypatch.chdir(tmp_path)
    commands = guide_commands()
    imports = [c for c in commands if c[:2] == ["dataset", "import"]]
    chosen = next(c for c in imports if c[2] == fmt)
    for words in [chosen] + [c for c in commands if c[:2] != ["dataset", "import"]]:
        result = run_cli(*words, *FAST.get(tuple(words[:2]), []))
        assert result.code == 0, f"darknet_py {' '.join(words)}\n{result.output}"
    assert (tmp_path / "mydata" / "backup" / "yolov4-tiny-custom_final.weights").is_file()
    assert (tmp_path / "mydata-coco.json").is_file()
