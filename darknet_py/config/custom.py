"""`cfg custom`: AlexeyAB's README rules for training a detection cfg on N classes, applied by editing lines
of the original text. Comments, blank lines and every line not named below stay byte for byte, so the
result diffs cleanly against its base:

* `classes=N` in every `[yolo]`, `[Gaussian_yolo]` and `[region]`;
* `filters` of the `[convolutional]` feeding each: `(N + 5) * len(mask)` (`[yolo]`), `(N + 9) * len(mask)`
  (`[Gaussian_yolo]`), `num * (N + coords + 1)` (`[region]`);
* `[net]` `width`/`height`/`batch`/`subdivisions` when given; `max_batches` given, or
  `max(2000 * N, training images, 6000)`; `steps` at 80 % and 90 % of it;
* `anchors` from a function computing them (the command runs `calc_anchors`), per layer anchor count.

A key the section lacks is added after its last option."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import CfgError, UsageError
from .reader import Section, split_sections

HEADS = ("yolo", "Gaussian_yolo", "region")
MIN_MAX_BATCHES = 6000
BATCHES_PER_CLASS = 2000
_ASSIGNMENT = re.compile(rb"^(\s*[^=]*?\s*=\s*)(.*?)(\s*)$", re.S)


@dataclass(frozen=True)
class CustomOptions:
    classes: int
    width: Optional[int] = None
    height: Optional[int] = None
    batch: Optional[int] = None
    subdivisions: Optional[int] = None
    max_batches: Optional[int] = None
    train_images: Optional[int] = None     # the DATA's train list length, for the max_batches rule
    anchors: Optional[Callable[[int, int, int], str]] = None   # (count, width, height) -> "w,h, w,h, ..."


@dataclass(frozen=True)
class LineChange:
    line: int              # in the written cfg
    old: Optional[str]     # None: an added line
    new: str


@dataclass
class _Edits:
    values: dict[int, bytes] = field(default_factory=dict)                  # base line -> new value
    added: dict[int, list[bytes]] = field(default_factory=dict)              # after base line -> new lines

    def set(self, section: Section, key: str, value) -> None:
        value = str(value).encode()
        option = next((o for o in section.options if o.key == key and o.value is not None), None)
        if option is not None:
            self.values[option.line] = value
            return
        after = max([section.line] + [o.line for o in section.options])
        self.added.setdefault(after, []).append(key.encode() + b"=" + value)


def custom_cfg(raw: bytes, path: str, opts: CustomOptions) -> tuple[bytes, list[LineChange], list[str]]:
    """(the new cfg's bytes, its changed lines, notes on the rules applied)."""
    if opts.classes < 1:
        raise UsageError("--classes must be at least 1", value=str(opts.classes))
    sections = split_sections(raw, path)
    if not sections or sections[0].kind not in ("net", "network"):
        raise CfgError("the first section must be [net]", file=path)
    net, edits, notes = sections[0], _Edits(), []
    width, height = _net_size(net, opts, edits, notes)
    _net_batches(net, opts, edits, notes)
    heads = [k for k, s in enumerate(sections) if s.kind in HEADS]
    if not heads:
        raise CfgError("no [yolo], [Gaussian_yolo] or [region] section: not a detection cfg", file=path)
    for k in heads:
        _head(sections[k], sections[k - 1], opts, width, height, edits, notes)
    text, changes = _apply(raw, edits)
    return text, changes, notes


def _net_size(net: Section, opts: CustomOptions, edits: _Edits, notes: list[str]) -> tuple[int, int]:
    for key in ("width", "height"):
        value = getattr(opts, key)
        if value is not None:
            if value % 32:
                notes.append(f"{key}={value} is not a multiple of 32 (AlexeyAB's README asks for one)")
            edits.set(net, key, value)
    return (opts.width or net.get_int("width", 416), opts.height or net.get_int("height", 416))


def _net_batches(net: Section, opts: CustomOptions, edits: _Edits, notes: list[str]) -> None:
    for key in ("batch", "subdivisions"):
        if getattr(opts, key) is not None:
            edits.set(net, key, getattr(opts, key))
    max_batches, rule = max_batches_rule(opts)
    notes.append(rule)
    edits.set(net, "max_batches", max_batches)
    if net.get_str("policy", "constant") == "steps" or net.has("steps"):
        edits.set(net, "steps", f"{int(max_batches * 0.8)},{int(max_batches * 0.9)}")
        scales = net.get_str("scales", "")
        if len([s for s in scales.split(",") if s]) != 2:
            edits.set(net, "scales", ".1,.1")


def max_batches_rule(opts: CustomOptions) -> tuple[int, str]:
    """(max_batches, the rule that gave it, in words)."""
    if opts.max_batches is not None:
        return opts.max_batches, f"max_batches={opts.max_batches} (--max-batches)"
    per_class = BATCHES_PER_CLASS * opts.classes
    if opts.train_images is None:
        value = max(per_class, MIN_MAX_BATCHES)
        return value, (f"max_batches=max(2000*classes={per_class}, 6000)={value} (no DATA given: the number of "
                       "training images was not counted)")
    value = max(per_class, opts.train_images, MIN_MAX_BATCHES)
    return value, (f"max_batches=max(2000*classes={per_class}, training images={opts.train_images}, 6000)"
                   f"={value}")


def _head(head: Section, before: Section, opts: CustomOptions, width: int, height: int, edits: _Edits,
          notes: list[str]) -> None:
    num = head.get_int("num", 1)
    mask = len(head.get_ints("mask", ())) or num
    edits.set(head, "classes", opts.classes)
    if head.kind == "region":
        filters = num * (opts.classes + head.get_int("coords", 4) + 1)
    else:
        filters = (opts.classes + (9 if head.kind == "Gaussian_yolo" else 5)) * mask
    if before.kind in ("convolutional", "conv"):
        edits.set(before, "filters", filters)
    else:
        notes.append(f"{head.file}:{head.line}: the section before [{head.kind}] is [{before.kind}], not "
                     f"[convolutional]: its filters were not changed (it needs {filters} outputs)")
    if opts.anchors is not None:
        # [region] anchors are in grid cells (32 pixels), [yolo] anchors in pixels
        scale = 32 if head.kind == "region" else 1
        edits.set(head, "anchors", opts.anchors(num, width // scale, height // scale))


def _apply(raw: bytes, edits: _Edits) -> tuple[bytes, list[LineChange]]:
    lines = raw.splitlines(keepends=True)
    out: list[bytes] = []
    changes: list[LineChange] = []
    for number, line in enumerate(lines, start=1):
        if number in edits.values:
            body = line.rstrip(b"\r\n")
            match = _ASSIGNMENT.match(body)
            new = match[1] + edits.values[number] + match[3] + line[len(body):]
            if new != line:
                changes.append(LineChange(len(out) + 1, _show(line), _show(new)))
            line = new
        out.append(line)
        ending = line[len(line.rstrip(b"\r\n")):] or b"\n"
        if number in edits.added:
            if not line.endswith((b"\n", b"\r")):
                out[-1] = line + ending
            for added in edits.added[number]:
                out.append(added + ending)
                changes.append(LineChange(len(out), None, _show(added)))
    return b"".join(out), changes


def _show(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").strip()
