"""`darknet_py convert CFG SRC DST` (.weights <-> .pt) and `darknet_py partial CFG SRC DST N`."""
from __future__ import annotations

import click

from ..errors import UsageError
from ..outputs import refuse_overwriting_inputs
from .options import flavor_option


def _kind(path: str) -> str:
    if path.endswith(".pt"):
        return "pt"
    if path.endswith(".weights") or ".conv." in path or path.endswith(".backup"):
        return "weights"
    raise UsageError(f"cannot tell the format of '{path}' from its extension (use .weights or .pt)")


def _refuse_same_file(command: str, cfg: str, src: str, dst: str) -> None:
    """Writing DST over SRC (or the cfg) would destroy the input if anything goes wrong (and for `partial`
    always: the cut file replaces the full one)."""
    refuse_overwriting_inputs(command, {"cfg file": cfg, "weights file": src}, {"output": dst})


@click.command()
@click.argument("cfg", type=click.Path())
@click.argument("src", type=click.Path())
@click.argument("dst", type=click.Path())
@flavor_option
def convert(cfg: str, src: str, dst: str, flavor: str) -> None:
    """Convert SRC to DST (.weights <-> .pt; the direction follows the extensions)."""
    from ..network import Network, parse_cfg
    from ..weights import load_any, save_pt, save_weights
    _refuse_same_file("convert", cfg, src, dst)
    src_kind, dst_kind = _kind(src), _kind(dst)
    if src_kind == dst_kind:
        raise UsageError(f"'{src}' and '{dst}' are both {src_kind} files: nothing to convert")
    network = Network(parse_cfg(cfg, flavor=flavor, batch=1))
    report = load_any(network, src)
    if report is not None and report.partial:
        click.echo(f"{src}: {report.describe()}")
    if dst_kind == "pt":
        save_pt(network, dst)
    else:
        save_weights(network, dst)
    click.echo(f"{src} -> {dst} (seen {network.seen})")


@click.command()
@click.argument("cfg", type=click.Path())
@click.argument("src", type=click.Path())
@click.argument("dst", type=click.Path())
@click.argument("layers", type=int)
@flavor_option
def partial(cfg: str, src: str, dst: str, layers: int, flavor: str) -> None:
    """Write the first LAYERS layers of SRC to DST with seen=0 (Darknet's `partial`)."""
    from ..network import Network, parse_cfg
    from ..weights import load_weights, new_header, save_weights
    if layers < 0:
        raise UsageError(f"the layer count must not be negative, got {layers}")
    _refuse_same_file("partial", cfg, src, dst)
    network = Network(parse_cfg(cfg, flavor=flavor, batch=1))
    report = load_weights(network, src, cutoff=layers)
    # both forks write their own header with seen = 0 (pjreddie: 0.2.0, AlexeyAB: 0.2.5)
    save_weights(network, dst, cutoff=layers, header=new_header(flavor, 0))
    kept = min(layers, len(network.layers))       # Darknet's save_weights_upto stops at the last layer too
    more = f"; the cfg has {kept} layers, not {layers}" if layers > kept else ""
    click.echo(f"{src}: {report.describe()}; saved the first {kept} layers ({report.layers_total} with "
               f"parameters) to {dst}{more}")
