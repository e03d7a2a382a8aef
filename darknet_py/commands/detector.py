"""`darknet_py detector ...`: the group; each sub-command lives in its own module."""
from __future__ import annotations

import click


@click.group()
def detector() -> None:
    """Darknet's `detector` commands (train, test, valid, map, recall, calc_anchors, check)."""
