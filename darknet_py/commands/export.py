"""`darknet_py export CFG WEIGHTS OUT.onnx`: the network as an ONNX model (see darknet_py.export)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional

import click

from ..config.cfg import CfgModel
from ..errors import CfgError, UsageError
from ..export.opsets import DEFAULT_OPSET, OPSETS
from ..outputs import refuse_overwriting_inputs
from .options import flavor_option


def at_size(cfg: CfgModel, width: Optional[int], height: Optional[int]) -> CfgModel:
    """The cfg with `[net] width`/`height` replaced where given (the layers are then built at that size)."""
    net = dataclasses.replace(cfg.net, width=width or cfg.net.width, height=height or cfg.net.height)
    return dataclasses.replace(cfg, net=net)


def checked_size(cfg: CfgModel, width: Optional[int], height: Optional[int], batch: int) -> CfgModel:
    """The cfg at --width/--height, refused before anything is allocated when its layers cannot take that
    size (one message naming the flags and the rule, not the [route] that fails) or when the export's
    forward pass (``batch`` images) cannot fit in memory (as training checks, darknet_py/memory.py)."""
    from ..network import check_memory, meta_network
    sized = at_size(cfg, width, height)
    try:
        network = meta_network(sized)
    except CfgError:
        if not (width or height):
            raise                                       # at the cfg's own size: its errors are the cfg's
        raise _size_error(cfg, sized, _downsampling(meta_network(cfg))) from None
    try:
        check_memory(sized, "cpu", training=False, images=batch, network=network)
    except CfgError as error:
        if not (width or height or batch > 1):
            raise
        raise UsageError(error.message, hint="lower --width/--height or --batch") from None
    return sized


def _downsampling(network) -> tuple[int, int]:
    """How many input pixels one pixel of the network's coarsest layer stands for, across and down."""
    net = network.net_options
    return (max(net.width // shape.w for shape in network.shapes if shape.w),
            max(net.height // shape.h for shape in network.shapes if shape.h))


def _size_error(cfg: CfgModel, sized: CfgModel, factors: tuple[int, int]) -> UsageError:
    across, down = factors
    width, height = sized.net.width, sized.net.height
    near = (max(across, round(width / across) * across), max(down, round(height / down) * down))
    rule = (f"by {across}, so width and height must be multiples of {across}" if across == down else
            f"by {across} across and {down} down, so the width must be a multiple of {across} and the height "
            f"of {down}")
    return UsageError(f"--width/--height {width}x{height}: the layers of {cfg.file} downsample the input {rule}",
                      hint=f"e.g. --width {near[0]} --height {near[1]}")


def check_output_path(out: str) -> None:
    """OUT.onnx must name a file that can be created: not empty, not a folder, in a folder that exists."""
    path = Path(out)
    if not out.strip():
        raise UsageError("the output file name is empty", hint="give a file name such as model.onnx")
    if out.endswith(("/", os.sep)) or path.is_dir():
        raise UsageError("the output is a folder, not a file name", value=out,
                         hint=f"give a file name such as {path / 'model.onnx'}")
    if not path.parent.is_dir():
        raise UsageError(f"the output's folder '{path.parent}' does not exist", value=out,
                         hint="create it first (mkdir -p) or choose another destination")


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
    check_output_path(out)
    refuse_overwriting_inputs("export", {"cfg file": cfg, "weights file": weights}, {"output": out})
    require_onnx()   # before the (possibly long) weights load
    sized = checked_size(parse_cfg(cfg, flavor=flavor, batch=1), width, height, 2 if dynamic_batch else batch or 1)
    network = Network(sized)
    load_parameters(network, weights)
    names = export_onnx(network.fuse_(), out, batch=batch or 1, dynamic_batch=dynamic_batch, decode=decode,
                        opset=opset)
    n = "N" if dynamic_batch else str(batch or 1)
    click.echo(f"{out}: input images ({n}, {network.net_options.channels}, {network.net_options.height}, {network.net_options.width}), "
               f"outputs {', '.join(names)} (opset {opset})")
