"""`darknet_py export CFG WEIGHTS OUT.onnx`: the network as an ONNX model (see darknet_py.export)."""
from __future__ import annotations

import dataclasses
from typing import Optional

import click

from ..errors import UsageError
from ..export.opsets import DEFAULT_OPSET, OPSETS
from .options import flavor_option


def at_size(cfg: "CfgModel", width: Optional[int], height: Optional[int]) -> CfgModel:
    """The cfg with `[net] width`/`height` replaced where given (the layers are then built at that size)."""
    net = dataclasses.replace(cfg.net, width=width or cfg.net.width, height=height or cfg.net.height)
    return dataclasses.replace(cfg, net=net)


@click.command()
@click.argument("cfg", type=click.Path())
@click.argument("weights", type=click.Path())
@click.argument("out", metavar="OUT.onnx", type=click.Path())
@flavor_option
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Fixed batch size of the input [1].")
@click.option("--dynamic-batch", is_flag=True, help="Any batch size (the input's first axis is dynamic).")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Input width [cfg's [net] width].")
@click.option("--height", type=click.IntRange(min=1), default=None, help="Input height [cfg's [net] height].")
@click.option("--decode", is_flag=True,
              help="Decode boxes in the graph: outputs `boxes` (N,K,4 x1,y1,x2,y2 pixels) and `scores` "
                   "(N,K,classes); default: the raw output of each [yolo]/[region] layer.")
@click.option("--opset", type=click.IntRange(OPSETS.start, OPSETS.stop - 1), default=DEFAULT_OPSET, show_default=True,
              help="ONNX opset version.")
def export(cfg: str, weights: str, out: str, flavor: str, batch: Optional[int], dynamic_batch: bool,
           width: Optional[int], height: Optional[int], decode: bool, opset: int) -> None:
    """Export CFG with WEIGHTS (.weights or .pt) to OUT.onnx; input `images`, float32 NCHW RGB in [0, 1]."""
    from ..export.onnx import export_onnx, require_onnx
    from ..network import Network, load_parameters, parse_cfg
    if batch is not None and dynamic_batch:
        raise UsageError("give either --batch N or --dynamic-batch, not both")
    require_onnx()   # before the (possibly long) weights load
    network = Network(at_size(parse_cfg(cfg, flavor=flavor, batch=1), width, height))
    load_parameters(network, weights)
    names = export_onnx(network.fuse_(), out, batch=batch or 1, dynamic_batch=dynamic_batch, decode=decode,
                        opset=opset)
    n = "N" if dynamic_batch else str(batch or 1)
    click.echo(f"{out}: input images ({n}, {network.net_options.channels}, {network.net_options.height}, {network.net_options.width}), "
               f"outputs {', '.join(names)} (opset {opset})")
