"""The in-memory form every reader produces: one :class:`ImageRecord` per picture (its path, size and boxes
already in Darknet's normalised centre/size form) and the counted :class:`Problems` of an import.

Box conversion is done here, once per source convention, so every reader clips and drops boxes by the same
rule: a box is clipped to the picture (counted), and one with no area left is dropped (counted)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

EXAMPLES = 3        # examples kept (and printed) per kind of problem


@dataclass(frozen=True)
class Box:
    """A Darknet label record: class id and the box centre/size as fractions of the picture."""
    class_id: int
    x: float
    y: float
    w: float
    h: float

    def label_line(self) -> str:
        # 8 decimals: a box read back is within 1e-8 of what was computed (Darknet reads floats with %f)
        return f"{self.class_id} {self.x:.8f} {self.y:.8f} {self.w:.8f} {self.h:.8f}\n"


@dataclass(frozen=True)
class ImageRecord:
    """One picture of the source set: ``path`` where it is, ``name`` its path inside the Darknet set's
    `JPEGImages/` (unique); ``width``/``height`` are 0 when the format did not need them (YOLO labels are
    already normalised)."""
    path: str
    name: str
    width: int
    height: int
    boxes: tuple[Box, ...]
    split: Optional[str] = None     # "train" / "valid" when the source says so, else None (random split)


@dataclass
class Problems:
    """Counts of each kind of problem met while reading, with the first few examples of each."""
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] += 1
        if len(self.examples[kind]) < EXAMPLES:
            self.examples[kind].append(example)

    def lines(self) -> list[str]:
        """One line per kind: `kind: count (e.g. a; b; c)`."""
        return [f"{kind}: {count} (e.g. {'; '.join(self.examples[kind])})" for kind, count in self.counts.items()]

    def as_dict(self) -> dict:
        return {kind: {"count": count, "examples": self.examples[kind]} for kind, count in self.counts.items()}


@dataclass
class ImportedSet:
    """What a reader hands the writer."""
    format: str
    source: Path
    names: tuple[str, ...]
    records: list[ImageRecord]
    problems: Problems
    class_map: dict[str, int]       # the source's class key (COCO category id, VOC/YOLO name or id) -> Darknet id
    image_roots: tuple[Path, ...]   # folders holding the source pictures (an import must not write there)


def edges_to_box(class_id: int, left: float, top: float, right: float, bottom: float, width: float,
                 height: float, where: str, problems: Problems) -> Optional[Box]:
    """A box given by its edges in pixels (continuous coordinates: 0 is the picture's left edge, ``width``
    its right edge) -> Darknet's normalised box; clipped to the picture, None (counted) when no area is left."""
    clipped = (max(0.0, min(left, width)), max(0.0, min(top, height)),
               max(0.0, min(right, width)), max(0.0, min(bottom, height)))
    if clipped != (left, top, right, bottom):
        problems.add("box clipped to the image", where)
        left, top, right, bottom = clipped
    if right <= left or bottom <= top:
        problems.add("zero-area box dropped", where)
        return None
    return Box(class_id, (left + right) / 2 / width, (top + bottom) / 2 / height,
               (right - left) / width, (bottom - top) / height)


def normalised_to_box(class_id: int, x: float, y: float, w: float, h: float, where: str,
                      problems: Problems) -> Optional[Box]:
    """A box already in Darknet's normalised form (YOLO folders): clipped to [0, 1] like the others."""
    return edges_to_box(class_id, x - w / 2, y - h / 2, x + w / 2, y + h / 2, 1.0, 1.0, where, problems)
