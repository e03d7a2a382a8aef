"""`darknet_py detector ...`: the group; each family of sub-commands lives in its own module and lists its
click commands in ``COMMANDS``."""
from __future__ import annotations

import click

from . import check, demo, evaluate, test, train


@click.group()
def detector() -> None:
    """Darknet's `detector` commands (train, test, demo, valid, map, recall, calc_anchors, check)."""


for _module in (train, test, demo, evaluate, check):
    for _command in _module.COMMANDS:
        detector.add_command(_command)
