"""Darknet's line grammar shared by `.cfg` and `.data` files (spec §1.1).

Every space, tab, CR and LF anywhere in a line is deleted; a line starting with `#` or `;` is a comment;
`[name]` opens a section; anything else is `key=value`. Values are looked up through typed getters of
:class:`Section`, which remember which keys were used so the rest can be reported as unused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, TypeVar

from ..errors import CfgError, DarknetError, warn

T = TypeVar("T")

_INT = re.compile(r"[+-]?\d+")
_WHITESPACE = str.maketrans("", "", " \t\r\n")


@dataclass
class Option:
    key: str
    value: Optional[str]  # None: a line without '=' (Darknet treats the key as absent)
    line: int
    text: str
    used: bool = False


@dataclass
class Section:
    """One `[kind]` block with its options in file order."""

    kind: str
    file: str
    line: int
    options: list[Option] = field(default_factory=list)
    error_type: type[DarknetError] = CfgError

    # -- lookup ---------------------------------------------------------------------------------
    def _find(self, key: str) -> Optional[Option]:
        found = None
        for opt in self.options:
            if opt.key == key:
                opt.used = True  # duplicates are "used" too: first wins (PJ/AB), the rest warned at parse
                if found is None:
                    found = opt
        if found is not None and found.value is None:
            return None
        return found

    def has(self, key: str) -> bool:
        return self._find(key) is not None

    def error(self, message: str, opt: Optional[Option] = None, hint: Optional[str] = None) -> DarknetError:
        line = self.line if opt is None else opt.line
        value = None if opt is None else opt.value
        prefix = f"[{self.kind}] " if self.kind else ""
        return self.error_type(prefix + message, file=self.file, line=line, value=value, hint=hint)

    def _typed(self, key: str, default: T, convert: Callable[[str], T], what: str) -> T:
        opt = self._find(key)
        if opt is None:
            return default
        text = _strip_inline_comment(opt, self)
        try:
            return convert(text)
        except (ValueError, OverflowError):
            raise self.error(f"'{key}' must be {what}", opt) from None

    # -- typed getters ----------------------------------------------------------------------------
    def get_int(self, key: str, default: int) -> int:
        """An integer. A decimal such as `1.5` is read as Darknet's atoi reads it (leading digits: 1), with a
        warning; anything that is not a number is an error."""
        opt = self._find(key)
        if opt is None:
            return default
        text = _strip_inline_comment(opt, self)
        if _INT.fullmatch(text):
            return int(text)
        try:
            _parse_float(text)
        except (ValueError, OverflowError):
            raise self.error(f"'{key}' must be an integer", opt) from None
        value = _atoi(text)
        warn(f"'{key}={text}' is not an integer; read as {value}, as Darknet's atoi does", self.file, opt.line)
        return value

    def get_float(self, key: str, default: float) -> float:
        return self._typed(key, default, _parse_float, "a number")

    def get_bool(self, key: str, default: bool) -> bool:
        return self.get_int(key, int(default)) != 0

    def get_str(self, key: str, default: str) -> str:
        opt = self._find(key)
        if opt is None:
            return default
        return _strip_inline_comment(opt, self)

    def get_ints(self, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
        return self._typed(key, default, lambda s: _parse_list(s, _parse_int), "a comma list of integers")

    def get_floats(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        return self._typed(key, default, lambda s: _parse_list(s, _parse_float), "a comma list of numbers")

    def get_choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        opt = self._find(key)
        if opt is None:
            return default
        value = _strip_inline_comment(opt, self)
        if value not in choices:
            raise self.error(f"'{key}' must be one of {', '.join(choices)}", opt)
        return value

    def option(self, key: str) -> Optional[Option]:
        """The raw option (for error messages that need its line)."""
        return self._find(key)

    def report_unused(self) -> None:
        for opt in self.options:
            if not opt.used:
                where = f"[{self.kind}]" if self.kind else Path(self.file).name
                warn(f"unused field in {where}: '{opt.text}'", self.file, opt.line)


def _strip_inline_comment(opt: Option, section: Section) -> str:
    value = opt.value or ""
    for mark in ("#", ";"):
        if mark in value:
            value = value.split(mark, 1)[0]
            warn(f"inline comment after '{opt.key}' ignored (Darknet has no inline comments; it reads the "
                 f"leading number only)", section.file, opt.line)
    return value


def _parse_int(text: str) -> int:
    if not _INT.fullmatch(text):
        raise ValueError(text)
    return int(text)


def _atoi(text: str) -> int:
    """C `atoi`: the leading integer, 0 when there is none."""
    match = _INT.match(text)
    return int(match.group()) if match else 0


def _parse_float(text: str) -> float:
    value = float(text)
    if value != value:  # NaN in a cfg is never meant
        raise ValueError(text)
    return value


def _parse_list(text: str, convert: Callable[[str], T]) -> tuple[T, ...]:
    parts = text.split(",")
    if parts and parts[-1] == "":  # a trailing comma adds no element worth reading
        parts = parts[:-1]
    if not parts:
        raise ValueError(text)
    return tuple(convert(p) for p in parts)


def read_sections(path: str | Path, error_type: type[DarknetError] = CfgError,
                  allow_headless: bool = False) -> list[Section]:
    """Split a file into sections by Darknet's grammar. With ``allow_headless`` (``.data`` files) the
    options before any section go into a section of kind ``""``."""
    return split_sections(read_file(path, error_type), str(path), error_type, allow_headless)


def read_file(path: str | Path, error_type: type[DarknetError] = CfgError) -> bytes:
    """A text input's bytes; a missing, unreadable or binary file is an ``error_type`` naming it."""
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise error_type("file not found", file=path) from None
    except IsADirectoryError:
        raise error_type("is a directory, not a file", file=path) from None
    except OSError as exc:
        raise error_type(f"cannot read file: {exc.strerror}", file=path) from None
    if b"\x00" in raw:
        raise error_type("looks like a binary file, not a text file", file=path,
                         hint="check the argument order: DATA CFG WEIGHTS")
    return raw


def split_sections(raw: bytes, path: str, error_type: type[DarknetError] = CfgError,
                   allow_headless: bool = False) -> list[Section]:
    """:func:`read_sections` on bytes already read (a `.cfg` keeps them as its text too)."""
    text = decode_text(raw)
    sections: list[Section] = []
    current: Optional[Section] = Section("", path, 0, error_type=error_type) if allow_headless else None
    if current is not None:
        sections.append(current)
    for number, physical in enumerate(text.split("\n"), start=1):
        line = physical.translate(_WHITESPACE)
        if not line or line[0] in "#;":
            continue
        if allow_headless:
            _warn_inner_spaces(physical, path, number)
        if line[0] == "[":
            if not line.endswith("]"):
                raise error_type("section header must end with ']'", file=path, line=number, value=line)
            current = Section(line[1:-1], path, number, error_type=error_type)
            sections.append(current)
            continue
        if current is None:
            raise error_type("option before the first section", file=path, line=number, value=line,
                             hint="a cfg must start with [net]")
        _add_option(current, line, number)
    return sections


def decode_text(raw: bytes) -> str:
    """A text input's bytes as str; a UTF-8 byte order mark (Windows editors write one) is dropped, where
    Darknet would make it part of the first key, class name or path."""
    return raw.decode("utf-8", errors="replace").removeprefix("\ufeff")


def _warn_inner_spaces(physical: str, path: str, number: int) -> None:
    """Darknet deletes every space of a `.data` line, so `train = my data/train.txt` opens
    `mydata/train.txt`; darknet_py does the same, but says so."""
    key, _, value = physical.partition("=")
    if any(c in value.strip(" \t\r") for c in " \t") or any(c in key.strip(" \t\r") for c in " \t"):
        warn(f"spaces inside '{physical.strip()}' are removed, as Darknet does: the value is "
             f"'{physical.translate(_WHITESPACE).partition('=')[2]}'", path, number)


def _add_option(section: Section, line: str, number: int) -> None:
    key, eq, value = line.partition("=")
    if not eq:
        warn(f"'{line}' has no '=': ignored (Darknet treats the key as absent)", section.file, number)
        section.options.append(Option(key, None, number, line, used=True))
        return
    if value == "":
        warn(f"'{line}' has an empty value: ignored", section.file, number)
        return
    for opt in section.options:
        if opt.key == key and opt.value is not None:
            warn(f"duplicate key '{key}' in [{section.kind}]: the first value (line {opt.line}) is used, as in "
                 f"Darknet", section.file, number)
            section.options.append(Option(key, value, number, line, used=True))
            return
    section.options.append(Option(key, value, number, line))
