"""`.data` files (spec §1.4) and `.names` files.

Darknet opens every path in a `.data` file relative to the current directory. darknet_py does the same,
and when that fails it also tries the `.data` file's own directory; an error lists every path tried."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import DataFileError
from ..flavor import AB, Flavor, flavor_of
from .reader import Section, decode_text, read_sections

EVAL_FORMATS = ("voc", "coco", "imagenet")


@dataclass(frozen=True)
class DataConfig:
    file: str
    classes: int
    train: str
    valid: str
    names: str
    backup: str
    results: str
    eval: str
    map: Optional[str]
    difficult: Optional[str]
    saveweights: Optional[int]     # None: AB's default (1000 if max_batches < 10000 else 10000)
    savelast: int
    lines: dict = field(default_factory=dict, compare=False)   # key -> line number, for messages

    def resolve(self, key: str, must_exist: bool = True) -> Path:
        """The path stored under ``key``, resolved as Darknet would (cwd), else beside the `.data` file."""
        value = getattr(self, key)
        if value is None:
            raise DataFileError(f"'{key}' is not set", file=self.file)
        return resolve_path(value, self.file, self.lines.get(key), key, must_exist)

    def read_names(self) -> tuple[str, ...]:
        return read_names(self.resolve("names"))


def resolve_path(value: str, data_file: str, line: Optional[int], key: str, must_exist: bool = True) -> Path:
    candidates = [Path(value)]
    if not Path(value).is_absolute():
        candidates.append(Path(data_file).resolve().parent / value)
    for path in candidates:
        if path.exists():
            return path
    if not must_exist:
        return candidates[0]
    tried = ", ".join(str(p) for p in candidates)
    raise DataFileError(f"'{key}' file not found (tried {tried})", file=data_file, line=line, value=value)


def parse_data(path: str | Path, flavor: Flavor | str = AB) -> DataConfig:
    sections = read_sections(path, DataFileError, allow_headless=True)
    if len(sections) > 1:
        extra = sections[1]
        raise DataFileError("a .data file has no [sections]", file=str(path), line=extra.line,
                            value=f"[{extra.kind}]", hint="did you pass a .cfg where the .data file goes?")
    s = sections[0]
    names_key = "names" if s.has("names") or not s.has("labels") else "labels"
    config = DataConfig(
        file=str(path),
        classes=_classes(s),
        train=s.get_str("train", flavor_of(flavor).train_list_default),
        valid=s.get_str("valid", "data/train.list"),
        names=s.get_str(names_key, "data/names.list"),
        backup=s.get_str("backup", "/backup/"),
        results=s.get_str("results", "results"),
        eval=s.get_choice("eval", "voc", EVAL_FORMATS),
        map=s.get_str("map", "") or None,
        difficult=s.get_str("difficult", "") or None,
        saveweights=s.get_int("saveweights", 0) or None,
        savelast=s.get_int("savelast", 100),
        lines={o.key: o.line for o in s.options},
    )
    s.report_unused()
    return config


def _classes(section: Section) -> int:
    classes = section.get_int("classes", 2)
    if classes < 1:
        raise section.error("'classes' must be at least 1", section.option("classes"))
    return classes


def read_names(path: str | Path) -> tuple[str, ...]:
    """One class name per line (trailing CR/LF removed). Blank lines at the end are ignored."""
    path = str(path)
    names = read_lines(path, "names file")
    while names and names[-1] == "":
        names.pop()
    if not names:
        raise DataFileError("names file is empty", file=path)
    return tuple(names)


def read_lines(path: str | Path, what: str) -> list[str]:
    """The lines of a small text file named in a `.data` file (CR/LF removed); ``what`` names it in errors."""
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataFileError(f"{what} not found", file=path) from None
    except OSError as exc:
        raise DataFileError(f"cannot read {what}: {exc.strerror}", file=path) from None
    if b"\x00" in raw:
        raise DataFileError(f"looks like a binary file, not a {what}", file=path)
    return [line.rstrip("\r") for line in decode_text(raw).split("\n")]
