"""`darknet_py` command line: Darknet's commands and flags (`-thresh .25`, `-ext_output`...).

Every :class:`~darknet_py.errors.DarknetError` (and an OSError about a file, e.g. a backup directory that
cannot be created) becomes one message and exit status 1; `--debug` shows the traceback instead."""
from __future__ import annotations

import signal
import sys
import threading
import warnings

import click

from . import __version__
from .commands.cfg import cfg
from .commands.convert import convert, partial
from .commands.dataset import dataset
from .commands.detector import detector
from .commands.export import export
from .device import passive_waiting_threads
from .errors import DarknetError
from .stopping import report_stop, stop_on_signal


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(__version__, "--version", prog_name="darknet_py", message="%(prog)s %(version)s")
def cli(debug: bool) -> None:
    """Darknet's detector commands, in PyTorch."""
    # --debug is declared here for --help; main() reads it from argv, before click parses anything, so that
    # it also covers errors raised while the command line itself is read


cli.add_command(detector)
cli.add_command(convert)
cli.add_command(partial)
cli.add_command(export)
cli.add_command(dataset)
cli.add_command(cfg)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv=None) -> None:
    passive_waiting_threads()       # before any command imports torch
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop_on_signal) if main_thread else None
    try:
        _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv) -> None:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    try:
        cli.main(args=argv, prog_name="darknet_py", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):     # click turns a signal's KeyboardInterrupt into Abort
            report_stop(exc.__cause__)
        print("Aborted.", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DarknetError as exc:
        if debug:
            raise
        print(f"darknet_py: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:   # an output path the system refuses (backup/results directory, --log, -out)
        if debug:
            raise
        error = DarknetError(exc.strerror or str(exc), file=exc.filename)
        print(f"darknet_py: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:      # a signal before training's own handlers, or a second one
        report_stop(exc)
    except MemoryError:
        if debug:
            raise
        print("darknet_py: error: out of memory (lower width/height or the batch in [net], or raise `ulimit -v`)",
              file=sys.stderr)
        sys.exit(1)
