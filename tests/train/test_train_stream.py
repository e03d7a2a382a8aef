"""`detector train -mjpeg_port P` (AlexeyAB's live chart), met as a person meets it: a plain HTTP client on the
MJPEG stream, OpenCV's `VideoCapture("http://127.0.0.1:P/")`, `/status.json`, `/chart.png` and a headless
Chromium screenshot of the page. The run is parked after every iteration (a test pause point), so nothing
waits on a clock: each released iteration publishes exactly one frame.

A port in use is one warning and training goes on; a client that never reads and one that leaves mid-frame
never stop the run, and a stop by SIGINT still exits 130 with the server gone."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from darknet_py.train.chart import SIZE
from helpers.datasets import make_dataset, tiny_cfg, write_tiny_data
from helpers.http import MultipartReader, free_port, http_get
from helpers.train_runs import finish, kill, release, run_train, start_paused, train_command, wait_for_pause

EVERY_ITERATION = "iteration:iteration="
TIMEOUT = 120.0                         # generous bound on any one wait; never reached when things work


def _training_set(tmp_path: Path, max_batches: int) -> tuple[str, str]:
    make_dataset(tmp_path / "set", count=4, valid=2)
    data = write_tiny_data(tmp_path, tmp_path / "set")
    (tmp_path / "tiny.cfg").write_text(tiny_cfg(max_batches=max_batches, batch=2, subdivisions=1))
    return str(data), "tiny.cfg"


def _get(port: int, path: str) -> tuple[str, bytes]:
    with http_get(port, path, TIMEOUT) as sock:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), body


def _status(port: int) -> dict:
    head, body = _get(port, "/status.json")
    assert "200 OK" in head and "application/json" in head
    return json.loads(body)


def _step(process: subprocess.Popen) -> None:
    """Let the parked run train one more iteration and park again."""
    release(process)
    wait_for_pause(process)


def _decoded(jpeg: bytes) -> np.ndarray:
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    return picture


def _distinct(pictures: list[np.ndarray]) -> int:
    return len({p.tobytes() for p in pictures})


def test_live_chart_stream(tmp_path, chromium):
    data, cfg = _training_set(tmp_path, max_batches=40)
    port = free_port()
    with open(tmp_path / "stdout.txt", "w") as out:
        process = start_paused(train_command(data, cfg, "-mjpeg_port", port), EVERY_ITERATION, out, cwd=tmp_path)
    try:
        wait_for_pause(process)                                   # iteration 1 trained and published
        assert _status(port)["iteration"] == 1

        # a plain HTTP client reads the multipart stream: the current frame, then one per iteration
        with http_get(port, "/", TIMEOUT) as sock:
            reader = MultipartReader(sock)
            assert "multipart/x-mixed-replace; boundary=mjpegstream" in reader.headers
            frames = [_decoded(reader.next_jpeg())]
            for _ in range(3):
                _step(process)
                frames.append(_decoded(reader.next_jpeg()))
        assert all(f.shape == (SIZE[1], SIZE[0], 3) for f in frames)
        assert _distinct(frames) >= 3
        status = _status(port)
        assert status["iteration"] == 4 and status["images"] == 8 and status["avg_loss"] > 0
        assert set(status) >= {"loss", "rate", "map", "best_map", "hours_left"}

        # OpenCV's VideoCapture on the URL, in a thread while the run trains one iteration at a time
        captured = []
        reader_thread = threading.Thread(target=_capture, args=(f"http://127.0.0.1:{port}/", captured))
        reader_thread.start()
        while reader_thread.is_alive() and _status(port)["iteration"] < 30:
            _step(process)
        reader_thread.join(TIMEOUT)
        assert not reader_thread.is_alive() and len(captured) == 3, captured
        assert all(f.shape == (SIZE[1], SIZE[0], 3) for f in captured) and _distinct(captured) >= 3
        assert _status(port)["iteration"] > 4

        # the page in a browser is the chart: /chart.png of the same (parked) iteration
        head, png = _get(port, "/chart.png")
        assert "image/png" in head
        chart = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        shot = _chromium_screenshot(chromium, f"http://127.0.0.1:{port}/", tmp_path / "page.png")
        assert shot.shape == chart.shape and shot.std() > 20                 # not blank
        assert np.abs(shot.astype(int) - chart.astype(int)).mean() < 4       # the chart (JPEG-coded)

        # a client that never reads and one that leaves mid-frame: the run still stops on SIGINT as always
        idle = http_get(port, "/", TIMEOUT)
        leaving = http_get(port, "/", TIMEOUT)
        leaving.recv(100)
        leaving.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        leaving.close()                                                       # reset mid-frame
        _step(process)
        process.send_signal(signal.SIGINT)
        err = finish(process)
        idle.close()
        assert process.returncode == 128 + signal.SIGINT, err
        with pytest.raises(OSError):                                          # the server is gone
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        kill(process)


def _capture(url: str, captured: list) -> None:
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(TIMEOUT * 1000), cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(TIMEOUT * 1000)]
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    try:
        while capture.isOpened() and len(captured) < 3:
            ok, frame = capture.read()
            if not ok:
                return
            if not captured or not np.array_equal(frame, captured[-1]):
                captured.append(frame)
    finally:
        capture.release()


def _chromium_screenshot(browser: str, url: str, path: Path) -> np.ndarray:
    """Chromium's own picture of the page. The multipart stream never finishes loading, so Chromium takes the
    screenshot when its load timeout ends (it prints 'Page load timed out', exit status 0)."""
    result = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             f"--window-size={SIZE[0]},{SIZE[1]}", "--timeout=5000", f"--screenshot={path}", url],
                            capture_output=True, text=True, timeout=TIMEOUT)
    shot = cv2.imread(str(path))
    assert shot is not None, result.stderr[-2000:]
    return shot


def test_port_in_use_is_one_warning_and_training_goes_on(tmp_path):
    data, cfg = _training_set(tmp_path, max_batches=2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_train(tmp_path, data, cfg, "-mjpeg_port", port)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(f"-mjpeg_port {port}: cannot listen on 127.0.0.1:{port}") == 1
    assert (tmp_path / "backup" / "tiny_final.weights").is_file()
