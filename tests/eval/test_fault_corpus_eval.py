"""Fault corpus (issue 23 item 6): `detector map`, `valid` and `recall` with a `results` folder that cannot be
made, duplicated list entries and images without label files (synth set, tiny3/trained.weights).

* `results` blocked (a file where the folder should be, or under a file): one error naming the `.data` line,
  before any work, nothing written (as root a read-only folder is still writable, so files are used).
* A duplicated entry: every command warns once naming the list, and does what Darknet does: the image is
  detected again and its boxes count again (`unique_truth_count` is the label lines of every entry).
* An image without a label file: AlexeyAB counts it with no objects, with a warning naming the label file;
  pjreddie refuses (its `read_boxes` exits): one error naming it; `valid` reads no labels."""
from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest

from helpers.cli import run_cli
from helpers.datasets import write_data_file, write_list
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = EVAL / "synth" / "cfg" / "tiny3.cfg"
WEIGHTS = EVAL / "tiny3" / "trained.weights"
IMAGES = [f"synth/JPEGImages/valid/{i:05d}.jpg" for i in range(5)]


@pytest.fixture
def synth(tmp_path, monkeypatch) -> Path:
    """A private copy of the synth set's valid images and labels in the working directory."""
    for sub in ("JPEGImages/valid", "labels/valid"):
        shutil.copytree(EVAL / "synth" / sub, tmp_path / "synth" / sub)
    shutil.copy(EVAL / "synth" / "obj.names", tmp_path / "synth" / "obj.names")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _data(root: Path, images, results: str = "results") -> Path:
    write_list(root / "valid.txt", images)
    return write_data_file(root / "obj.data", classes=3, valid="valid.txt", names="synth/obj.names", results=results)


def _run(command: str, data: Path, *flags: str):
    with warnings.catch_warnings():
        warnings.simplefilter("default")     # forget what earlier commands in this process warned, as a new process
        return run_cli("detector", command, data, CFG, WEIGHTS, "--device", "cpu", *flags)


def _label_lines(images) -> int:
    return sum(len(Path(image.replace("JPEGImages", "labels")).with_suffix(".txt").read_text().split("\n")) - 1
               for image in images)


def _truth_count(output: str) -> int:
    return int(re.search(r"unique_truth_count = (\d+)", output).group(1))


@pytest.mark.parametrize("results, problem", [
    ("results", "a file is in the way: detector valid writes its result files into this folder"),
    ("results/sub", "the folder cannot be made (Not a directory)"),
])
def test_valid_with_a_results_folder_that_cannot_be_made_is_one_error(synth, results, problem):
    (synth / "results").write_text("a file, not a folder\n")
    data = _data(synth, IMAGES, results)
    done = _run("valid", data)
    assert done.code == 1 and "Traceback" not in done.output
    assert done.err.strip() == f"darknet_py: error: {data}:4: results={results}: {problem}"
    assert (synth / "results").read_text() == "a file, not a folder\n"
    assert "Total Detection Time" not in done.out                    # refused before any work


def test_duplicated_entries_are_warned_about_and_counted_again_as_in_darknet(synth):
    listed = IMAGES + [IMAGES[1]]
    data = _data(synth, listed)
    warning = (f"warning: valid.txt: 1 image(s) listed more than once (first: {IMAGES[1]}): each entry is "
               "detected and its boxes counted again, as in Darknet")
    mapped = _run("map", data)
    assert mapped.code == 0 and warning in mapped.err
    assert _truth_count(mapped.out) == _label_lines(listed) > _label_lines(IMAGES)
    recall = _run("recall", data)
    assert recall.code == 0 and warning in recall.err
    assert len([line for line in recall.output.splitlines() if "Recall:" in line]) == len(listed)
    valid = _run("valid", data)
    assert valid.code == 0 and warning in valid.err
    twice = _comp4_rows(synth / "results")
    assert _run("valid", _data(synth, IMAGES, "once")).code == 0
    once = _comp4_rows(synth / "once")
    assert once.count("00001") > 0 and twice.count("00001") == 2 * once.count("00001")
    assert [r for r in twice if r != "00001"] == [r for r in once if r != "00001"]


def _comp4_rows(results: Path) -> list[str]:
    """The image id of every line of the comp4 files, class by class."""
    return [row.split()[0] for f in sorted(results.glob("comp4_det_test_*.txt")) for row in f.read_text().splitlines()]


def test_an_image_without_a_label_file_counts_with_no_objects_for_alexeyab(synth):
    missing = synth / "synth" / "labels" / "valid" / "00001.txt"
    missing.unlink()
    data = _data(synth, IMAGES)
    warning = ("warning: synth/labels/valid/00001.txt: label file not found; the image is used with no objects "
               "(as AlexeyAB's Darknet does)")
    mapped = _run("map", data)
    assert mapped.code == 0 and warning in mapped.err
    assert _truth_count(mapped.out) == _label_lines(IMAGES[:1] + IMAGES[2:])
    recall = _run("recall", data)
    assert recall.code == 0 and warning in recall.err
    valid = _run("valid", data)
    assert valid.code == 0 and "warning" not in valid.err                          # valid reads no labels


def test_an_image_without_a_label_file_is_one_error_for_pjreddie(synth):
    (synth / "synth" / "labels" / "valid" / "00001.txt").unlink()
    done = _run("map", _data(synth, IMAGES), "--flavor", "pj")
    assert done.code == 1 and "Traceback" not in done.output
    assert "darknet_py: error: synth/labels/valid/00001.txt: label file not found" in done.err
