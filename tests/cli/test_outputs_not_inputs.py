"""No command writes over one of its own inputs (darknet_py/outputs.py): an output that is an input by path,
symlink or hard link, or a file a command would write into a folder that is an input there, is refused
before any work with one message naming both, exit 1, and the input is left as it was."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from darknet_py.errors import UsageError
from darknet_py.outputs import refuse_overwriting_inputs
from helpers.cli import run_cli
from helpers.paths import FIXTURES

TINY3 = FIXTURES / "tiny3"


# -- the rule ---------------------------------------------------------------------------------------------------

def test_the_same_path_however_spelled_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    weights = tmp_path / "x.weights"
    weights.write_bytes(b"w")
    with pytest.raises(UsageError) as error:
        refuse_overwriting_inputs("export", {"weights file": str(weights)},
                                  {"output": str(tmp_path / "sub" / ".." / "x.weights")})
    assert str(error.value).startswith(f"export: output '{tmp_path}/sub/../x.weights' is the input weights "
                                       f"file '{weights}'")


def test_a_missing_output_that_resolves_to_an_input_is_refused(tmp_path, monkeypatch):
    """Nothing exists yet: the resolved names alone decide (a cfg given as ./a.cfg, the output as a.cfg)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="is the input cfg file"):
        refuse_overwriting_inputs("x", {"cfg file": "./a.cfg"}, {"output": "a.cfg"})


@pytest.mark.parametrize("link_side", ["output", "input"])
def test_a_symlink_on_either_side_is_refused(tmp_path, link_side):
    real, link = tmp_path / "real.avi", tmp_path / "link.avi"
    real.write_bytes(b"video")
    link.symlink_to(real)
    given_in, given_out = (real, link) if link_side == "output" else (link, real)
    with pytest.raises(UsageError, match="is the input video"):
        refuse_overwriting_inputs("detector demo", {"video": given_in}, {"-out_filename": given_out})


def test_a_hard_link_is_refused(tmp_path):
    real, link = tmp_path / "a.json", tmp_path / "b.json"
    real.write_text("{}")
    os.link(real, link)
    with pytest.raises(UsageError, match="is the input names file"):
        refuse_overwriting_inputs("x", {"names file": [tmp_path / "other", real]}, {"-out": link})


def test_a_file_written_into_an_output_folder_that_is_an_input_is_refused(tmp_path):
    (tmp_path / "dog.jpg").write_bytes(b"jpeg")
    (tmp_path / "cat.png").write_bytes(b"png")
    with pytest.raises(UsageError, match=r"'.*dog\.jpg' is the input image '.*dog\.jpg'"):
        refuse_overwriting_inputs("detector test", {"image": [tmp_path / "cat.png", tmp_path / "dog.jpg"]}, {},
                                  output_dirs={"--save-dir picture": (tmp_path, ["cat.jpg", "dog.jpg"])})


def test_different_files_and_absent_outputs_pass(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("a")                    # same content, another file
    refuse_overwriting_inputs("x", {"input": [a], "list": None}, {"output": b, "-out": None, "-json": ""})
    refuse_overwriting_inputs("x", {"image": tmp_path / "cat.png"}, {},
                              output_dirs={"--save-dir picture": (tmp_path, ["cat.jpg"])})


# -- export, convert, partial -----------------------------------------------------------------------------------

@pytest.fixture
def model(tmp_path) -> tuple[Path, Path]:
    cfg, weights = tmp_path / "tiny3.cfg", tmp_path / "tiny3.weights"
    shutil.copy(TINY3 / "tiny3.cfg", cfg)
    shutil.copy(TINY3 / "trained.weights", weights)
    return cfg, weights


def refused(args: list, kept: Path, *says: str) -> None:
    """The command exits 1 with one message that says all of ``says``, and ``kept`` is unchanged."""
    before = kept.read_bytes()
    result = run_cli(*args)
    assert result.code == 1, result
    assert "Traceback" not in result.output and result.err.count("darknet_py: error:") == 1, result.err
    for text in says:
        assert text in result.err, (text, result.err)
    assert kept.read_bytes() == before


def hard_link(path: Path) -> Path:
    link = path.with_name("hard_" + path.name)
    os.link(path, link)
    return link


def sym_link(path: Path) -> Path:
    link = path.with_name("sym_" + path.name)
    link.symlink_to(path)
    return link


@pytest.mark.parametrize("victim", ["weights", "cfg", "weights hard link", "cfg symlink"])
def test_export_refuses_to_write_over_its_cfg_or_weights(model, victim):
    cfg, weights = model
    target = {"weights": weights, "cfg": cfg, "weights hard link": hard_link(weights),
              "cfg symlink": sym_link(cfg)}[victim]
    kind = "cfg" if "cfg" in victim else "weights"
    refused(["export", cfg, weights, target], model[kind == "weights"],
            f"export: output '{target}' is the input {kind} file")


@pytest.mark.parametrize("victim", ["weights", "cfg", "hard link"])
def test_convert_refuses_to_write_over_its_cfg_or_weights(model, victim):
    cfg, weights = model
    pt = weights.with_suffix(".pt")
    assert run_cli("convert", cfg, weights, pt).code == 0
    target = {"weights": pt, "cfg": cfg, "hard link": hard_link(pt)}[victim]
    refused(["convert", cfg, pt, target], cfg if victim == "cfg" else pt,
            f"convert: output '{target}' is the input {'cfg' if victim == 'cfg' else 'weights'} file")


@pytest.mark.parametrize("victim", ["weights", "cfg", "symlink"])
def test_partial_refuses_to_write_over_its_cfg_or_weights(model, victim):
    cfg, weights = model
    target = {"weights": weights, "cfg": cfg, "symlink": sym_link(weights)}[victim]
    refused(["partial", cfg, weights, target, "3"], cfg if victim == "cfg" else weights,
            f"partial: output '{target}' is the input")


# -- detector test and demo -------------------------------------------------------------------------------------

EVAL = FIXTURES / "eval"
DETECTOR = ("obj.data", "tiny3.cfg", EVAL / "tiny3" / "trained.weights")       # in the working directory
PICTURE = EVAL / "synth" / "JPEGImages" / "valid" / "00003.jpg"


@pytest.fixture
def photos(tmp_path, monkeypatch) -> Path:
    """Working directory tmp_path: obj.data (names beside it), tiny3.cfg, photos/a.jpg and photos/b.jpg."""
    shutil.copy(EVAL / "synth" / "obj.names", tmp_path / "obj.names")
    shutil.copy(EVAL / "synth" / "cfg" / "tiny3.cfg", tmp_path / "tiny3.cfg")
    (tmp_path / "obj.data").write_text("classes=3\nnames=obj.names\n")
    (tmp_path / "photos").mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(PICTURE, tmp_path / "photos" / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "photos"


def detector_test(*args, input=None):
    return run_cli("detector", "test", *DETECTOR, *args, "-dont_show", "--workers", "0", input=input)


def test_test_save_dir_holding_the_photos_is_refused(photos):
    refused(["detector", "test", *DETECTOR, photos, "--save-dir", photos], photos / "a.jpg",
            f"detector test: picture '{photos}/a.jpg' is the input image '{photos}/a.jpg'")
    assert sorted(p.name for p in photos.iterdir()) == ["a.jpg", "b.jpg"]


def test_test_save_dir_with_other_names_is_fine(photos):
    (photos / "c.png").write_bytes(cv2_png())
    result = detector_test(photos / "c.png", "--save-dir", photos)
    assert result.code == 0, result.output
    assert (photos / "c.jpg").is_file()


def cv2_png() -> bytes:
    import cv2
    return cv2.imencode(".png", cv2.imread(str(PICTURE)))[1].tobytes()


@pytest.mark.parametrize("victim", ["image", "hard link of the image", "cfg symlink", "names", "list"])
def test_test_json_out_over_an_input_is_refused(photos, victim):
    listed = photos.parent / "list.txt"
    listed.write_text(f"{photos / 'a.jpg'}\n")
    if victim == "cfg symlink":
        Path("cfg_link").symlink_to(DETECTOR[1])
    target = {"image": photos / "b.jpg", "hard link of the image": hard_link(photos / "b.jpg"),
              "cfg symlink": Path("cfg_link"), "names": Path("obj.names"), "list": listed}[victim]
    kept = Path(DETECTOR[1]) if victim == "cfg symlink" else target
    role = {"image": "image", "hard link of the image": "image", "cfg symlink": "cfg file", "names": "names file",
            "list": "list"}[victim]
    refused(["detector", "test", *DETECTOR, listed, photos / "b.jpg", "-out", target], kept,
            f"detector test: -out '{target}' is the input {role}")


def test_test_pj_picture_name_over_an_input_is_refused(photos):
    """PJ's -out names the picture (+ .jpg): photos/a would write photos/a.jpg."""
    refused(["detector", "test", *DETECTOR, photos / "a.jpg", "--flavor", "pj", "-out", photos / "a"],
            photos / "a.jpg", "picture")


def test_test_predictions_jpg_as_input_is_refused(photos):
    shutil.copy(PICTURE, "predictions.jpg")
    refused(["detector", "test", *DETECTOR, "predictions.jpg"], Path("predictions.jpg"),
            "picture 'predictions.jpg' is the input image 'predictions.jpg'")


def test_test_stdin_path_that_would_be_overwritten_is_refused(photos):
    shutil.copy(PICTURE, "predictions.jpg")
    before = Path("predictions.jpg").read_bytes()
    result = detector_test(input="predictions.jpg\n")
    assert result.code == 1 and "is the input image 'predictions.jpg'" in result.err, result.output
    assert Path("predictions.jpg").read_bytes() == before


def test_test_save_labels_over_the_list_is_refused(photos):
    """AB's label path of photos/a.jpg is photos/a.txt: a list of that name would be replaced."""
    listed = photos / "a.txt"
    listed.write_text(f"{photos / 'a.jpg'}\n")
    refused(["detector", "test", *DETECTOR, listed, "-save_labels"], listed,
            f"-save_labels label file '{listed}' is the input list '{listed}'")


def test_test_bad_list_as_input_is_refused(photos):
    Path("bad.list").write_text("old entry\n")
    refused(["detector", "test", *DETECTOR, "bad.list"], Path("bad.list"), "bad.list 'bad.list' is the input image")


def test_test_two_outputs_in_one_file_are_refused(photos):
    result = detector_test(photos / "a.jpg", "-out", "predictions.jpg")
    assert result.code == 1 and "picture 'predictions.jpg' is also the -out 'predictions.jpg'" in result.err, \
        result.output


def test_test_missing_list_is_named_as_a_list(photos):
    result = detector_test(photos / "a.jpg", "missing.txt")
    assert result.code == 1 and result.err.startswith("darknet_py: error: missing.txt: list file not found"), \
        result.output
    assert not Path("bad.list").exists() and not Path("predictions.jpg").exists()


@pytest.fixture
def video(photos) -> Path:
    import cv2
    writer = cv2.VideoWriter("in.avi", cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 120))
    writer.write(cv2.resize(cv2.imread(str(PICTURE)), (160, 120)))
    writer.release()
    return Path("in.avi")


@pytest.mark.parametrize("flag,victim", [("-out_filename", "video"), ("-out_filename", "video symlink"),
                                         ("-json_file_output", "video"), ("-json_file_output", "weights"),
                                         ("-out_filename", "data")])
def test_demo_refuses_to_write_over_its_inputs(video, flag, victim):
    weights = Path("w.weights")
    shutil.copy(DETECTOR[2], weights)
    target = {"video": video, "video symlink": sym_link(video.resolve()), "weights": hard_link(weights.resolve()),
              "data": Path("obj.data")}[victim]
    role = {"video": "video", "video symlink": "video", "weights": "weights file", "data": "data file"}[victim]
    refused(["detector", "demo", "obj.data", DETECTOR[1], weights, video, flag, target], target,
            f"detector demo: {flag} '{target}' is the input {role}")


def test_demo_one_file_for_both_outputs_is_refused(video):
    result = run_cli("detector", "demo", *DETECTOR, video, "-out_filename", "o.avi", "-json_file_output", "o.avi")
    assert result.code == 1 and "-json_file_output 'o.avi' is also the -out_filename 'o.avi'" in result.err


def test_demo_on_a_video_without_frames_fails_and_says_so(photos):
    import cv2
    cv2.VideoWriter("empty.avi", cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 120)).release()
    result = run_cli("detector", "demo", *DETECTOR, "empty.avi", "-out_filename", "z_out.avi", "-dont_show")
    assert result.code == 1, result.output
    assert "empty.avi: no frame could be read" in result.err and "wrote" not in result.output
    assert not Path("z_out.avi").exists()


# -- valid, map, calc_anchors -----------------------------------------------------------------------------------

@pytest.fixture
def valid_set(photos) -> Path:
    """valid.txt listing photos/a.jpg and photos/b.jpg (labels beside them, AB's rule), in obj.data."""
    for name in ("a", "b"):
        (photos / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    Path("valid.txt").write_text(f"{photos / 'a.jpg'}\n{photos / 'b.jpg'}\n")
    Path("obj.data").write_text("classes=3\nnames=obj.names\nvalid=valid.txt\ntrain=valid.txt\nresults=res\n")
    return Path("valid.txt")


@pytest.mark.parametrize("victim", ["valid list", "names file", "cfg file", "image"])
def test_valid_result_file_over_an_input_is_refused(valid_set, photos, victim):
    """valid writes res/comp4_det_test_<class name>.txt (voc), res/<-out>.json (coco), res/<-out>.txt
    (imagenet): an input at one of those paths is refused."""
    Path("res").mkdir()
    data, cfg, out = Path("obj.data"), "tiny3.cfg", []
    first_class = Path("obj.names").read_text().split()[0]
    voc_file = Path("res") / f"comp4_det_test_{first_class}.txt"
    if victim == "valid list":
        shutil.copy(valid_set, voc_file)
        data.write_text(data.read_text().replace("valid=valid.txt", f"valid={voc_file}"))
    elif victim == "names file":
        shutil.copy("obj.names", voc_file)
        data.write_text(data.read_text().replace("names=obj.names", f"names={voc_file}"))
    elif victim == "cfg file":
        cfg, out = "res/mine.json", ["-out", "mine"]
        shutil.copy("tiny3.cfg", cfg)
        data.write_text(data.read_text() + "eval=coco\n")
    else:
        shutil.copy(PICTURE, "res/pic.txt")
        valid_set.write_text(valid_set.read_text() + "res/pic.txt\n")
        data.write_text(data.read_text() + "eval=imagenet\n")
        out = ["-out", "pic"]
    kept = {"valid list": voc_file, "names file": voc_file, "cfg file": Path(cfg), "image": Path("res/pic.txt")}[victim]
    refused(["detector", "valid", "obj.data", cfg, DETECTOR[2], *out, "--workers", "0"], kept,
            f"detector valid: result file '{kept}' is the input {victim}")


@pytest.mark.parametrize("victim", ["valid list", "label file", "image", "weights file"])
def test_map_coco_out_over_an_input_is_refused(valid_set, photos, victim):
    weights = Path(shutil.copy(DETECTOR[2], "w.weights")).resolve()
    target = {"valid list": valid_set, "label file": photos / "a.txt", "image": photos / "b.jpg",
              "weights file": hard_link(weights)}[victim]
    refused(["detector", "map", "obj.data", "tiny3.cfg", weights, "-coco_out", target, "--workers", "0"], target,
            f"detector map: -coco_out '{target}' is the input {victim}")


@pytest.mark.parametrize("victim", ["image", "names file", "cfg file"])
def test_map_plots_over_an_input_is_refused(valid_set, photos, victim):
    """`detector map --plots DIR` writes pr_curve.png, f1_curve.png, confusion_matrix.png and pr_curves.json
    into DIR: an input at one of those paths is refused before any work."""
    pytest.importorskip("matplotlib")
    weights = Path(shutil.copy(DETECTOR[2], "w.weights")).resolve()
    cfg = "tiny3.cfg"
    if victim == "image":
        target = photos / "pr_curve.png"
        shutil.copy(photos / "a.jpg", target)
        valid_set.write_text(valid_set.read_text() + f"{target}\n")
    elif victim == "names file":
        target = photos / "pr_curves.json"
        shutil.copy("obj.names", target)
        Path("obj.data").write_text(Path("obj.data").read_text().replace("names=obj.names", f"names={target}"))
    else:
        target = photos / "f1_curve.png"
        shutil.copy(cfg, target)
        cfg = str(target)
    refused(["detector", "map", "obj.data", cfg, weights, "--plots", photos, "--workers", "0"], target,
            f"detector map: --plots file '{target}' is the input {victim}")


@pytest.mark.parametrize("output", ["anchors.txt", "counters_per_class.txt", "cloud.png"])
def test_calc_anchors_outputs_over_inputs_are_refused(tmp_path, monkeypatch, output):
    """calc_anchors writes in the working directory: a train list named anchors.txt, an image cloud.png, or
    the label file of counters_per_class.jpg (AB's rule: the same name, .txt)."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(PICTURE, "photo.jpg")
    Path("photo.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.4\n")
    listed = ["photo.jpg"]
    train = "train.txt"
    if output == "anchors.txt":
        train = "anchors.txt"
    elif output == "cloud.png":
        shutil.copy(PICTURE, "cloud.png")
        Path("cloud.txt").write_text("0 0.5 0.5 0.2 0.2\n")
        listed.append("cloud.png")
    else:
        shutil.copy(PICTURE, "counters_per_class.jpg")
        Path("counters_per_class.txt").write_text("0 0.5 0.5 0.2 0.2\n")
        listed.append("counters_per_class.jpg")
    Path(train).write_text("".join(f"{name}\n" for name in listed))
    Path("obj.data").write_text(f"classes=2\ntrain={train}\n")
    role = {"anchors.txt": "train list", "cloud.png": "image", "counters_per_class.txt": "label file"}[output]
    refused(["detector", "calc_anchors", "obj.data", "-num_of_clusters", "2", "-width", "64", "-height", "64",
             "-show"], Path(output), f"detector calc_anchors: output '{output}' is the input {role}")


# -- what partial says it kept ----------------------------------------------------------------------------------

@pytest.mark.parametrize("asked,kept,with_parameters", [("999", 24, 13), ("3", 3, 2)])
def test_partial_says_how_many_layers_it_kept(model, asked, kept, with_parameters):
    """tiny3 has 24 layers, 13 with parameters; Darknet's save_weights_upto stops at the last layer."""
    cfg, weights = model
    result = run_cli("partial", cfg, weights, cfg.with_name("cut.weights"), asked)
    assert result.code == 0, result.output
    assert f"saved the first {kept} layers ({with_parameters} with parameters)" in result.out, result.out
    assert ("the cfg has 24 layers, not 999" in result.out) == (asked == "999")
    full, cut = weights.read_bytes(), cfg.with_name("cut.weights").read_bytes()
    assert (cut[20:] == full[20:]) == (asked == "999")      # all 13 parameterised layers: the same payload


# -- detector train's log and charts ----------------------------------------------------------------------------

@pytest.mark.parametrize("victim", ["cfg file", "train list", "names file", "image"])
def test_train_log_or_chart_over_an_input_is_refused(tmp_path, monkeypatch, victim):
    """--log would append JSON lines to it, the chart replace it; the backups (resuming from _last.weights
    rewrites it, as Darknet) are not inputs in this sense."""
    from helpers.datasets import make_dataset, tiny_cfg
    data = make_dataset(tmp_path / "set", count=2, valid=1)
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(tiny_cfg(max_batches=1))
    monkeypatch.chdir(tmp_path)
    args = ["detector", "train", data, cfg, "--workers", "0", "--no-check"]
    if victim == "image":                       # a training picture in the working directory named chart.png
        shutil.copy(tmp_path / "set" / "JPEGImages" / "train" / "000.png", "chart.png")
        shutil.copy(tmp_path / "set" / "labels" / "train" / "000.txt", "chart.txt")
        (tmp_path / "set" / "train.txt").write_text(f"{tmp_path / 'chart.png'}\n")
        refused(args, Path("chart.png"), "detector train: chart 'chart.png' is the input image")
        return
    target = {"cfg file": cfg, "train list": tmp_path / "set" / "train.txt",
              "names file": tmp_path / "set" / "tiny.names"}[victim]
    refused([*args, "--log", target], target, f"detector train: --log '{target}' is the input {victim}")
    assert not (tmp_path / "set" / "backup").exists() or not any((tmp_path / "set" / "backup").iterdir())
