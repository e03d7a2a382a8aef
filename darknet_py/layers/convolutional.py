"""`[convolutional]` / `[conv]` (spec §3.1)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config.known_keys import CONV_KEYS, report_unimplemented
from ..config.reader import Section
from ..errors import WeightsError
from ..flavor import Flavor
from .activation import activate, get_activation
from . import fused_conv
from .base import BuildContext, DarknetLayer, Shape
from .batchnorm import BatchNorm

_UNSUPPORTED = ("binary", "xnor", "share_index", "antialiasing", "assisted_excitation", "coordconv",
                "sway", "rotate", "stretch", "stretch_sway", "deform")


class UninitializedConv2d(nn.Conv2d):
    """``nn.Conv2d`` that skips PyTorch's initialisation: the layer draws Darknet's right after (spec §3.1),
    and drawing only once halves the time to build a large network."""

    def reset_parameters(self) -> None:
        pass


@dataclass(frozen=True)
class ConvolutionalOptions:
    filters: int
    size: int
    stride_x: int
    stride_y: int
    padding: int
    groups: int
    dilation: int
    batch_normalize: bool
    activation: str
    flipped: bool


def parse(section: Section, flavor: Flavor) -> ConvolutionalOptions:
    for key in _UNSUPPORTED:
        if section.get_str(key, "0") != "0":
            raise section.error(f"'{key}' is not supported by darknet_py", section.option(key))
    report_unimplemented(section, *CONV_KEYS[flavor.name])
    filters = section.get_int("filters", 1)
    size = section.get_int("size", 1)
    stride = section.get_int("stride", 1)
    stride_x = section.get_int("stride_x", -1) if flavor.alexeyab else -1
    stride_y = section.get_int("stride_y", -1) if flavor.alexeyab else -1
    pad = section.get_int("pad", 0)
    padding = section.get_int("padding", 0)     # Darknet reads it always; pad=1 overrides it
    padding = size // 2 if pad else padding
    groups = max(section.get_int("groups", 1), 1)
    dilation = section.get_int("dilation", 1) if flavor.alexeyab else 1
    if size == 1:
        dilation = 1
    for key, value in (("filters", filters), ("size", size), ("stride", stride), ("dilation", dilation)):
        if value < 1:
            raise section.error(f"'{key}' must be at least 1", section.option(key))
    if dilation > 1 and not (size % 2 == 1 and padding == size // 2):
        raise section.error("dilation > 1 needs an odd size with pad=1 (Darknet's shape formula "
                            "ignores dilation otherwise)", section.option("dilation"))
    return ConvolutionalOptions(
        filters=filters, size=size,
        stride_x=stride_x if stride_x > 0 else stride, stride_y=stride_y if stride_y > 0 else stride,
        padding=padding, groups=groups, dilation=dilation,
        batch_normalize=section.get_bool("batch_normalize", False),
        activation=get_activation(section, "logistic"),
        flipped=section.get_bool("flipped", False),
    )


class ConvolutionalLayer(DarknetLayer):
    kind = "convolutional"

    def __init__(self, opts: ConvolutionalOptions, ctx: BuildContext):
        ctx.require_image_input()
        c, h, w = ctx.input_shape.c, ctx.input_shape.h, ctx.input_shape.w
        if c % opts.groups or opts.filters % opts.groups:
            raise ctx.error(f"groups={opts.groups} must divide the input channels ({c}) and filters "
                            f"({opts.filters})")
        out_h = (h + 2 * opts.padding - opts.size) // opts.stride_y + 1
        out_w = (w + 2 * opts.padding - opts.size) // opts.stride_x + 1
        if out_h < 1 or out_w < 1:
            raise ctx.error(f"a {opts.size}x{opts.size} kernel does not fit the {w}x{h} input")
        ctx.require_countable(opts.filters * (c // opts.groups) * opts.size ** 2)
        super().__init__(ctx, Shape(opts.filters, out_h, out_w))
        self.options = opts
        self.conv = UninitializedConv2d(c, opts.filters, opts.size, (opts.stride_y, opts.stride_x),
                              padding=opts.padding * opts.dilation, dilation=opts.dilation,
                              groups=opts.groups, bias=not opts.batch_normalize)
        self.bn = BatchNorm(opts.filters, ctx.flavor) if opts.batch_normalize else None
        self.folded = False           # batch norm folded into conv (fuse_): the .weights arrays are gone
        self.prepacked = None         # fuse_: fused_conv.PrepackedWeights, the inference kernel's weights
        self._init_like_darknet(c // opts.groups, ctx.flavor, ctx.draw_weights)

    def _init_like_darknet(self, c_per_group: int, flavor: Flavor, draw: bool) -> None:
        if self.conv.weight.is_meta:
            # no values to draw (the memory estimate builds on the meta device), and drawing there would route
            # through torch's reference implementations and import torch._dynamo (seconds of start-up)
            return
        scale = (2.0 / (self.options.size ** 2 * c_per_group)) ** 0.5
        with torch.no_grad():
            if not draw:                   # every value is loaded next: a memset, not a random draw
                self.conv.weight.zero_()
            elif flavor.pjreddie:
                self.conv.weight.normal_(0.0, 1.0).mul_(scale)
            else:
                self.conv.weight.uniform_(-1.0, 1.0).mul_(scale)
            if self.conv.bias is not None:
                self.conv.bias.zero_()

    @property
    def biases(self) -> torch.Tensor:
        """Darknet's `biases`: the conv bias, or BN β when batch-normalised."""
        return self.bn.bias if self.bn is not None else self.conv.bias

    def _strided_1x1(self) -> bool:
        """PyTorch's CPU path for a strided 1x1 kernel without padding visits every input pixel (seconds for
        a stride-32 conv on a batch of 416x416 images); such a kernel only reads every stride-th pixel, so it
        is applied to those pixels alone (same products and sums, same output)."""
        o = self.options
        return o.size == 1 and o.padding == 0 and (o.stride_x > 1 or o.stride_y > 1)

    def _convolve(self, x):
        o = self.options
        if self._strided_1x1():
            return F.conv2d(x[:, :, ::o.stride_y, ::o.stride_x], self.conv.weight, self.conv.bias,
                            groups=o.groups)
        return self.conv(x)

    def forward(self, x, outputs):
        if self.prepacked is not None and fused_conv.runs_on(x):
            return self._inference_forward(x)
        z = self._convolve(x)
        if self.bn is not None:
            z = self.bn(z)
        # without autograd nobody else holds z: the activation can overwrite it instead of allocating
        return activate(z, self.options.activation, in_place=not torch.is_grad_enabled())

    def _inference_forward(self, x):
        """The fused layer on the CPU: one oneDNN pass (fused_conv), the activation in place if not fused."""
        o, stride = self.options, self.conv.stride
        if self._strided_1x1():
            x, stride = x[:, :, ::o.stride_y, ::o.stride_x], (1, 1)
        y, activated = fused_conv.convolve(self.conv, self.prepacked, x, o.activation, stride)
        return y if activated else activate(y, o.activation, in_place=True)

    def fuse_(self) -> None:
        """Fold the batch norm into the convolution, as AlexeyAB's `fuse_conv_batchnorm` does before
        `detector test/map/demo`: one convolution with scaled weights and a bias, no normalisation pass. The
        layer then holds other numbers than its `.weights` arrays, so it refuses to be saved. On the CPU it
        then runs on oneDNN with prepacked weights and the activation fused (:mod:`.fused_conv`)."""
        if fused_conv.available():
            self.prepacked = fused_conv.PrepackedWeights()
        if self.bn is None:
            return
        scale, shift = self.bn.folded()
        weight = self.conv.weight
        with torch.no_grad():
            weight.mul_(scale.to(weight.dtype).view(-1, 1, 1, 1))
        self.conv.bias = nn.Parameter(shift.to(weight.dtype), requires_grad=False)
        self.bn, self.folded = None, True

    def darknet_arrays(self):
        if self.folded:
            raise WeightsError(f"layer {self.index} [convolutional] has its batch norm folded into the weights "
                               "for inference; save the network it was fused from")
        arrays = [self.biases]
        if self.bn is not None:
            arrays += [self.bn.weight, self.bn.running_mean, self.bn.running_var]
        return arrays + [self.conv.weight]

    def describe(self):
        o = self.options
        stride = f"{o.stride_x}" if o.stride_x == o.stride_y else f"{o.stride_x}x{o.stride_y}"
        return f"conv {o.filters:5d} {o.size} x {o.size} / {stride}"
