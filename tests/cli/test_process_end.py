"""How the `darknet_py` process loads torch and ends (darknet_py/process.py, issue 22): torch loads with the
garbage collector paused and is frozen afterwards; a successful command ends without the interpreter's
tear-down, but only after what a normal exit does that keeps data (other threads finished, atexit handlers,
stdout flushed). Each case runs in a fresh interpreter."""
from __future__ import annotations

import json
import subprocess
import sys

from helpers.paths import FIXTURES

COLLECTIONS_DURING_IMPORT = """
import gc, json, sys
if sys.argv[1] == "frozen":
    from darknet_py.process import freeze_after_loading
    freeze_after_loading("torch")
started = []
gc.callbacks.append(lambda phase, info: started.append(info["generation"]) if phase == "start" else None)
import torch
gc.callbacks.clear()
print(json.dumps({"collections": len(started), "frozen": gc.get_freeze_count(), "enabled": gc.isenabled(),
                  "sum": float(torch.ones(3).sum()), "file": torch.__file__}))
"""


def import_torch(mode: str) -> dict:
    run = subprocess.run([sys.executable, "-c", COLLECTIONS_DURING_IMPORT, mode], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_torch_loads_with_the_collector_paused_and_is_frozen():
    plain, frozen = import_torch("plain"), import_torch("frozen")
    assert plain["collections"] > 0 and plain["frozen"] == 0          # what the pause saves: it does collect
    assert frozen["collections"] == 0 and frozen["frozen"] > 100_000
    assert frozen["enabled"] and frozen["sum"] == 3.0 and frozen["file"] == plain["file"]


# the darknet_py entry point, with an atexit handler; what follows run() is reached only when the process was
# left to end the usual way
ENTRY_POINT = """
import atexit, sys, threading

atexit.register(lambda: sys.stdout.write("atexit handler ran\\n"))
if sys.argv[1] == "thread":         # a thread still working when the command returns: it ends only once the
    # main thread has (Python marks it done when its shutdown starts), so no clock decides the order
    threading.Thread(target=lambda: (threading.main_thread().join(), print("thread finished"))).start()
sys.argv = ["darknet_py", *sys.argv[2:]]
from darknet_py.__main__ import run
run()
sys.stderr.write("run() returned\\n")
"""


def entry_point(*argv: str, thread: bool = False, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", ENTRY_POINT, "thread" if thread else "-", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_a_successful_command_ends_without_the_tear_down():
    run = entry_point("--version")
    # stdout is a pipe (block-buffered): flushed; atexit handlers ran; the process ended in run()
    assert (run.returncode, run.stdout, run.stderr) == (0, "darknet_py 0.1.0\natexit handler ran\n", "")


def test_a_failed_command_exits_as_python_does():
    run = entry_point("detector", "test", "none.data", "none.cfg", "none.weights")
    assert run.returncode == 1 and run.stderr.startswith("darknet_py: error: ")
    assert run.stdout == "atexit handler ran\n"


def test_a_running_thread_is_waited_for():
    run = entry_point("--version", thread=True)
    assert run.returncode == 0 and run.stdout == "darknet_py 0.1.0\nthread finished\natexit handler ran\n"
    assert run.stderr == "run() returned\n"


def test_detector_test_writes_everything_before_it_ends(tmp_path):
    """A whole `detector test` process: its printout through a pipe and its picture equal those of the same
    command run in a process that ends the usual way."""
    data = tmp_path / "obj.data"
    data.write_text(f"classes=3\nnames={FIXTURES / 'eval' / 'synth' / 'obj.names'}\n")
    image = FIXTURES / "eval" / "synth" / "JPEGImages" / "valid" / "00003.jpg"
    argv = ["detector", "test", str(data), str(FIXTURES / "eval" / "synth" / "cfg" / "tiny3.cfg"),
            str(FIXTURES / "eval" / "tiny3" / "trained.weights"), str(image), "-dont_show", "-ext_output",
            "-thresh", "0.05"]
    results = {}
    for how in ("entry point", "usual end"):
        folder = tmp_path / how.replace(" ", "_")
        folder.mkdir()
        if how == "entry point":
            run = entry_point(*argv, cwd=folder)
        else:
            run = subprocess.run([sys.executable, "-c", "import sys\nfrom darknet_py.cli import main\n"
                                  "main(sys.argv[1:])", *argv], cwd=folder, capture_output=True, text=True,
                                 timeout=300)
        assert run.returncode == 0, run.stderr
        results[how] = (run.stdout.replace("atexit handler ran\n", ""), (folder / "predictions.jpg").read_bytes(),
                        "run() returned" in run.stderr)
    assert results["entry point"][2] is False
    lines = [line for line in results["entry point"][0].splitlines() if "Predicted in" not in line]
    assert len(lines) > 1 and "%" in lines[-1]                # detections printed, up to the last
    assert lines == [line for line in results["usual end"][0].splitlines() if "Predicted in" not in line]
    assert results["entry point"][1] == results["usual end"][1]
