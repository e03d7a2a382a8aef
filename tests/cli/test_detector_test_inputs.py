"""`detector test` on many pictures: INPUT as image files, a directory, a glob or a .txt list, the stdin
loop, `--save-dir`, and AlexeyAB's handling of unreadable images (a warning, `bad.list`, the run goes on).

Golden values: one image's JSON objects against AlexeyAB's own `-out` file for it (tests/fixtures/eval/cli);
the others are the same image under other names, so their blocks must carry the same objects."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from darknet_py.errors import ImageError
from helpers.cli import run_cli
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = EVAL / "synth" / "cfg" / "tiny3.cfg"
WEIGHTS = EVAL / "tiny3" / "trained.weights"
VALID = EVAL / "synth" / "JPEGImages" / "valid"
BAD = FIXTURES / "bad_inputs"


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """obj.data, and pics/ holding 00003.jpg (AB's reference image) as b.jpg and c.png, 00005.jpg as a.jpg,
    and a label file the directory and glob inputs must skip."""
    (tmp_path / "obj.data").write_text(f"classes=3\nnames={EVAL / 'synth' / 'obj.names'}\n")
    pics = tmp_path / "pics"
    pics.mkdir()
    shutil.copy(VALID / "00003.jpg", pics / "b.jpg")
    shutil.copy(VALID / "00005.jpg", pics / "a.jpg")
    cv2.imwrite(str(pics / "c.png"), cv2.imread(str(VALID / "00003.jpg")))   # lossless: same pixels
    (pics / "b.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _test(*inputs, extra=(), input=None):
    # --workers 0 (one process) unless a test asks for loader processes: a few images gain nothing from them
    return run_cli("detector", "test", "obj.data", CFG, WEIGHTS, *inputs, "-out", "result.json",
                   "-thresh", ".05", "-dont_show", "--workers", "0", *extra, input=input)


def _frames(path: Path = Path("result.json")) -> list[dict]:
    return json.loads(path.read_text())


def _reference_objects() -> list[dict]:
    return json.loads((EVAL / "cli" / "ab_tiny3" / "result_thresh005.json").read_text())[0]["objects"]


def _assert_reference(objects: list[dict]) -> None:
    """AlexeyAB's detections of 00003.jpg at -thresh .05: same classes in order, confidences and 1-pixel boxes."""
    want = _reference_objects()
    assert want
    assert [o["class_id"] for o in objects] == [o["class_id"] for o in want]
    for g, w in zip(objects, want):
        assert g["confidence"] == pytest.approx(w["confidence"], abs=.005)
        for key, size in (("center_x", 120), ("center_y", 160), ("width", 120), ("height", 160)):
            assert abs(g["relative_coordinates"][key] - w["relative_coordinates"][key]) * size <= 1


def test_directory_gives_its_images_sorted_by_name(workdir):
    result = _test("pics")
    assert result.code == 0, result
    frames = _frames()
    assert [(f["frame_id"], f["filename"]) for f in frames] == [(1, "pics/a.jpg"), (2, "pics/b.jpg"),
                                                                 (3, "pics/c.png")]
    _assert_reference(frames[1]["objects"])
    assert frames[2]["objects"] == frames[1]["objects"]      # the same pixels, PNG-coded
    assert frames[0]["objects"] != frames[1]["objects"]
    assert [line.split(": Predicted")[0] for line in result.out.splitlines() if ": Predicted" in line] == \
        ["pics/a.jpg", "pics/b.jpg", "pics/c.png"]
    assert not Path("bad.list").exists()


def test_glob_list_and_files_keep_input_order(workdir):
    Path("some.txt").write_text("pics/c.png\n\npics/a.jpg\r\n")
    result = _test("pics/b.jpg", "some.txt", "pics/*.jpg")
    assert result.code == 0, result
    assert [f["filename"] for f in _frames()] == ["pics/b.jpg", "pics/c.png", "pics/a.jpg", "pics/a.jpg",
                                                  "pics/b.jpg"]
    assert [f["frame_id"] for f in _frames()] == [1, 2, 3, 4, 5]
    for frame in (_frames()[0], _frames()[1], _frames()[4]):
        _assert_reference(frame["objects"])


def test_corrupt_and_missing_images_in_a_list_are_warned_listed_and_skipped(workdir):
    shutil.copy(BAD / "truncated.jpg", workdir / "pics" / "broken.jpg")
    Path("bad.list").write_text("old.jpg\n")                    # AB appends: earlier entries stay
    Path("list.txt").write_text("pics/b.jpg\npics/broken.jpg\npics/gone.jpg\npics/a.jpg\n")
    result = _test("list.txt")
    assert result.code == 0, result
    warned = [line for line in result.err.splitlines() if line.startswith("warning: ")]
    assert any("pics/broken.jpg" in line and "bad.list" in line for line in warned), result.err
    assert any("pics/gone.jpg" in line and "bad.list" in line for line in warned), result.err
    assert Path("bad.list").read_text() == "old.jpg\npics/broken.jpg\npics/gone.jpg\n"
    frames = _frames()
    assert [(f["frame_id"], f["filename"]) for f in frames] == [(1, "pics/b.jpg"), (4, "pics/a.jpg")]
    _assert_reference(frames[0]["objects"])
    assert "darknet_py: error" not in result.err


def test_no_readable_image_is_one_error(workdir):
    shutil.copy(BAD / "text_as_image.jpg", workdir / "pics" / "text.jpg")
    result = _test("pics/text.jpg", "pics/gone.jpg")
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith("darknet_py: error: ")]
    assert len(errors) == 1 and "pics/text.jpg" in errors[0] and "no image could be read" in errors[0]
    assert Path("bad.list").read_text() == "pics/text.jpg\npics/gone.jpg\n"
    assert "Traceback" not in result.err
    with pytest.raises(ImageError):
        run_cli("--debug", "detector", "test", "obj.data", CFG, WEIGHTS, "pics/gone.jpg")


def test_stdin_loop_goes_on_past_a_missing_image(workdir):
    result = _test(input="pics/gone.jpg\npics/b.jpg\n")
    assert result.code == 0, result
    assert result.out.count("Enter Image Path: ") == 3
    assert [(f["frame_id"], f["filename"]) for f in _frames()] == [(2, "pics/b.jpg")]
    _assert_reference(_frames()[0]["objects"])
    assert Path("bad.list").read_text() == "pics/gone.jpg\n"


def test_save_dir_writes_one_picture_per_image(workdir):
    (workdir / "other").mkdir()
    shutil.copy(workdir / "pics" / "c.png", workdir / "other" / "b.png")
    result = _test("pics", "other", extra=("--save-dir", "out/drawn"))
    assert result.code == 0, result
    assert "warning: out/drawn/b.jpg: another input has the same name" in result.err
    assert sorted(p.name for p in Path("out/drawn").iterdir()) == ["a.jpg", "b.jpg", "c.jpg"]
    for name in ("a", "b"):
        drawn = cv2.imread(f"out/drawn/{name}.jpg")
        assert drawn.shape == cv2.imread(f"pics/{name}.jpg").shape
    assert not Path("predictions.jpg").exists()


def test_empty_directory_and_unmatched_glob(workdir):
    (workdir / "none").mkdir()
    result = _test("none", "pics/*.gif", "pics/a.jpg")
    assert result.code == 0, result
    assert "none: no images" in result.err and "pics/*.gif: no images" in result.err
    assert [f["filename"] for f in _frames()] == ["pics/a.jpg"]
    result = _test("none")
    assert result.code == 1 and "darknet_py: error: none: no images to detect in" in result.err


def test_batch_size_and_workers_do_not_change_the_json(workdir):
    assert _test("pics", extra=("--batch", "1")).code == 0
    one = _frames()
    assert _test("pics", "pics/b.jpg", extra=("--batch", "3", "--workers", "1")).code == 0
    two = _frames()
    assert [f["filename"] for f in two] == [f["filename"] for f in one] + ["pics/b.jpg"]
    for a, b in zip(one + [one[1]], two):
        assert [o["class_id"] for o in a["objects"]] == [o["class_id"] for o in b["objects"]]
        for x, y in zip(a["objects"], b["objects"]):
            assert x["confidence"] == pytest.approx(y["confidence"], abs=1e-5)
            for key, value in x["relative_coordinates"].items():
                assert y["relative_coordinates"][key] == pytest.approx(value, abs=1e-5)
