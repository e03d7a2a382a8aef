"""Test-only pause points: a test parks a darknet_py process at a named moment (during start-up, while a
backup is being written, at the end of a training iteration) and then signals or kills it there, with no race
against a clock.

``DARKNET_PY_TEST_PAUSE=<point>[:<text>]`` makes the process, each time it reaches ``<point>`` (with
``<text>`` in the point's detail, e.g. the file being written), print ``darknet_py: test pause at <point>
(pid <pid>)`` on stderr and read its stdin up to the end of one line (or end of file). The test reads stderr up to that
line (the process is now parked exactly there), acts, then writes a newline (go on to the next pause) or
closes stdin. Unset, a pause point costs one environment lookup."""
from __future__ import annotations

import os
import sys

PAUSE_VARIABLE = "DARKNET_PY_TEST_PAUSE"
PAUSE_MESSAGE = "darknet_py: test pause at "


def pause_point(point: str, detail: str = "") -> None:
    wanted = os.environ.get(PAUSE_VARIABLE)
    if not wanted:
        return
    name, _, text = wanted.partition(":")
    if name != point or text not in detail:
        return
    print(f"{PAUSE_MESSAGE}{point} (pid {os.getpid()})", file=sys.stderr, flush=True)
    sys.stdin.buffer.readline()
