"""`detector demo` on a small video this test makes with OpenCV: one output frame per input frame (same
count, size and fps), one AB JSON block per frame, and each frame's detections equal to `detector test` on
the same picture (the frame as decoded from the video, saved losslessly as PNG)."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from darknet_py.eval.demo import DemoSettings, run_demo
from darknet_py.network import load_network
from helpers.cli import run_cli
from helpers.datasets import write_data_file
from helpers.http import MultipartReader, free_port, http_get
from helpers.train_runs import finish, kill, start_paused, wait_for_pause
from helpers.paths import FIXTURES

EVAL = FIXTURES / "eval"
CFG = EVAL / "synth" / "cfg" / "tiny3.cfg"
WEIGHTS = EVAL / "tiny3" / "trained.weights"
VALID = EVAL / "synth" / "JPEGImages" / "valid"
FRAMES = ("00000", "00001", "00003", "00005", "00011")   # 00003 is rotated to the others' 160x120
FPS = 7.0


def decoded_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture
def video(tmp_path, monkeypatch) -> Path:
    """in.avi (MJPG, 160x120, 7 fps, 5 frames) and obj.data in the working directory."""
    monkeypatch.chdir(tmp_path)
    write_data_file(tmp_path / "obj.data", classes=3, names=EVAL / "synth" / "obj.names")
    path = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (160, 120))
    for name in FRAMES:
        picture = cv2.imread(str(VALID / f"{name}.jpg"))
        writer.write(picture if picture.shape[:2] == (120, 160) else cv2.rotate(picture, cv2.ROTATE_90_CLOCKWISE))
    writer.release()
    assert len(decoded_frames(path)) == len(FRAMES)
    return path


def test_demo_writes_every_frame_and_detects_as_test_does(video, tmp_path):
    result = run_cli("detector", "demo", "obj.data", CFG, WEIGHTS, video, "-out_filename", "out.avi",
                     "-json_file_output", "out.json", "-thresh", ".05", "-dont_show")
    assert result.code == 0, result
    inputs, outputs = decoded_frames(video), decoded_frames(tmp_path / "out.avi")
    assert len(outputs) == len(inputs) == len(FRAMES)
    assert all(o.shape == i.shape == (120, 160, 3) for i, o in zip(inputs, outputs))
    assert cv2.VideoCapture("out.avi").get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    text = Path("out.json").read_text()
    assert text.startswith("[\n{\n \"frame_id\":1, \n \"objects\": [ \n") and text.endswith("\n ] \n}\n]")
    frames = json.loads(text)
    assert [f["frame_id"] for f in frames] == [1, 2, 3, 4, 5]

    (tmp_path / "pictures").mkdir()
    for k, frame in enumerate(inputs):
        cv2.imwrite(str(tmp_path / "pictures" / f"{k}.png"), frame)
    # --batch 1: the demo runs one frame per forward; a batch of several agrees only to ~1e-6 (another
    # summation order), which %f can show.
    tested = run_cli("detector", "test", "obj.data", CFG, WEIGHTS, "pictures", "-out", "test.json",
                     "-thresh", ".05", "-dont_show", "--batch", "1", "--workers", "0")
    assert tested.code == 0, tested
    pictures = json.loads(Path("test.json").read_text())
    assert sum(len(f["objects"]) for f in frames) > 10
    assert [f["objects"] for f in frames] == [p["objects"] for p in pictures]
    # The boxes are drawn: somewhere a box's colour stands out from the (MJPG-noisy) picture beneath.
    k = max(range(len(frames)), key=lambda i: len(frames[i]["objects"]))
    assert np.abs(outputs[k].astype(int) - inputs[k].astype(int)).max() > 100


def test_ext_output_prints_each_frame(video):
    result = run_cli("detector", "demo", "obj.data", CFG, WEIGHTS, video, "-ext_output", "-thresh", ".05")
    assert result.code == 0, result
    assert [line for line in result.out.splitlines() if line.startswith("Frame ")] == \
        [f"Frame {k}:" for k in range(1, len(FRAMES) + 1)]
    assert "(left_x:" in result.out


class _StoppedCapture:
    """A stream that is interrupted (Ctrl-C) while its third frame is read."""

    def __init__(self, frame: np.ndarray):
        self.frame, self.reads = frame, 0

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: FPS, cv2.CAP_PROP_FRAME_COUNT: 10}.get(prop, 0)

    def read(self):
        self.reads += 1
        if self.reads == 3:
            raise KeyboardInterrupt
        return True, self.frame


def test_an_interrupted_demo_leaves_valid_files(tmp_path):
    network = load_network(str(CFG), str(WEIGHTS), batch=1)
    settings = DemoSettings(("rect", "ellipse", "triangle"), .05, .45, False, False)
    frame = cv2.imread(str(VALID / "00000.jpg"))
    with pytest.raises(KeyboardInterrupt):
        run_demo(network, _StoppedCapture(frame), settings, str(tmp_path / "o.avi"), str(tmp_path / "o.json"))
    assert [f["frame_id"] for f in json.loads((tmp_path / "o.json").read_text())] == [1, 2]
    assert len(decoded_frames(tmp_path / "o.avi")) == 2


@pytest.mark.parametrize("make,needle", [(lambda d: d / "gone.mp4", "video file not found"),
                                         (lambda d: d / "obj.data", "cannot open the video")])
def test_bad_video_is_one_clear_error(video, tmp_path, make, needle):
    source = make(tmp_path)
    result = run_cli("detector", "demo", "obj.data", CFG, WEIGHTS, source, "-json_file_output", "o.json")
    assert result.code == 1 and "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("darknet_py: error: ")]
    assert errors == [f"darknet_py: error: {source}: {needle}" + errors[0].split(needle, 1)[1]]
    assert not Path("o.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_demo_device_cuda_without_cuda(video):
    result = run_cli("detector", "demo", "obj.data", CFG, WEIGHTS, video, "--device", "cuda")
    assert result.code == 1 and "--device asks for CUDA but torch sees no CUDA device" in result.err


def test_json_port_and_mjpeg_port_stream_every_frame(video, tmp_path):
    """AB's `-json_port`: a client connected before the first frame receives one JSON array with one block per
    frame, exactly the text of `-json_file_output`; `-mjpeg_port`: the drawn frames, at the video's size. The
    demo is parked (a test pause point) once its servers listen, so the clients are in before any frame."""
    json_port, mjpeg_port = free_port(), free_port()
    command = [sys.executable, "-m", "darknet_py", "detector", "demo", "obj.data", str(CFG), str(WEIGHTS), str(video),
               "-json_file_output", "out.json", "-thresh", ".05", "-json_port", str(json_port),
               "-mjpeg_port", str(mjpeg_port)]
    process = start_paused(command, "demo-start", subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_for_pause(process)
        json_client, mjpeg_client = http_get(json_port, "/", 120), http_get(mjpeg_port, "/", 120)
        head = b""
        while not head.endswith(b"\r\n\r\n[\n"):                       # in the stream: gets every block
            head += json_client.recv(1)
        assert b"200 OK" in head and b"Content-Type: application/json" in head
        mjpeg = MultipartReader(mjpeg_client)
        err = finish(process)
        assert process.returncode == 0, err
        streamed = b"[\n"
        while chunk := json_client.recv(65536):
            streamed += chunk
        pictures = []
        with contextlib.suppress(EOFError):
            while True:
                pictures.append(cv2.imdecode(np.frombuffer(mjpeg.next_jpeg(), np.uint8), cv2.IMREAD_COLOR))
        json_client.close()
        mjpeg_client.close()
    finally:
        kill(process)
    assert streamed.decode() == (tmp_path / "out.json").read_text()
    assert len(json.loads(streamed)) == len(FRAMES)
    assert 1 <= len(pictures) <= len(FRAMES) and all(p.shape == (120, 160, 3) for p in pictures)
