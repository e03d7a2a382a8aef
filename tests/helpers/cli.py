"""Run the `darknet_py` command line in-process, the way a user's shell would (exit status, stdout, stderr)."""
from __future__ import annotations

from typing import NamedTuple

from darknet_py.cli import main


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


def run_cli(capsys, *args: str) -> CliResult:
    capsys.readouterr()  # drop anything printed before
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)
