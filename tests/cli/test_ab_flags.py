"""AlexeyAB's detector flag grammar (detector.c `run_detector`, darknet.c `main`): every flag it reads is
accepted by every `detector` sub-command; the ones darknet_py does nothing with say so on one line each; an
unknown flag is one clear error naming it (not click's `No such option '-m'`)."""
from __future__ import annotations

import pytest

from darknet_py.commands.darknet_flags import DARKNET_FLAGS
from darknet_py.commands.detector import detector
from helpers.cli import run_cli
from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.http import free_port

# The flags AlexeyAB's run_detector and main look up (find_arg/find_int_arg/find_char_arg/find_float_arg),
# listed from its source, with the kind of value each takes.
AB_FLAGS = {
    "-dont_show": None, "-benchmark": None, "-benchmark_layers": None, "-show": None, "-letter_box": None,
    "-map": None, "-points": "0", "-show_imgs": None, "-mjpeg_port": "8090", "-avgframes": "3",
    "-dontdraw_bbox": None, "-json_port": "8070", "-http_post_host": "host", "-time_limit_sec": "10",
    "-out_filename": "out.avi", "-json_file_output": "out.json", "-out": "result", "-prefix": "p",
    "-thresh": ".3", "-iou_thresh": ".5", "-hier": ".5", "-c": "0", "-s": "0", "-num_of_clusters": "5",
    "-width": "416", "-height": "416", "-ext_output": None, "-save_labels": None, "-chart": "chart.png",
    "-mAP_epochs": "4", "-gpus": "0", "-clear": None, "-i": "0", "-cuda_debug_sync": None,
}


def test_table_lists_every_alexeyab_flag():
    assert {flag.name for flag in DARKNET_FLAGS} == set(AB_FLAGS)
    assert {flag.name: flag.type is None for flag in DARKNET_FLAGS} == {k: v is None for k, v in AB_FLAGS.items()}


@pytest.mark.parametrize("command", sorted(detector.commands))
def test_every_command_accepts_every_flag(command):
    defined = {opt for param in detector.commands[command].params for opt in getattr(param, "opts", ())}
    assert set(AB_FLAGS) <= defined


@pytest.mark.parametrize("command", ["valid", "recall", "map", "test"])
def test_ignored_flags_say_so_then_the_command_runs(tmp_path, command):
    """`-dont_show` on valid (the issue's example) and flags of other commands: one line each, then the
    command goes on to its own error about the missing data file."""
    missing = tmp_path / "missing.data"
    result = run_cli("detector", command, missing, "x.cfg", "x.weights", "-mjpeg_port", "8090",
                     "-num_of_clusters", "9", "-cuda_debug_sync")
    assert "ignored: -mjpeg_port (only detector train and demo serve HTTP streams)" in result.err
    assert "ignored: -num_of_clusters (only detector calc_anchors reads it)" in result.err
    assert "ignored: -cuda_debug_sync" in result.err
    assert result.code == 1 and "missing.data" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("flag", ["-silly", "-mjpeg", "-iou_thres", "-sx"])
def test_unknown_flag_is_one_clear_error(tmp_path, flag):
    result = run_cli("detector", "map", "a.data", "b.cfg", "c.weights", flag, "1")
    assert result.code == 1
    assert f"detector map has no flag {flag}" in result.err and "No such option" not in result.err


def test_train_accepts_the_remote_training_line(tmp_path, monkeypatch):
    """AlexeyAB README's `detector train DATA CFG -dont_show -mjpeg_port 8090 -map`, plus -show_imgs (aug_*.jpg
    pictures with the truth boxes), -i 0 (no CUDA here: the CPU, as a CPU build of Darknet) and -letter_box
    (AlexeyAB's train reads it from [net] only)."""
    make_dataset(tmp_path / "set", count=4, valid=2)
    data = write_tiny_data(tmp_path, tmp_path / "set")
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=2, batch=2, subdivisions=1))
    monkeypatch.chdir(tmp_path)
    port = free_port()
    result = run_cli("detector", "train", data, "tiny.cfg", "-dont_show", "-mjpeg_port", str(port),
                     "-show_imgs", "-letter_box", "-benchmark_layers", "--no-progress", "--workers", "0",
                     *(["-i", "0"] if not _cuda() else ["--device", "cpu"]))
    assert result.code == 0, result.err
    assert f"-mjpeg_port {port}: serving at http://127.0.0.1:{port}/" in result.out and "ignored: -mjpeg" not in result.err
    assert "ignored: -letter_box (AlexeyAB's train and valid read letter_box=1 from [net] only)" in result.err
    assert "ignored: -benchmark_layers (no per-layer timing)" in result.err
    if not _cuda():
        assert "ignored: -i 0 (torch sees no CUDA device" in result.err
    pictures = sorted(p.name for p in tmp_path.glob("aug_*.jpg"))
    assert len(pictures) == 4 and pictures[0].startswith("aug_1_0_")        # 2 iterations x batch 2
    assert "You use flag -show_imgs" in result.out


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


@pytest.mark.skipif(_cuda(), reason="checks the machine without CUDA devices")
def test_gpus_without_cuda_is_one_clear_error(tmp_path):
    result = run_cli("detector", "train", tmp_path / "a.data", "b.cfg", "-gpus", "0,1")
    assert result.code == 1
    assert "-gpus asks for CUDA devices but torch sees none" in result.err and "--device cpu" in result.err


def test_show_imgs_pictures_are_the_same_for_8bit_and_float_batches(tmp_path):
    """The OpenCV pipeline hands 8-bit batches to the trainer: -show_imgs must draw those pixels, not clip them
    as if they were floats in [0, 1]."""
    import cv2
    import numpy as np
    from darknet_py.train.augmented_images import save_augmented_batch
    pixels = np.random.default_rng(0).integers(0, 256, (1, 3, 24, 32), dtype=np.uint8)
    truth = np.zeros((1, 2, 5), np.float32)
    truth[0, 0] = [.5, .5, .25, .25, 1]
    as_bytes = save_augmented_batch(pixels, truth, ["a.jpg"], 1, tmp_path / "bytes")
    as_floats = save_augmented_batch(pixels.astype(np.float32) / 255, truth, ["a.jpg"], 1, tmp_path / "floats")
    assert np.array_equal(cv2.imread(str(as_bytes[0])), cv2.imread(str(as_floats[0])))
