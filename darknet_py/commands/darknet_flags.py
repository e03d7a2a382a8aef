"""AlexeyAB's detector flag grammar: `run_detector` reads every flag on every `detector` sub-command.

AlexeyAB's `run_detector` (detector.c) and `main` (darknet.c) look up a fixed list of flags with `find_arg`
and friends before dispatching, so `detector valid ... -dont_show` or `detector train ... -mjpeg_port 8090`
are valid command lines there. Each darknet_py command defines the flags it implements; :func:`add_darknet_flags`
appends the rest of the list to a command, each printing one `ignored: -flag (reason)` line when given.
:class:`DarknetFlagsGroup` checks a command line before click parses it, so a flag that is in neither list
gets one clear error instead of click's reading of `-mjpeg_port` as `-m jpeg_port`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import click

from ..errors import UsageError


@dataclass(frozen=True)
class DarknetFlag:
    name: str                    # as on AlexeyAB's command line, e.g. "-mjpeg_port"
    type: Optional[type]         # None: a switch (find_arg); else the type of its value
    readers: tuple[str, ...]     # the AlexeyAB detector sub-commands that use it ("*": all of them)
    reason: str                  # why darknet_py does nothing with it


_WINDOW = "darknet_py never opens a window"
_SERVER = "only detector train and demo serve HTTP streams"
_DEMO = "darknet_py's demo does not implement it"

# every flag of AlexeyAB's run_detector and darknet.c main, in their order
DARKNET_FLAGS = (
    DarknetFlag("-dont_show", None, ("*",), _WINDOW),
    DarknetFlag("-benchmark", None, ("demo",), "no benchmark mode; see bench/"),
    DarknetFlag("-benchmark_layers", None, ("test", "train", "demo"), "no per-layer timing"),
    DarknetFlag("-show", None, ("calc_anchors",), _WINDOW),
    DarknetFlag("-letter_box", None, ("test", "map", "demo"),
                "AlexeyAB's train and valid read letter_box=1 from [net] only"),
    DarknetFlag("-map", None, ("train",), "only detector train computes mAP while training"),
    DarknetFlag("-points", int, ("map",), "only detector map reads it"),
    DarknetFlag("-show_imgs", None, ("train",), "only detector train writes augmented pictures"),
    DarknetFlag("-mjpeg_port", int, ("train", "demo"), _SERVER),
    DarknetFlag("-avgframes", int, ("demo",), _DEMO),
    DarknetFlag("-dontdraw_bbox", None, ("demo",), _DEMO),
    DarknetFlag("-json_port", int, ("demo",), _SERVER),
    DarknetFlag("-http_post_host", str, ("demo",), "no HTTP client"),
    DarknetFlag("-time_limit_sec", int, ("demo",), _DEMO),
    DarknetFlag("-out_filename", str, ("demo",), _DEMO),
    DarknetFlag("-json_file_output", str, ("demo",), _DEMO),
    DarknetFlag("-out", str, ("test", "valid"), "only detector test and valid write -out"),
    DarknetFlag("-prefix", str, ("demo",), _DEMO),
    DarknetFlag("-thresh", float, ("test", "train", "map", "demo"), "this command has no threshold"),
    DarknetFlag("-iou_thresh", float, ("train", "map"), "this command has no IoU threshold"),
    DarknetFlag("-hier", float, ("test", "demo"), "YOLO9000 hierarchy threshold: no [region] tree here"),
    DarknetFlag("-c", int, ("demo",), "camera index: only detector demo reads it"),
    DarknetFlag("-s", int, ("demo",), "frame skip: only detector demo reads it"),
    DarknetFlag("-num_of_clusters", int, ("calc_anchors",), "only detector calc_anchors reads it"),
    DarknetFlag("-width", int, ("calc_anchors",), "only detector calc_anchors reads it"),
    DarknetFlag("-height", int, ("calc_anchors",), "only detector calc_anchors reads it"),
    DarknetFlag("-ext_output", None, ("test", "demo"), "only detector test and demo print box coordinates"),
    DarknetFlag("-save_labels", None, ("test",), "only detector test writes label files"),
    DarknetFlag("-chart", str, ("train",), "only detector train draws the chart"),
    DarknetFlag("-mAP_epochs", int, ("train",), "only detector train computes mAP while training"),
    DarknetFlag("-gpus", str, ("train",), "only detector train uses several GPUs"),
    DarknetFlag("-clear", None, ("train",), "only detector train reads -clear"),
    DarknetFlag("-i", int, ("*",), "this command runs where its --device says"),
    DarknetFlag("-cuda_debug_sync", None, ("*",), "set CUDA_LAUNCH_BLOCKING=1 instead"),
)


def add_darknet_flags(command: click.Command) -> click.Command:
    """Append to ``command`` every Darknet flag it does not define; each prints why it is ignored."""
    defined = {opt for param in command.params for opt in getattr(param, "opts", ())}
    for flag in DARKNET_FLAGS:
        if flag.name not in defined:
            command.params.append(_ignored_option(flag, command.name))
    return command


def _ignored_option(flag: DarknetFlag, command_name: str) -> click.Option:
    def say_ignored(ctx: click.Context, param: click.Parameter, value) -> None:
        if value is not None and value is not False:
            click.echo(f"ignored: {flag.name} ({flag.reason})", err=True)

    readers = "every command" if "*" in flag.readers else "detector " + ", ".join(flag.readers)
    return click.Option([flag.name], is_flag=flag.type is None, type=flag.type, default=None,
                        expose_value=False, hidden=True, callback=say_ignored,
                        help=f"Accepted for AlexeyAB compatibility ({readers}); ignored in {command_name}.")


class DarknetFlagsGroup(click.Group):
    """A group whose sub-commands refuse an unknown `-flag` by its full name before click splits it into
    short options."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            check_flags(command, ctx, rest)
        return name, command, rest


def check_flags(command: click.Command, ctx: click.Context, args: list[str]) -> None:
    """Raise a UsageError naming the first token that looks like a flag and is not one of ``command``'s."""
    takes_value = {}
    for param in command.get_params(ctx):
        for opt in [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]:
            takes_value[opt] = not (getattr(param, "is_flag", False) or getattr(param, "count", False))
    expecting_value = False
    for arg in args:
        if expecting_value:
            expecting_value = False
            continue
        if arg == "--":
            return
        name = arg.split("=", 1)[0]
        if name in takes_value:
            expecting_value = takes_value[name] and "=" not in arg
        elif arg.startswith("-") and arg != "-" and not _is_number(arg):
            raise UsageError(f"detector {command.name} has no flag {name}", value=arg,
                             hint=f"darknet_py detector {command.name} --help lists its flags")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
