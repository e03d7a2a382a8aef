"""The two Darknet forks as values: pjreddie's darknet ("pj") and AlexeyAB's ("ab").

Darknet has no `if fork == ...`: each fork is its own code base. Here both live in one code base, so every
constant and small rule in which they differ is a field of one frozen `Flavor` value per fork, and code asks
the value (``flavor.weights_version``, ``flavor.label_path(...)``) instead of comparing names. This module is
the only place that knows the fork names; `flavor_of` turns a name from the command line or a caller into
the value.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flavor:
    name: str                                   # "ab" or "pj", as --flavor spells it
    alexeyab: bool                              # AlexeyAB's fork (the larger algorithmic differences key on this)
    weights_version: tuple[int, int, int]       # (major, minor, revision) written in a .weights header

    # training loop
    backup_banner: bool                         # says the save periods at the start and `-clear` at the end
    small_batch_warning: bool                   # warns when batch < 8 (AB recommends 64)
    map_progress_lines: bool                    # with -map: the next mAP iteration and last/best mAP each iteration
    resizing_line: str                          # a multiscale resize ({width}, {height}, {coef})

    @property
    def pjreddie(self) -> bool:
        return not self.alexeyab

    def __str__(self) -> str:
        return self.name


AB = Flavor(name="ab", alexeyab=True, weights_version=(0, 2, 5),
            backup_banner=True, small_batch_warning=True, map_progress_lines=True,
            resizing_line="Resizing, random_coef = {coef:.2f} \n\n {width} x {height} ")
PJ = Flavor(name="pj", alexeyab=False, weights_version=(0, 2, 0),
            backup_banner=False, small_batch_warning=False, map_progress_lines=False,
            resizing_line="Resizing\n{width}")

FLAVORS: dict[str, Flavor] = {"ab": AB, "pj": PJ}


def flavor_of(value: "Flavor | str") -> Flavor:
    """The Flavor for a name ("ab"/"pj") or a Flavor; ValueError naming the value otherwise."""
    if isinstance(value, Flavor):
        return value
    try:
        return FLAVORS[value]
    except (KeyError, TypeError):
        raise ValueError(f"unknown flavor {value!r}, expected one of {', '.join(FLAVORS)}") from None
