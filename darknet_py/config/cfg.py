"""`.cfg` files -> :class:`CfgModel`: typed `[net]` options and one typed option object per layer."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CfgError
from ..flavor import AB, FLAVORS, Flavor, flavor_of
from .known_keys import LAYER_INERT, LAYER_WARNED, NET_INERT, NET_WARNED, report_unimplemented
from .net import NetOptions, parse_net
from .reader import Section, read_sections

@dataclass(frozen=True)
class LayerSpec:
    """One layer section after parsing: its kind, typed options and common keys, and where it came from."""
    kind: str
    options: Any
    common: Any
    file: str
    line: int


@dataclass(frozen=True)
class CfgModel:
    file: str
    net: NetOptions
    layers: tuple[LayerSpec, ...]
    text: str

    @property
    def flavor(self) -> Flavor:
        return self.net.flavor

    @property
    def base_name(self) -> str:
        """Darknet's backup name: the cfg file name without directory and extension."""
        return Path(self.file).stem


def parse_cfg(path: str | Path, flavor: Flavor | str = AB, batch: int | None = None) -> CfgModel:
    """Read a `.cfg`. ``batch`` overrides `[net] batch` and `subdivisions` (inference uses 1, as Darknet)."""
    from ..layers.base import parse_common

    try:
        flavor = flavor_of(flavor)
    except ValueError:
        raise CfgError(f"unknown flavor '{flavor}', expected one of {', '.join(FLAVORS)}") from None
    sections = read_sections(path, CfgError)
    if not sections:
        raise CfgError("the cfg has no sections (empty file?)", file=str(path), hint="a cfg starts with [net]")
    if sections[0].kind not in ("net", "network"):
        raise CfgError("the first section must be [net] or [network]", file=str(path),
                       line=sections[0].line, value=f"[{sections[0].kind}]")
    kinds = [_layer_kind(section, flavor) for section in sections[1:]]
    net_section = sections[0]
    if batch is not None:
        _override_batch(net_section, batch)
    net = parse_net(net_section, flavor)
    _report_unused_net(net_section)
    if len(sections) == 1:
        raise CfgError("the cfg has no layers after [net]", file=str(path))
    layers = []
    for section, kind in zip(sections[1:], kinds):
        options = kind.parse(section, flavor)
        common = parse_common(section)
        report_unimplemented(section, LAYER_WARNED, LAYER_INERT)
        section.report_unused()
        layers.append(LayerSpec(kind.name, options, common, section.file, section.line))
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return CfgModel(str(path), net, tuple(layers), text)


def _layer_kind(section: Section, flavor: Flavor):
    """The layer kind of a section; checked for every section before any option is read, so a cfg of an
    unsupported family (RNN, classifier with [cost]/[crop]) is named as such rather than failing on [net]."""
    from ..layers import SECTION_KINDS, UNSUPPORTED_KINDS
    if section.kind in ("net", "network"):
        raise CfgError("[net] may only be the first section", file=section.file, line=section.line)
    kind = SECTION_KINDS.get(section.kind)
    if kind is None:
        if section.kind in UNSUPPORTED_KINDS:
            raise CfgError(f"section [{section.kind}] is not supported by darknet_py", file=section.file,
                           line=section.line)
        hint = "section names are case-sensitive" if section.kind.lower() in SECTION_KINDS else None
        raise CfgError(f"unknown section [{section.kind}]", file=section.file, line=section.line, hint=hint)
    if kind.ab_only and not flavor.ab_only_sections_allowed:
        raise CfgError(f"section [{section.kind}] exists only in AlexeyAB's Darknet (flavor ab)",
                       file=section.file, line=section.line)
    return kind


def _override_batch(section: Section, batch: int) -> None:
    from .reader import Option
    section.options = [o for o in section.options if o.key not in ("batch", "subdivisions")]
    section.options += [Option("batch", str(batch), section.line, f"batch={batch}"),
                        Option("subdivisions", "1", section.line, "subdivisions=1")]


def _report_unused_net(section: Section) -> None:
    report_unimplemented(section, NET_WARNED, NET_INERT)
    section.report_unused()
