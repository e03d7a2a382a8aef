"""A corpus of malformed inputs — .data, .names, list files, label files, images, weights/cfg on the detector
commands, and command-line flags — each run through the real command line in-process.

Every case must exit non-zero with one message that names the file (and line where there is one), and no
traceback. The error type is checked too: ``--debug`` re-raises the DarknetError, so the test catches its
class; for `detector check` the finding in the report carries it. (cfg/weights files through `convert` are
tests/cli/test_bad_inputs_core.py's; the fuzzed cfgs are tests/config/test_fuzz_cfg.py's.)"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import cv2
import numpy as np
import pytest
import torch

from darknet_py.check import ERROR, check_dataset
from darknet_py.network import parse_cfg
from darknet_py.errors import CfgError, DataFileError, ImageError, LabelError, TrainingError, UsageError, WeightsError
from darknet_py.network import Network
from darknet_py.weights import save_weights
from helpers.cli import run_cli
from helpers.datasets import add_picture, write_data_file, write_list, write_names
from helpers.paths import FIXTURES

BAD_INPUTS = FIXTURES / "bad_inputs"
RAISE, FINDING, USAGE = "raise", "finding", "usage"
LABELS = "0 0.4 0.4 0.3 0.3\n1 0.7 0.6 0.2 0.3\n"
DATA_LINES = {"classes": 1, "train": 2, "valid": 3, "names": 4, "backup": 5}


class Expect(NamedTuple):
    argv: list
    where: str                 # the file (":line" appended where there is one) the message must name
    line: Optional[int] = None


class Case(NamedTuple):
    build: Callable[[Path], Expect]
    kind: str
    error: Optional[type] = None
    code: Optional[str] = None     # the `detector check` finding for FINDING cases


CASES: dict[str, Case] = {}


def case(name: str, kind: str, error: Optional[type] = None, code: Optional[str] = None):
    def register(build):
        assert name not in CASES, name
        CASES[name] = Case(build, kind, error, code)
        return build
    return register


# -- a small valid data set every case breaks one thing of -------------------------------------------------

@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.weights"
    torch.manual_seed(0)
    save_weights(Network(parse_cfg(BAD_INPUTS / "tiny3c.cfg")), path)
    return path


def make_base(root: Path, weights: Path) -> None:
    rng = np.random.default_rng(0)
    pictures = [add_picture(root, f"{name}.jpg", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), LABELS)
                for name in ("a", "b")]
    write_list(root / "train.txt", pictures)
    write_list(root / "valid.txt", pictures)
    write_names(root / "obj.names", ["rect", "ellipse", "triangle"])
    write_data(root)
    shutil.copy(BAD_INPUTS / "tiny3c.cfg", root / "tiny.cfg")
    shutil.copy(weights, root / "tiny.weights")


def write_data(root: Path, **changes: str) -> Path:
    """obj.data with the keys in DATA_LINES order (so their lines are known), changed or extra ones after."""
    keys = {"classes": "3", "train": str(root / "train.txt"), "valid": str(root / "valid.txt"),
            "names": str(root / "obj.names"), "backup": str(root / "backup")}
    keys.update(changes)
    return write_data_file(root / "obj.data", **keys)


def image(root: Path, name: str = "a") -> Path:
    return root / "JPEGImages" / f"{name}.jpg"


def label(root: Path, name: str = "a") -> Path:
    return root / "labels" / f"{name}.txt"


def detect_args(root, data=None, cfg=None, weights=None, picture=None) -> list:
    return ["detector", "test", data or root / "obj.data", cfg or root / "tiny.cfg", weights or root / "tiny.weights",
            picture or image(root), "-dont_show", "-out", root / "out.json"]


def check_args(root, data=None, cfg=None, *flags) -> list:
    return ["detector", "check", data or root / "obj.data", *([cfg] if cfg else []), *flags]


def eval_args(command, root, data=None, weights=None) -> list:
    return ["detector", command, data or root / "obj.data", root / "tiny.cfg", weights or root / "tiny.weights"]


def train_args(root, *extra, data=None, cfg=None) -> list:
    # click keeps the last of a repeated option: the case's own flags come after the defaults.
    return ["detector", "train", data or root / "obj.data", cfg or root / "tiny.cfg", "--max-batches", "1",
            "--device", "cpu", "--workers", "0", "--no-progress", *extra]


def anchors_args(root, *extra) -> list:
    return ["detector", "calc_anchors", root / "obj.data", "-num_of_clusters", "2", "-width", "32", "-height", "32",
            *extra]


def at(path: Path, line: Optional[int] = None) -> Expect:
    """Placeholder argv; the case fills it in with ``_with``."""
    return Expect([], f"{path}:{line}" if line else str(path), line)


def _with(argv: list, where: Expect) -> Expect:
    return where._replace(argv=argv)


def append(path: Path, text: str) -> int:
    """Append lines; returns the number of the first one."""
    before = path.read_text()
    path.write_text(before + text)
    return before.count("\n") + 1


# -- .data files ------------------------------------------------------------------------------------------

@case("data: not found (map)", RAISE, DataFileError)
def _(r):
    return _with(eval_args("map", r, data=r / "none.data"), at(r / "none.data"))


@case("data: a directory (valid)", RAISE, DataFileError)
def _(r):
    return _with(eval_args("valid", r, data=r / "JPEGImages"), at(r / "JPEGImages"))


@case("data: binary file (train)", RAISE, DataFileError)
def _(r):
    (r / "obj.data").write_bytes(b"classes=3\x00\x01\x02")
    return _with(train_args(r), at(r / "obj.data"))


@case("data: a cfg where the .data goes (check)", RAISE, DataFileError)
def _(r):
    return _with(check_args(r, data=r / "tiny.cfg"), at(r / "tiny.cfg", 2))


@case("data: cfg and data swapped (train)", RAISE, DataFileError)
def _(r):
    return _with(train_args(r, data=r / "tiny.cfg", cfg=r / "obj.data"), at(r / "tiny.cfg", 2))


@case("data: classes=0 (train)", RAISE, DataFileError)
def _(r):
    return _with(train_args(r), at(write_data(r, classes="0"), 1))


@case("data: classes=-3 (check)", RAISE, DataFileError)
def _(r):
    return _with(check_args(r), at(write_data(r, classes="-3"), 1))


@case("data: eval=yolo (valid)", RAISE, DataFileError)
def _(r):
    return _with(eval_args("valid", r), at(write_data(r, eval="yolo"), 6))


@case("data: savelast=often (train)", RAISE, DataFileError)
def _(r):
    return _with(train_args(r), at(write_data(r, savelast="often"), 6))


@case("data: names file missing (map)", RAISE, DataFileError)
def _(r):
    return _with(eval_args("map", r), at(write_data(r, names=str(r / "none.names")), 4))


@case("data: train list missing (train)", RAISE, DataFileError)
def _(r):
    return _with(train_args(r), at(write_data(r, train=str(r / "none.txt")), 2))


@case("data: valid list missing (map)", RAISE, DataFileError)
def _(r):
    return _with(eval_args("map", r), at(write_data(r, valid=str(r / "none.txt")), 3))


@case("data: train list missing (calc_anchors)", RAISE, DataFileError)
def _(r):
    return _with(anchors_args(r), at(write_data(r, train=str(r / "none.txt")), 2))


@case("data: names file missing (check)", FINDING, DataFileError, "data")
def _(r):
    return _with(check_args(r), at(write_data(r, names=str(r / "none.names")), 4))


@case("data: train list missing (check)", FINDING, DataFileError, "list")
def _(r):
    return _with(check_args(r), at(write_data(r, train=str(r / "none.txt")), 2))


# -- .names files -----------------------------------------------------------------------------------------

@case("names: binary (test)", RAISE, DataFileError)
def _(r):
    shutil.copy(BAD_INPUTS / "binary.names", r / "obj.names")
    return _with(detect_args(r), at(r / "obj.names"))


@case("names: a directory (map)", RAISE, DataFileError)
def _(r):
    return _with(eval_args("map", r), at(write_data(r, names=str(r / "JPEGImages")).parent / "JPEGImages"))


@case("names: only blank lines (valid)", RAISE, DataFileError)
def _(r):
    (r / "obj.names").write_text("\n\n\n")
    return _with(eval_args("valid", r), at(r / "obj.names"))


@case("names: fewer than classes (map)", RAISE, DataFileError)
def _(r):
    (r / "obj.names").write_text("rect\nellipse\n")
    return _with(eval_args("map", r), at(r / "obj.names"))


@case("names: count != classes (check)", FINDING, DataFileError, "names")
def _(r):
    (r / "obj.names").write_text("rect\nellipse\ntriangle\nstar\n")
    return _with(check_args(r), at(r / "obj.names"))


# -- list files -------------------------------------------------------------------------------------------

@case("train list: empty (train)", RAISE, DataFileError)
def _(r):
    (r / "train.txt").write_text("\n  \n")
    return _with(train_args(r, "--no-check"), at(r / "train.txt"))


@case("train list: binary (train)", RAISE, DataFileError)
def _(r):
    (r / "train.txt").write_bytes(b"\x7fELF\x00\x00")
    return _with(train_args(r, "--no-check"), at(r / "train.txt"))


@case("train list: no image exists (train)", RAISE, DataFileError)
def _(r):
    (r / "train.txt").write_text(f"{r / 'gone1.jpg'}\n{r / 'gone2.jpg'}\n")
    return _with(train_args(r, "--no-check"), at(r / "gone1.jpg"))


@case("valid list: empty (valid)", RAISE, DataFileError)
def _(r):
    (r / "valid.txt").write_text("")
    return _with(eval_args("valid", r), at(r / "valid.txt"))


@case("valid list: a missing image (map)", RAISE, ImageError)
def _(r):
    append(r / "valid.txt", f"{r / 'gone.jpg'}\n")
    return _with(eval_args("map", r), at(r / "gone.jpg"))


@case("valid list: a text file as image (recall)", RAISE, ImageError)
def _(r):
    shutil.copy(BAD_INPUTS / "text_as_image.jpg", image(r, "b"))
    return _with(eval_args("recall", r), at(image(r, "b")))


@case("train list: a missing image (check)", FINDING, ImageError, "image-missing")
def _(r):
    line = append(r / "train.txt", f"{r / 'gone.jpg'}\n")
    return _with(check_args(r), at(r / "train.txt", line))


@case("train list: a directory (check)", FINDING, DataFileError, "list")
def _(r):
    return _with(check_args(r), at(write_data(r, train=str(r / "JPEGImages")).parent / "JPEGImages"))


@case("train list: binary (check)", FINDING, DataFileError, "list")
def _(r):
    (r / "train.txt").write_bytes(b"\x00\x01")
    return _with(check_args(r), at(r / "train.txt"))


@case("valid list: empty (check)", FINDING, DataFileError, "list")
def _(r):
    (r / "valid.txt").write_text("\n")
    return _with(check_args(r), at(r / "valid.txt"))


# -- label files (detector check) -------------------------------------------------------------------------

def _label_case(name: str, text: str, code: str, error: type = LabelError):
    @case(f"label: {name} (check)", FINDING, error, code)
    def _(r):
        line = append(label(r), text)
        return _with(check_args(r, None, r / "tiny.cfg"), at(label(r), line))


_label_case("4 fields", "1 0.5 0.5 0.2\n", "label-parse")
_label_case("6 fields", "1 0.5 0.5 0.2 0.2 7\n", "label-parse")
_label_case("class written as a float", "1.0 0.5 0.5 0.2 0.2\n", "label-parse")
_label_case("class is a name", "rect 0.5 0.5 0.2 0.2\n", "label-parse")
_label_case("python-only number 0_5", "1 0_5 0.5 0.2 0.2\n", "label-parse")
_label_case("comma separated", "1,0.5,0.5,0.2,0.2\n", "label-parse")
_label_case("class id = classes", "3 0.5 0.5 0.2 0.2\n", "label-class")
_label_case("negative class id", "-1 0.5 0.5 0.2 0.2\n", "label-class")
_label_case("pixel coordinates", "0 32 24 16 12\n", "label-range")
_label_case("negative width", "0 0.5 0.5 -0.2 0.2\n", "label-range")
_label_case("zero height", "0 0.5 0.5 0.2 0\n", "label-range")
_label_case("nan", "0 nan 0.5 0.2 0.2\n", "label-range")
_label_case("inf", "0 0.5 0.5 inf 0.2\n", "label-range")
_label_case("x = y = 0", "0 0 0 0.2 0.2\n", "label-range")


@case("label: binary file (check)", FINDING, LabelError, "label-parse")
def _(r):
    label(r).write_bytes(b"\x00\x01\x02\x03 garbage")
    return _with(check_args(r), at(label(r), 1))


@case("label: missing, flavor pj (check)", FINDING, LabelError, "label-missing")
def _(r):
    label(r).unlink()
    return _with(check_args(r, None, None, "--flavor", "pj"), at(image(r)))


@case("label: the .txt is a directory, flavor pj (check)", FINDING, LabelError, "label-missing")
def _(r):
    label(r).unlink()
    label(r).mkdir()
    return _with(check_args(r, None, None, "--flavor", "pj"), at(image(r)))


@case("label: image extension without a label rule (check)", FINDING, LabelError, "label-missing")
def _(r):
    image(r).rename(r / "JPEGImages" / "a.gif")
    (r / "train.txt").write_text((r / "train.txt").read_text().replace("a.jpg", "a.gif"))
    return _with(check_args(r), at(r / "JPEGImages" / "a.gif"))


@case("label: missing, flavor pj (train --no-check)", RAISE, LabelError)
def _(r):
    label(r).unlink()
    label(r, "b").unlink()
    return _with(train_args(r, "--no-check", "--flavor", "pj"), at(label(r)))


@case("labels: no label file at all (calc_anchors)", RAISE, DataFileError)
def _(r):
    label(r).unlink()
    label(r, "b").unlink()
    return _with(anchors_args(r), at(r / "train.txt"))


@case("labels: a broken label stops training before it starts (train)", RAISE, DataFileError)
def _(r):
    append(label(r), "0 0.5 0.5 0.2\n")
    return _with(train_args(r), at(r / "obj.data"))


# -- images -----------------------------------------------------------------------------------------------

@case("image: not found (test)", RAISE, ImageError)
def _(r):
    return _with(detect_args(r, picture=r / "gone.jpg"), at(r / "gone.jpg"))


@case("image: a directory without images (test)", RAISE, ImageError)
def _(r):
    (r / "empty").mkdir()
    return _with(detect_args(r, picture=r / "empty"), at(r / "empty"))


@case("image: empty file (test)", RAISE, ImageError)
def _(r):
    image(r).write_bytes(b"")
    return _with(detect_args(r), at(image(r)))


for _fixture in ("truncated.jpg", "header_only.png", "text_as_image.jpg"):
    def _image_fixture(r, fixture=_fixture):
        target = r / "JPEGImages" / fixture
        shutil.copy(BAD_INPUTS / fixture, target)
        return _with(detect_args(r, picture=target), at(target))
    case(f"image: {_fixture} (test)", RAISE, ImageError)(_image_fixture)

    def _image_in_list(r, fixture=_fixture):
        shutil.copy(BAD_INPUTS / fixture, image(r, "b"))
        return _with(check_args(r), at(image(r, "b")))
    case(f"image: {_fixture} in the train list (check)", FINDING, ImageError, "image-unreadable")(_image_in_list)


@case("image: empty file in the train list (check --fast)", FINDING, ImageError, "image-unreadable")
def _(r):
    image(r, "b").write_bytes(b"")
    return _with(check_args(r, None, None, "--fast"), at(image(r, "b")))


@case("image: corrupt image in the valid list (map)", RAISE, ImageError)
def _(r):
    shutil.copy(BAD_INPUTS / "truncated.jpg", image(r, "b"))
    return _with(eval_args("map", r), at(image(r, "b")))


# -- weights and cfg on the detector commands ----------------------------------------------------------------

@case("weights: not found (test)", RAISE, WeightsError)
def _(r):
    return _with(detect_args(r, weights=r / "gone.weights"), at(r / "gone.weights"))


@case("weights: a directory (test)", RAISE, WeightsError)
def _(r):
    return _with(detect_args(r, weights=r / "JPEGImages"), at(r / "JPEGImages"))


@case("weights: bytes left over for this cfg (map)", RAISE, WeightsError)
def _(r):
    with open(r / "tiny.weights", "ab") as f:
        f.write(np.zeros(3, "<f4").tobytes())
    return _with(eval_args("map", r), at(r / "tiny.weights"))


@case("weights: a text file (train)", RAISE, WeightsError)
def _(r):
    (r / "notes.weights").write_text("these are not weights, just notes\n")
    return _with(train_args(r, r / "notes.weights"), at(r / "notes.weights"))


@case("weights: a .pt that is not a checkpoint (valid)", RAISE, WeightsError)
def _(r):
    (r / "model.pt").write_bytes(b"PK\x03\x04 not really a zip")
    return _with(eval_args("valid", r, weights=r / "model.pt"), at(r / "model.pt"))


@case("cfg: not found (check)", FINDING, CfgError, "cfg")
def _(r):
    return _with(check_args(r, None, r / "gone.cfg"), at(r / "gone.cfg"))


@case("cfg: [yolo] classes differ from .data (check)", FINDING, CfgError, "cfg-classes")
def _(r):
    cfg = r / "tiny.cfg"
    text = cfg.read_text()
    cfg.write_text(text.replace("classes=3", "classes=4"))
    return _with(check_args(r, None, cfg), at(cfg, text.splitlines().index("[yolo]") + 1))


@case("cfg: filters before [yolo] do not fit (check)", FINDING, CfgError, "cfg-filters")
def _(r):
    cfg = r / "tiny.cfg"
    text = cfg.read_text()
    cfg.write_text(text.replace("filters=16", "filters=15"))
    lines = text.splitlines()
    conv = max(i for i, t in enumerate(lines[:lines.index("filters=16")]) if t == "[convolutional]") + 1
    return _with(check_args(r, None, cfg), at(cfg, conv))


# -- output paths the system refuses -------------------------------------------------------------------------

def _a_file(root: Path) -> Path:
    (root / "afile").write_text("a file where a directory is expected\n")
    return root / "afile"


@case("backup: directory under a file (train)", RAISE, DataFileError)
def _(r):
    return _with(train_args(r), at(write_data(r, backup=str(_a_file(r) / "backup")), 5))


@case("backup: directory under a file (check)", FINDING, DataFileError, "backup")
def _(r):
    return _with(check_args(r), at(write_data(r, backup=str(_a_file(r) / "backup")), 5))


@case("results: directory under a file (valid)", RAISE, NotADirectoryError)
def _(r):
    return _with(eval_args("valid", r), at(write_data(r, results=str(_a_file(r) / "results")).parent / "afile"))


@case("output: -out prefix under a file (valid)", RAISE, WeightsError)
def _(r):
    return _with(eval_args("valid", r) + ["-out", _a_file(r) / "comp4_"], at(r / "afile"))


@case("output: -out JSON under a file (test)", RAISE, WeightsError)
def _(r):
    argv = detect_args(r)
    argv[argv.index("-out") + 1] = _a_file(r) / "out.json"
    return _with(argv, at(r / "afile" / "out.json"))


@case("output: --log under a file (train)", RAISE, OSError)
def _(r):
    return _with(train_args(r, "--log", _a_file(r) / "train.jsonl"), at(r / "afile"))


@case("output: .pt in a missing directory (convert)", RAISE, WeightsError)
def _(r):
    return _with(["convert", r / "tiny.cfg", r / "tiny.weights", r / "none" / "x.pt"], at(r / "none" / "x.pt"))


# -- weights that would give meaningless results, and destinations that must not be replaced ------------------

def header_only(path: Path) -> Path:
    """A .weights file that holds only its header (0 layers)."""
    path.write_bytes(path.read_bytes()[:20])
    return path


def with_nan(path: Path, index: int = 5) -> Path:
    values = np.frombuffer(path.read_bytes(), np.uint8).copy()
    values[20 + 4 * index:24 + 4 * index] = np.frombuffer(np.float32(np.nan).tobytes(), np.uint8)
    path.write_bytes(values.tobytes())
    return path


@case("weights: only a header, 0 layers (test)", RAISE, WeightsError)
def _(r):
    return _with(detect_args(r), at(header_only(r / "tiny.weights")))


@case("weights: only a header, 0 layers (map)", RAISE, WeightsError)
def _(r):
    return _with(eval_args("map", r), at(header_only(r / "tiny.weights")))


@case("weights: a backbone missing the detection layers (valid)", RAISE, WeightsError)
def _(r):
    weights = r / "tiny.weights"
    weights.write_bytes(weights.read_bytes()[:20 + 4 * (4 + 3 * 4 + 4 * 27)])     # the first conv layer only
    return _with(eval_args("valid", r), at(weights))


@case("weights: a NaN value (test)", RAISE, WeightsError)
def _(r):
    return _with(detect_args(r), at(with_nan(r / "tiny.weights")))


@case("weights: an Inf value (recall)", RAISE, WeightsError)
def _(r):
    weights = r / "tiny.weights"
    values = np.frombuffer(weights.read_bytes()[20:], "<f4").copy()
    values[-1] = np.inf
    weights.write_bytes(weights.read_bytes()[:20] + values.tobytes())
    return _with(eval_args("recall", r), at(weights))


@case("partial: destination is the source", RAISE, UsageError)
def _(r):
    return _with(["partial", r / "tiny.cfg", r / "tiny.weights", r / "tiny.weights", "1"], Expect([], "is the input weights file"))


@case("partial: destination is the source by another name", RAISE, UsageError)
def _(r):
    (r / "link.weights").symlink_to(r / "tiny.weights")
    return _with(["partial", r / "tiny.cfg", r / "link.weights", r / "JPEGImages" / ".." / "tiny.weights", "1"],
                 Expect([], "is the input weights file"))


@case("partial: write-protected destination", RAISE, WeightsError)
def _(r):
    target = r / "kept.weights"
    target.write_bytes(b"keep me")
    target.chmod(0o444)
    return _with(["partial", r / "tiny.cfg", r / "tiny.weights", target, "1"], at(target))


@case("convert: write-protected destination", RAISE, WeightsError)
def _(r):
    target = r / "kept.pt"
    target.write_bytes(b"keep me")
    target.chmod(0o444)
    return _with(["convert", r / "tiny.cfg", r / "tiny.weights", target], at(target))


# -- sizes that cannot fit: refused from the cfg, before allocating ---------------------------------------------

def huge(root: Path, size: int = 100000) -> Path:
    cfg = root / "tiny.cfg"
    cfg.write_text(cfg.read_text().replace("width=32", f"width={size}").replace("height=32", f"height={size}"))
    return cfg


@case("cfg: width=height=100000 (test)", RAISE, CfgError)
def _(r):
    return _with(detect_args(r), at(huge(r)))


@case("cfg: width=height=100000 (train)", RAISE, CfgError)
def _(r):
    return _with(train_args(r, "--no-check"), at(huge(r)))


@case("cfg: width=height=100000 (map)", RAISE, CfgError)
def _(r):
    return _with(eval_args("map", r), at(huge(r)))


# -- one run per backup folder ------------------------------------------------------------------------------

@case("backup: another run holds the folder (train)", RAISE, TrainingError)
def _(r):
    (r / "backup").mkdir()
    # the parent process (pytest's caller) is alive on this host: the lock is not stale
    (r / "backup" / ".darknet_py_train.lock").write_text(f"{os.getppid()} {socket.gethostname()} 2026-12-02\n")
    return _with(train_args(r), at(r / "backup"))


# -- flags ------------------------------------------------------------------------------------------------

@case("flag: --flavor xx (check)", USAGE)
def _(r):
    return Expect(check_args(r, None, None, "--flavor", "xx"), "--flavor")


@case("flag: -thresh abc (test)", USAGE)
def _(r):
    return Expect(detect_args(r) + ["-thresh", "abc"], "-thresh")


@case("flag: WEIGHTS missing (map)", USAGE)
def _(r):
    return Expect(eval_args("map", r)[:4], "WEIGHTS")


@case("flag: unknown sub-command", USAGE)
def _(r):
    return Expect(["detector", "detect", r / "obj.data"], "detect")


@case("flag: --examples -1 (check)", USAGE)
def _(r):
    return Expect(check_args(r, None, None, "--examples", "-1"), "--examples")


@case("flag: --max-batches abc (train)", USAGE)
def _(r):
    return Expect(["detector", "train", r / "obj.data", r / "tiny.cfg", "--max-batches", "abc"], "--max-batches")



@case("flag: --max-batches -5 (train)", USAGE)
def _(r):
    return Expect(["detector", "train", r / "obj.data", r / "tiny.cfg", "--max-batches", "-5"], "-5")

@case("flag: -iou_thresh abc (map)", USAGE)
def _(r):
    return Expect(eval_args("map", r) + ["-iou_thresh", "abc"], "-iou_thresh")


@case("flag: -gpus abc (train)", RAISE, UsageError)
def _(r):
    return _with(train_args(r, "-gpus", "abc"), Expect([], "-gpus"))


@case("flag: --device tpu (train)", RAISE, UsageError)
def _(r):
    return _with(train_args(r, "--device", "tpu"), Expect([], "--device"))


@case("flag: --workers -1 (train)", RAISE, UsageError)
def _(r):
    return _with(train_args(r, "--workers", "-1"), Expect([], "--workers"))


@case("flag: -num_of_clusters 0 (calc_anchors)", RAISE, UsageError)
def _(r):
    argv = anchors_args(r)
    argv[argv.index("-num_of_clusters") + 1] = "0"
    return _with(argv, Expect([], "-num_of_clusters"))


@case("flag: calc_anchors without -width", RAISE, UsageError)
def _(r):
    return _with(["detector", "calc_anchors", r / "obj.data", "-num_of_clusters", "2"], Expect([], "-width"))


@case("flag: partial with a negative layer count", RAISE, UsageError)
def _(r):
    return _with(["partial", r / "tiny.cfg", r / "tiny.weights", r / "out.weights", "--", "-1"], Expect([], "negative"))


# -- the test ---------------------------------------------------------------------------------------------

def test_the_corpus_has_at_least_50_cases():
    assert len(CASES) >= 50
    assert sum(c.kind == FINDING for c in CASES.values()) >= 15


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_clear_error(name, tmp_path, tiny_weights, monkeypatch):
    monkeypatch.chdir(tmp_path)                 # predictions.jpg, anchors.txt... land here
    root = tmp_path / "set"
    make_base(root, tiny_weights)
    entry = CASES[name]
    expect = entry.build(root)
    result = run_cli(*expect.argv)
    assert "Traceback" not in result.err + result.out
    if entry.kind == USAGE:
        assert result.code == 2 and "Usage:" in result.err and expect.where in result.err, result
        return
    assert result.code == 1, result
    errors = [line for line in result.err.splitlines() if line.startswith("darknet_py: error: ")]
    assert len(errors) == 1, result.err
    if entry.kind == RAISE:
        # The file is in the error line, or (training's fast check) in the finding printed above it.
        assert expect.where in result.err, (result.err[-3000:], expect.where)
        _assert_error_type(expect.argv, entry.error)
    else:
        assert f"{expect.where}:" in result.out, (expect.where, result.out[-3000:])
        _assert_finding(expect, entry)


def _assert_error_type(argv: list, error: type) -> None:
    """With --debug the CLI re-raises the DarknetError instead of printing it."""
    with pytest.raises(error):
        run_cli("--debug", *argv)


def _assert_finding(expect: Expect, entry: Case) -> None:
    argv = [str(a) for a in expect.argv]
    positional = [a for a in argv[2:] if not a.startswith("--") and a not in ("ab", "pj")]
    flavor = argv[argv.index("--flavor") + 1] if "--flavor" in argv else "ab"
    report = check_dataset(positional[0], positional[1] if len(positional) > 1 else None, flavor=flavor,
                           fast="--fast" in argv)
    found = [f for f in report.by_code(entry.code)
             if f.severity == ERROR and expect.where in (f"{f.file}:{f.line}" if f.line else str(f.file))]
    assert found, (entry.code, expect.where, report.format(5))
    assert found[0].error_type is entry.error


# -- inputs Darknet misreads silently: accepted (with the same rule everywhere) or warned about ------------------

class Accepted(NamedTuple):
    argv: list
    says: str                                     # text the output (stdout + stderr) must hold
    holds: Optional[Callable[[], bool]] = None    # and a fact about the files afterwards


ACCEPTED: dict[str, Callable[[Path], Accepted]] = {}


def accepted(name: str):
    def register(build):
        assert name not in ACCEPTED, name
        ACCEPTED[name] = build
        return build
    return register


BOM = "\ufeff"


def with_bom(path: Path) -> Path:
    path.write_bytes(BOM.encode() + path.read_bytes())
    return path


@accepted("BOM: .data file (check)")
def _(r):
    with_bom(r / "obj.data")
    return Accepted(check_args(r, None, r / "tiny.cfg"), "check passed: 0 error(s)")


@accepted("BOM: .names file (valid): the first class name is clean")
def _(r):
    with_bom(r / "obj.names")
    return Accepted(eval_args("valid", r), "wrote results/comp4_det_test_rect.txt",
                    lambda: (r.parent / "results" / "comp4_det_test_rect.txt").is_file())


@accepted("BOM: cfg file (test)")
def _(r):
    with_bom(r / "tiny.cfg")
    return Accepted(detect_args(r), "Predicted in")


@accepted("BOM: list file and label file (check)")
def _(r):
    with_bom(r / "train.txt")
    with_bom(label(r))
    return Accepted(check_args(r, None, r / "tiny.cfg"), "check passed: 0 error(s)")


@accepted("list: trailing spaces and tabs (train)")
def _(r):
    (r / "train.txt").write_text(f"{image(r)}  \n{image(r, 'b')}\t\n")
    return Accepted(train_args(r, "--no-check"), "Saving weights to",
                    lambda: (r / "backup" / "tiny_final.weights").is_file())


@accepted("list: trailing spaces and tabs (check)")
def _(r):
    (r / "train.txt").write_text(f"{image(r)}  \n{image(r, 'b')}\t\n")
    return Accepted(check_args(r), "check passed: 0 error(s)")


@accepted("warning: .data classes differ from the names (map)")
def _(r):
    write_data(r, classes="5")
    return Accepted(eval_args("map", r), f"warning: {r / 'obj.data'}: classes=5, but the cfg's last detection "
                                         "layer has classes=3")


@accepted("warning: batch smaller than subdivisions (train)")
def _(r):
    cfg = r / "tiny.cfg"
    cfg.write_text(cfg.read_text().replace("subdivisions=1", "subdivisions=4"))
    line = cfg.read_text().splitlines().index("batch=2") + 1
    return Accepted(train_args(r, "--no-check"), f"warning: {cfg}:{line}: batch=2 is smaller than subdivisions=4: "
                                                 "each iteration trains 4 images")


@accepted("warning: spaces removed from a .data path (map)")
def _(r):
    (r / "valid .txt").write_text("")          # the file the spaced name means is not the one Darknet opens
    data = write_data(r, valid=str(r / "valid .txt"))
    return Accepted(eval_args("map", r), f"warning: {data}:3: spaces inside 'valid={r / 'valid .txt'}' are removed, "
                                         f"as Darknet does: the value is '{r / 'valid.txt'}'")


@accepted("-map: a corrupt image in the valid list is left out, training ends normally (train)")
def _(r):
    shutil.copy(BAD_INPUTS / "truncated.jpg", image(r, "b"))
    (r / "train.txt").write_text(f"{image(r)}\n")
    return Accepted(train_args(r, "-map", "--no-check"), f"{image(r, 'b')}: cannot decode image",
                    lambda: (r / "backup" / "tiny_final.weights").is_file())


@accepted("-map: any other failure warns and training goes on (train)")
def _(r):
    label(r, "b").write_text("7 0.5 0.5 0.2 0.2\n")                 # a class id the model does not have
    (r / "train.txt").write_text(f"{image(r)}\n")
    return Accepted(train_args(r, "-map", "--no-check", "--max-batches", "2"),
                    "warning: the mAP at iteration 2 was not computed (LabelError",
                    lambda: (r / "backup" / "tiny_final.weights").is_file())


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_misread_input_is_accepted_or_warned_about(name, tmp_path, tiny_weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "set"
    make_base(root, tiny_weights)
    expect = ACCEPTED[name](root)
    result = run_cli(*expect.argv)
    output = result.out + result.err
    assert result.code == 0 and "Traceback" not in output, output[-3000:]
    assert expect.says in output, (expect.says, output[-3000:])
    assert expect.holds is None or expect.holds()


def test_debug_shows_the_traceback_and_plain_runs_do_not(tmp_path):
    """The real entry point, in a subprocess: one line without --debug, Python's traceback with it."""
    import subprocess
    import sys
    missing = tmp_path / "none.data"
    plain = subprocess.run([sys.executable, "-m", "darknet_py", "detector", "check", str(missing)],
                           capture_output=True, text=True, timeout=300)
    assert plain.returncode == 1 and plain.stderr == f"darknet_py: error: {missing}: file not found\n"
    debug = subprocess.run([sys.executable, "-m", "darknet_py", "--debug", "detector", "check", str(missing)],
                           capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert f"darknet_py.errors.DataFileError: {missing}: file not found" in debug.stderr
