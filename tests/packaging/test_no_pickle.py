"""No arbitrary unpickling anywhere: every `torch.load` in darknet_py passes ``weights_only=True`` (checked
statically over the package's source), no module imports a pickle-family library, and a booby-trapped `.pt`
is refused without running its payload."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from helpers.paths import ROOT

PACKAGE = ROOT / "darknet_py"
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20, "the scan must see the whole package"
    return files


def _dotted(node: ast.AST) -> str:
    """`torch.serialization.load` for an attribute chain, the name for a Name, '' otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _keyword_is_true(call: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def _torch_load_aliases(tree: ast.Module) -> set[str]:
    """Names under which this module can call torch.load (`import torch as t`, `from torch import load`)."""
    aliases = {"torch.load", "torch.serialization.load"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch" and alias.asname:
                    aliases |= {f"{alias.asname}.load", f"{alias.asname}.serialization.load"}
        elif isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
            aliases |= {alias.asname or alias.name for alias in node.names if alias.name == "load"}
    return aliases


def _violations(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    loads = _torch_load_aliases(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where}: imports {a.name}" for a in node.names if a.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            found.append(f"{where}: imports from {node.module}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in loads and not _keyword_is_true(node, "weights_only"):
                found.append(f"{where}: {name}(...) without weights_only=True")
            if name.endswith(".load") and _keyword_is_true(node, "allow_pickle"):
                found.append(f"{where}: {name}(..., allow_pickle=True)")
            if name.endswith("read_pickle"):
                found.append(f"{where}: {name}(...)")
    return found


def test_every_torch_load_is_weights_only_and_nothing_imports_pickle():
    violations = [v for path in _sources() for v in _violations(path)]
    assert violations == []


def test_the_scan_catches_what_it_forbids(tmp_path):
    """The scanner itself must flag the patterns (so an empty result above means something)."""
    bad = tmp_path / "darknet_py" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("import torch as t\nfrom torch import load as L\nimport numpy as np\nimport dill\n"
                   "t.load('x')\nL('x', weights_only=False)\nnp.load('x', allow_pickle=True)\n"
                   "t.load('x', weights_only=True)\n")
    assert [v.split(": ", 1)[1] for v in _violations(bad, tmp_path)] == [
        "imports dill", "t.load(...) without weights_only=True", "L(...) without weights_only=True",
        "np.load(..., allow_pickle=True)"]


class _Payload:
    """Unpickling this would call the function in ``__reduce__``: the classic pickle exploit."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_booby_trapped_pt_is_refused_without_running_it(tmp_path):
    from darknet_py.network import parse_cfg
    from darknet_py.errors import WeightsError
    from darknet_py.network import Network
    from darknet_py.weights import load_pt

    marker = tmp_path / "exploited"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "darknet_py/1", "state_dict": {}, "seen": 0, "trap": _Payload(marker)}, evil)
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\nsize=1\n")
    network = Network(parse_cfg(cfg))
    with pytest.raises(WeightsError) as info:
        load_pt(network, evil)
    assert info.value.file == str(evil)
    assert not marker.exists()
