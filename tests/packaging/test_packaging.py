"""Packaging as users expect: one version source, `darknet_py --version`, a LICENSE matching the metadata."""
from __future__ import annotations

from importlib import metadata

from helpers.cli import run_cli
from helpers.paths import ROOT



def test_version_flag_prints_the_installed_version():
    result = run_cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"darknet_py {metadata.version('darknet_py')}"


def test_license_file_is_the_declared_mit_licence():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert 'license = { file = "LICENSE" }' in (ROOT / "pyproject.toml").read_text()
