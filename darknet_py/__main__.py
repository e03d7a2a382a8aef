"""`python -m darknet_py` and the `darknet_py` script. Importing the commands (torch, OpenCV) takes a
second or two; a Ctrl-C or SIGTERM in that time ends with one line, not an import traceback."""
import signal

from .faults import pause_point
from .stopping import report_stop, stop_on_signal


def run() -> None:
    signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        pause_point("startup")
        from .cli import main
    except KeyboardInterrupt as exc:
        report_stop(exc)
    main()


if __name__ == "__main__":
    run()
