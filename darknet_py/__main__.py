"""`python -m darknet_py` and the `darknet_py` script. Importing the commands (torch, OpenCV) takes a
second or two; a Ctrl-C or SIGTERM in that time ends with one line, not an import traceback. How the
process loads torch and ends after a command has succeeded: :mod:`.process`."""
import signal

from .faults import pause_point
from .process import end_successful_process, freeze_after_loading
from .stopping import report_stop, stop_on_signal


def run() -> None:
    signal.signal(signal.SIGTERM, stop_on_signal)
    freeze_after_loading("torch")
    try:
        pause_point("startup")
        from .cli import main
    except KeyboardInterrupt as exc:
        report_stop(exc)
    main()
    end_successful_process()


if __name__ == "__main__":
    run()
