"""`darknet_py detector ...`: the group; each family of sub-commands lives in its own module and lists its
click commands in ``COMMANDS``. Every sub-command also accepts the rest of AlexeyAB's detector flags
(:mod:`.darknet_flags`)."""
from __future__ import annotations

import click

from . import check, demo, evaluate, test, train
from .darknet_flags import DarknetFlagsGroup, add_darknet_flags


@click.group(cls=DarknetFlagsGroup)
def detector() -> None:
    """Darknet's `detector` commands (train, test, demo, valid, map, recall, calc_anchors, check)."""


for _module in (train, test, demo, evaluate, check):
    for _command in _module.COMMANDS:
        detector.add_command(add_darknet_flags(_command))
