"""The project's error types: every bad input becomes one of these, carrying file, line and value; and its
warnings, about input Darknet tolerates but a user probably did not mean.

The CLI prints ``str(error)`` (one line, plus a hint) and exits non-zero; ``--debug`` shows the traceback.
A warning is printed as ``warning: <message>`` and the command goes on.
"""
from __future__ import annotations

import warnings
from typing import Optional


def location(file: Optional[str], line: Optional[int] = None) -> str:
    """``file:line: `` (or ``file: ``, or nothing): where an error or warning message starts."""
    if file is None:
        return ""
    return str(file) + (f":{line}" if line is not None else "") + ": "


class DarknetError(Exception):
    """Base of every error darknet_py raises on purpose about a user's input."""

    def __init__(self, message: str, file: Optional[str] = None, line: Optional[int] = None,
                 value: Optional[str] = None, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.value = value
        self.hint = hint

    def __reduce__(self):
        # keep file/line/value/hint when an error crosses a process boundary (a loader worker's result)
        return type(self), (self.message, self.file, self.line, self.value, self.hint)

    def __str__(self) -> str:
        text = location(self.file, self.line) + self.message
        if self.value is not None:
            text += f" (value: {self.value!r})"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class CfgError(DarknetError):
    """A .cfg file that Darknet would refuse or misread."""


class DataFileError(DarknetError):
    """A .data or .names file, or a list file it names."""


class WeightsError(DarknetError):
    """A .weights or .pt file that does not fit its cfg."""


class LabelError(DarknetError):
    """A label file (class x y w h) that cannot be used."""


class ImageError(DarknetError):
    """An image that cannot be read."""


class UsageError(DarknetError):
    """A command-line flag or argument that makes no sense."""


class TrainingError(DarknetError):
    """Training cannot go on (non-finite loss, nothing to train on, ...)."""


class ExportError(DarknetError):
    """A network that cannot be exported (ONNX) as asked."""


class DarknetWarning(UserWarning):
    """Something Darknet tolerates but a user probably did not mean (unused key, inline comment...)."""


def warn(message: str, file: Optional[str] = None, line: Optional[int] = None) -> None:
    """Warn about a user's input, the message starting with ``file:line:`` when given."""
    # stacklevel 3: the warning is attributed to the caller of the function that found the problem
    warnings.warn(location(file, line) + message, DarknetWarning, stacklevel=3)
