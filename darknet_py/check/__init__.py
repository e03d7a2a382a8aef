"""`detector check`: find data set and cfg mistakes in seconds, before hours of training.

``check_dataset(data_config, cfg=None, flavor=AB, fast=False) -> CheckReport`` is the entry point;
``report.ok`` is False when there are errors, ``report.format()`` is the table `detector check` prints."""
from .dataset import check_dataset
from .report import CHECKS, ERROR, WARNING, CheckReport, Finding

__all__ = ["check_dataset", "CheckReport", "Finding", "CHECKS", "ERROR", "WARNING"]
