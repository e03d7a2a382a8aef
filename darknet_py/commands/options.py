"""Options shared by several commands. The rule that turns `--device`/`-i` into a torch device is
:func:`darknet_py.device.resolve_device` (the Python API uses it too)."""
from __future__ import annotations

import click

from ..flavor import AB, FLAVORS

flavor_option = click.option("--flavor", type=click.Choice(list(FLAVORS)), default=AB.name, show_default=True,
                             help="Darknet fork whose semantics to follow: AlexeyAB (ab) or pjreddie (pj).")

allow_empty_labels_option = click.option(
    "--allow-empty-labels", is_flag=True,
    help="Accept a train list where no picture has a box (Darknet trains on background only); an error "
         "otherwise.")


def device_options(command):
    """`--device cpu|cuda|cuda:N` and AlexeyAB's `-i N` (the GPU used when running on CUDA)."""
    command = click.option("-i", "gpu_index", type=click.IntRange(min=-1), default=None, metavar="N",
                           help="AB: index of the GPU to use when running on CUDA (as --device cuda:N); "
                                "-1: the CPU.")(command)
    return click.option("--device", default=None, metavar="cpu|cuda|cuda:N",
                        help="Where the network runs (default: cuda when available, else cpu).")(command)


def inference_options(command):
    """`--batch N` (images per network forward) and `--workers N` (image loader processes) of the commands
    that run the network over a list of images. Neither changes a result, only the speed."""
    command = click.option("--workers", type=click.IntRange(min=0), default=None,
                           help="Image loader processes (default: none on 2 usable cores or fewer, else "
                                "min(4, cores - 1); 0: none).")(command)
    return click.option("--batch", type=click.IntRange(min=1), default=None,
                        help="Images per network forward (default: 32 on CUDA; on CPU 4 up to 256x256 "
                             "inputs, else 1).")(command)


bind_option = click.option("--bind", "bind", default="127.0.0.1", show_default=True, metavar="ADDR",
                           help="Address the -mjpeg_port / -json_port servers listen on (0.0.0.0: every "
                                "interface; only on a network you trust: the streams have no password).")
