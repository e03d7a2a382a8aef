"""`[net]` / `[network]` options (spec §2) as a frozen dataclass."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import warn
from ..flavor import Flavor
from .reader import Section

POLICIES = ("constant", "step", "steps", "exp", "poly", "sigmoid", "random", "sgdr")


@dataclass(frozen=True)
class NetOptions:
    batch: int                  # B: images per weight update (cfg `batch`, remainder of subdivisions dropped)
    subdivisions: int           # S: micro-batches per update
    mini_batch: int             # B_mini = batch // subdivisions (forward batch)
    width: int
    height: int
    channels: int
    learning_rate: float
    momentum: float
    decay: float
    policy: str
    burn_in: int
    power: float
    step: int
    scale: float
    steps: tuple[int, ...]
    scales: tuple[float, ...]
    gamma: float
    max_batches: int
    learning_rate_min: float
    sgdr_cycle: int
    sgdr_mult: int
    adam: bool
    b1: float
    b2: float
    eps: float
    saturation: float
    exposure: float
    hue: float
    flip: bool
    mosaic: bool
    mixup: bool
    letter_box: bool
    mosaic_bound: bool
    resize_step: int
    loss_scale: float
    clip: float
    ema_alpha: float
    max_chart_loss: Optional[float]      # None: not set, the chart's loss axis follows the data
    weights_reject_freq: int
    flavor: Flavor

    @property
    def images_per_update(self) -> int:
        """`net.batch * subdivisions` as Darknet computes it: the LR/decay divisor and seen/iteration unit."""
        return self.mini_batch * self.subdivisions


def parse_net(section: Section, flavor: Flavor) -> NetOptions:
    s = section
    batch = s.get_int("batch", 1)
    subdivisions = s.get_int("subdivisions", 1)
    if batch < 1:
        raise s.error("'batch' must be at least 1", s.option("batch"))
    if subdivisions < 1:
        raise s.error("'subdivisions' must be at least 1", s.option("subdivisions"))
    mini = max(batch // subdivisions, 1)  # AB forces a mini-batch of at least 1
    if batch < subdivisions:
        where = s.option("batch") or s.option("subdivisions")
        warn(f"batch={batch} is smaller than subdivisions={subdivisions}: each iteration trains {subdivisions} "
             f"images (mini-batch 1, as Darknet does), not {batch}", s.file, where.line if where else s.line)
    width, height, channels = s.get_int("width", 0), s.get_int("height", 0), s.get_int("channels", 0)
    for key, value in (("width", width), ("height", height), ("channels", channels)):
        if value <= 0:
            raise s.error(f"'{key}' must be given and positive", s.option(key),
                          hint="Darknet needs width, height and channels in [net]")
    policy = s.get_str("policy", "constant")
    if policy not in POLICIES:
        raise s.error(f"unknown lr policy; expected one of {', '.join(POLICIES)}", s.option("policy"))
    step, scale, steps, scales, gamma = 1, 1.0, (), (), 1.0
    if policy in ("step", "sigmoid"):
        step = s.get_int("step", 1)
    if policy == "step":
        scale = s.get_float("scale", 1.0)
    if policy in ("steps", "sgdr"):
        steps = s.get_ints("steps", ())
        scales = s.get_floats("scales", ())
        if policy == "steps" and not steps:
            raise s.error("policy=steps needs 'steps' and 'scales'", s.option("policy"))
        if policy == "steps" and len(scales) < len(steps):
            raise s.error(f"'scales' has {len(scales)} values but 'steps' has {len(steps)}",
                          s.option("scales") or s.option("steps"))
    if policy in ("exp", "sigmoid"):
        gamma = s.get_float("gamma", 1.0)
    max_batches = s.get_int("max_batches", 0)
    adam = s.get_bool("adam", False)
    default_eps = flavor.adam_eps_default
    return NetOptions(
        batch=batch, subdivisions=subdivisions, mini_batch=mini,
        width=width, height=height, channels=channels,
        learning_rate=s.get_float("learning_rate", 0.001),
        momentum=s.get_float("momentum", 0.9),
        decay=s.get_float("decay", 0.0001),
        policy=policy,
        burn_in=s.get_int("burn_in", 0),
        power=s.get_float("power", 4.0),
        step=step, scale=scale, steps=steps, scales=scales[:len(steps)] if policy == "steps" else scales,
        gamma=gamma,
        max_batches=max_batches,
        learning_rate_min=s.get_float("learning_rate_min", 0.00001),
        sgdr_cycle=s.get_int("sgdr_cycle", max_batches),
        sgdr_mult=s.get_int("sgdr_mult", 2),
        adam=adam,
        b1=s.get_float("B1", 0.9) if adam else 0.9,
        b2=s.get_float("B2", 0.999) if adam else 0.999,
        eps=s.get_float("eps", default_eps) if adam else default_eps,
        saturation=s.get_float("saturation", 1.0),
        exposure=s.get_float("exposure", 1.0),
        hue=s.get_float("hue", 0.0),
        flip=s.get_bool("flip", True),
        mosaic=s.get_bool("mosaic", False),
        mixup=s.get_bool("mixup", False),
        letter_box=s.get_bool("letter_box", False),
        mosaic_bound=s.get_bool("mosaic_bound", False),
        resize_step=s.get_int("resize_step", 32),
        loss_scale=s.get_float("loss_scale", 1.0),
        clip=s.get_float("clip", 0.0),
        # keys only AlexeyAB reads
        ema_alpha=s.get_float("ema_alpha", 0.0) if flavor.alexeyab else 0.0,
        max_chart_loss=s.get_float("max_chart_loss", 20.0) if flavor.alexeyab and s.has("max_chart_loss") else None,
        weights_reject_freq=s.get_int("weights_reject_freq", 0) if flavor.alexeyab else 0,
        flavor=flavor,
    )
