"""`darknet_py detector check DATA [CFG]`: the data set checker; also its fast part, run by `detector train`."""
from __future__ import annotations

from typing import Optional

import click

from ..errors import DataFileError
from .options import allow_empty_labels_option, flavor_option


@click.command("check")
@click.argument("data", type=click.Path())
@click.argument("cfg", required=False, type=click.Path())
@flavor_option
@click.option("--fast", is_flag=True, help="Skip image decoding (existence and label files only).")
@click.option("--examples", type=click.IntRange(min=0), default=3, show_default=True,
              help="How many findings to show for each check.")
@allow_empty_labels_option
def check(data: str, cfg: Optional[str], flavor: str, fast: bool, examples: int, allow_empty_labels: bool) -> None:
    """Check a data set (and with CFG the model) before training; exits non-zero on errors."""
    from ..check import check_dataset
    report = check_dataset(data, cfg, flavor=flavor, fast=fast, allow_empty_labels=allow_empty_labels)
    click.echo(report.format(examples))
    if not report.ok:
        raise DataFileError(f"the data set check found {len(report.errors)} error(s), listed above", file=data)


def fast_check_before_training(data: str, cfg: str, flavor: str, allow_empty_labels: bool = False):
    """What `detector train` runs first: the fast checks; errors stop training, warnings are shown. Returns
    the parsed cfg, which training then uses (the cfg is parsed once per command)."""
    from ..check import check_dataset
    report = check_dataset(data, cfg, flavor=flavor, fast=True, allow_empty_labels=allow_empty_labels)
    if report.findings:
        click.echo(report.format_findings(examples=3), err=True)
    if not report.ok:
        raise DataFileError(f"the data set check found {len(report.errors)} error(s), listed above", file=data,
                            hint=f"details: darknet_py detector check {data} {cfg} --flavor {flavor}; "
                                 f"skip the check with --no-check")
    return report.model


COMMANDS: list = [check]
