"""Options shared by several commands."""
from __future__ import annotations

import click

flavor_option = click.option("--flavor", type=click.Choice(["ab", "pj"]), default="ab", show_default=True,
                             help="Darknet fork whose semantics to follow: AlexeyAB (ab) or pjreddie (pj).")
