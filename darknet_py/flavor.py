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

    @property
    def pjreddie(self) -> bool:
        return not self.alexeyab

    def __str__(self) -> str:
        return self.name


AB = Flavor(name="ab", alexeyab=True, weights_version=(0, 2, 5))
PJ = Flavor(name="pj", alexeyab=False, weights_version=(0, 2, 0))

FLAVORS: dict[str, Flavor] = {"ab": AB, "pj": PJ}


def flavor_of(value: "Flavor | str") -> Flavor:
    """The Flavor for a name ("ab"/"pj") or a Flavor; ValueError naming the value otherwise."""
    if isinstance(value, Flavor):
        return value
    try:
        return FLAVORS[value]
    except (KeyError, TypeError):
        raise ValueError(f"unknown flavor {value!r}, expected one of {', '.join(FLAVORS)}") from None
