"""Fault corpus (issue 23 items 3 and 6): what training and `detector check` do with malformed labels, images
and label files that vanish while a run trains, and JPEGs cut short.

* Malformed labels (class id out of range or negative, NaN/inf, zero or negative size): the same error, with
  the same file:line message, from `detector check` and from `detector train` (which runs the check first);
  nothing is trained or written. More boxes than `[yolo] max`: the same warning from both, and training keeps
  the first `max` after the shuffle, as Darknet's `fill_truth_detection`.
* An image or label file deleted or replaced (by a directory, by garbage) while training runs: a warning
  naming it, and training goes on to `max_batches` (root ignores chmod, so files are removed or replaced).
* A truncated JPEG decodes as libjpeg reads it (Darknet's OpenCV `imread`): a warning in training and in
  `detector check`, not an error."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from darknet_py.data.labels import BoxTransform, TruthSpec, fill_truth_detection, read_labels
from helpers.cli import run_cli
from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.train_runs import finish, log_records, park_after_iteration, release, run_train_here

CFG = dict(batch=2, subdivisions=1, max_batches=3, steps=(2,))


@pytest.fixture(scope="module")
def image_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("set")
    make_dataset(root, count=2, valid=1)
    return root


def _setup(image_set: Path, root: Path, **cfg) -> tuple[Path, Path]:
    """A private copy of the set (its files get spoiled), its .data and the tiny cfg."""
    shutil.copytree(image_set, root / "set")
    for name in ("train.txt", "valid.txt"):
        text = (root / "set" / name).read_text()
        (root / "set" / name).write_text(text.replace(str(image_set), str(root / "set")))
    data = write_tiny_data(root, root / "set", savelast=1, saveweights=1000)
    (root / "tiny.cfg").write_text(tiny_cfg(**{**CFG, **cfg}))
    return data, root / "tiny.cfg"


BAD_LABELS = [
    ("2 0.5 0.5 0.2 0.2", "class id 2 is outside 0..1 (classes=2)"),
    ("-1 0.5 0.5 0.2 0.2", "class id -1 is outside 0..1 (classes=2)"),
    ("0 nan 0.5 0.2 0.2", "a coordinate is not finite"),
    ("0 0.5 inf 0.2 0.2", "a coordinate is not finite"),
    ("0 0.5 0.5 -inf 0.2", "a coordinate is not finite"),
    ("0 0.5 0.5 0 0.2", "coordinates must be in (0, 1] (x, y centre; w, h > 0)"),
    ("0 0.5 0.5 0.2 -0.2", "coordinates must be in (0, 1] (x, y centre; w, h > 0)"),
]


@pytest.mark.parametrize("line, message", BAD_LABELS, ids=["class-too-big", "class-negative", "nan", "inf",
                                                           "minus-inf", "zero-width", "negative-height"])
def test_a_malformed_label_is_the_same_error_in_check_and_train(image_set, tmp_path, line, message):
    data, cfg = _setup(image_set, tmp_path)
    label = tmp_path / "set" / "labels" / "train" / "000.txt"
    label.write_text("1 0.5 0.5 0.3 0.3\n" + line + "\n")
    finding = f"error: {label}:2: {message} (value: '{line}')"
    check = run_cli("detector", "check", data, cfg)
    train = run_cli("detector", "train", data, cfg, "--device", "cpu", "--workers", "0", "--no-progress")
    for result in (check, train):
        assert result.code == 1 and finding in result.output and "Traceback" not in result.output
    assert f"darknet_py: error: {data}: the data set check found 1 error(s)" in train.err
    assert not (tmp_path / "backup").exists() or not list((tmp_path / "backup").glob("*.weights"))


def test_more_boxes_than_max_are_the_same_warning_and_darknet_keeps_the_first_max(image_set, tmp_path):
    data, cfg = _setup(image_set, tmp_path)
    cfg.write_text(cfg.read_text().replace("[yolo]\n", "[yolo]\nmax=90\n"))
    label = tmp_path / "set" / "labels" / "train" / "000.txt"
    label.write_text("".join(f"{i % 2} {0.1 + 0.008 * i:.3f} 0.5 0.05 0.2\n" for i in range(100)))
    warning = f"warning: {label}: 100 boxes, but the last [yolo] layer keeps at most max=90 per image"
    check = run_cli("detector", "check", data, cfg)
    train = run_cli("detector", "train", data, cfg, "--device", "cpu", "--workers", "0", "--no-progress")
    assert check.code == 0 and warning in check.output
    assert train.code == 0 and warning in train.output, train.output[-3000:]
    spec = TruthSpec("ab", classes=2, max_boxes=90, net_w=64, net_h=64)
    truth = fill_truth_detection(read_labels(str(label)), np.random.default_rng(0), spec, BoxTransform(), str(label))
    assert truth.shape[0] == 90 and np.count_nonzero(truth[:, 2]) == 90          # 90 of the 100 boxes kept


def _spoil_while_training(image_set: Path, root: Path, spoil, *flags: str) -> tuple[subprocess.Popen, str]:
    """Train to iteration 1, spoil files, let the run go on to max_batches; (process, its stderr)."""
    data, cfg = _setup(image_set, root)
    with open(root / "stdout.txt", "w") as stdout:
        process = park_after_iteration(root, 1, stdout, data, cfg, *flags)
        spoil(root / "set")
        release(process)
        err = finish(process)
    return process, err


def _image(set_root: Path, k: int) -> Path:
    return set_root / "JPEGImages" / "train" / f"{k:03d}.png"


def _label(set_root: Path, k: int) -> Path:
    return set_root / "labels" / "train" / f"{k:03d}.txt"


def _into_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("spoil, warned", [
    (lambda s: _image(s, 0).unlink(), "{image0}: image file not found; skipped during training"),
    (lambda s: _into_directory(_image(s, 0)), "{image0}: image file not found; skipped during training"),
    (lambda s: _image(s, 0).write_bytes(b"garbage" * 10),
     "{image0}: cannot decode image (corrupt or not an image); skipped during training"),
    (lambda s: _label(s, 1).unlink(), "{label1}: label file not found; the image is used with no objects"),
    (lambda s: _into_directory(_label(s, 1)), "{label1}: label file cannot be read"),
], ids=["image-deleted", "image-made-a-directory", "image-made-garbage", "label-deleted", "label-made-a-directory"])
def test_a_file_vanishing_while_training_is_a_warning_and_training_goes_on(image_set, tmp_path, spoil, warned):
    process, err = _spoil_while_training(image_set, tmp_path, spoil)
    assert process.returncode == 0, err[-3000:]
    assert "warning: " + warned.format(image0=_image(tmp_path / "set", 0), label1=_label(tmp_path / "set", 1)) in err
    assert "Traceback" not in err
    assert log_records(tmp_path / "backup" / "tiny_train.jsonl", "iteration")[-1]["iteration"] == CFG["max_batches"]
    assert (tmp_path / "backup" / "tiny_final.weights").is_file()


def test_a_label_file_vanishing_under_pjreddie_skips_the_image_and_training_goes_on(image_set, tmp_path):
    """pjreddie aborts on a missing label file (`fopen` fails in `read_boxes`) and loses the progress since its
    last backup; darknet_py leaves the image out with a warning (a missing label at the start stays the
    pre-training check's error)."""
    process, err = _spoil_while_training(image_set, tmp_path, lambda s: _label(s, 1).unlink(), "--flavor", "pj")
    assert process.returncode == 0, err[-3000:]
    assert (f"warning: {_label(tmp_path / 'set', 1)}: label file not found; skipped during training, another "
            "image is drawn instead") in err
    assert "Traceback" not in err and (tmp_path / "backup" / "tiny_final.weights").is_file()


def test_a_truncated_jpeg_trains_with_a_warning_and_check_warns(image_set, tmp_path):
    from darknet_py.data.image import read_image_file     # the one image reader (issue 23)
    data, cfg = _setup(image_set, tmp_path)
    image = _image(tmp_path / "set", 0)
    jpeg = image.with_suffix(".jpg")
    encoded = cv2.imencode(".jpg", cv2.imread(str(image)))[1].tobytes()
    jpeg.write_bytes(encoded[:len(encoded) * 2 // 3])
    image.unlink()
    train_list = tmp_path / "set" / "train.txt"
    train_list.write_text(train_list.read_text().replace(str(image), str(jpeg)))
    with pytest.warns(UserWarning, match="JPEG data ends before the image does"):
        pixels = read_image_file(jpeg)
    whole = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    assert pixels.shape == whole.shape and (pixels[:4] == whole[:4]).all()     # the top rows are all there
    check = run_cli("detector", "check", data, cfg)
    assert check.code == 0, check.output
    assert f"warning: {jpeg}: JPEG data ends before the image does (libjpeg: Premature end of JPEG file)" \
        in check.output
    train = run_train_here(tmp_path, data, cfg)
    assert train.returncode == 0, train.stderr[-3000:]
    assert f"warning: {jpeg}: JPEG data ends before the image does" in train.stderr
