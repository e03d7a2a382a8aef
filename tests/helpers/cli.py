"""Run the `darknet_py` command line in-process, the way a user's shell would: the installed script's
`darknet_py.cli.main`, its exit status, its stdout and stderr (apart, and interleaved as a terminal shows them).

The one in-process runner of the tests. An error the command line does not turn into a message and a status
(with `--debug`, every DarknetError) reaches the test as the exception, as a shell would show its traceback."""
from __future__ import annotations

import sys
from typing import NamedTuple, Optional

from click.testing import CliRunner

from darknet_py.cli import main


class CliResult(NamedTuple):
    code: int
    out: str
    err: str
    output: str     # stdout and stderr in the order they were written, as a terminal shows them


def run_cli(*args, input: Optional[str] = None) -> CliResult:
    """`darknet_py ARGS` with ``input`` on stdin (an empty stdin without it)."""
    code = 0
    # click's isolation swaps sys.stdin/stdout/stderr for in-memory files for the length of the call
    with CliRunner().isolation(input=input) as (out, err, output):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:           # sys.exit(None) is status 0, sys.exit("text") status 1, as in a shell
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    return CliResult(code, *(stream.getvalue().decode() for stream in (out, err, output)))
