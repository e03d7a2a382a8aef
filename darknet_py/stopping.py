"""How a stop by signal ends a command: one line on stderr and exit status 128 + the signal number (130 for
Ctrl-C, 143 for SIGTERM), the convention shells and schedulers read as "killed, not finished". Training
has its own handlers (finish the iteration, save `_last`); these cover start-up, evaluation, and a second
signal during training."""
from __future__ import annotations

import signal
import sys
from typing import NoReturn


def stop_on_signal(signum, frame) -> None:
    """A SIGTERM handler that stops like Ctrl-C does (KeyboardInterrupt carrying the signal's name)."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def exit_status(name: str) -> int:
    return 128 + signal.Signals[name].value


def report_stop(exc: KeyboardInterrupt) -> NoReturn:
    name = exc.args[0] if exc.args and exc.args[0] in signal.Signals.__members__ else "SIGINT"
    print(f"darknet_py: error: stopped by {name}", file=sys.stderr, flush=True)
    sys.exit(exit_status(name))
