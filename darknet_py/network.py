"""The network: an ``nn.Module`` built layer by layer from a :class:`~darknet_py.config.cfg.CfgModel`.

Like Darknet's `network.c` it runs the layers in order; unlike it, it keeps a layer's output only while a
later layer still needs it (or the caller asked for it)."""
from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import nn

from .config.cfg import CfgModel, read_cfg
from .errors import warn
from .flavor import AB, DETECTION_KINDS, Flavor, last_detection_layer
from .layers import SECTION_KINDS, SECTIONS
from .layers.base import BuildContext, DarknetLayer, Shape
from .memory import MemoryEstimate, estimate_memory, require_memory
from .weights import load_any
from .weights_check import check_for_inference


class Network(nn.Module):
    def __init__(self, cfg: CfgModel, draw_weights: bool = True):
        """``draw_weights=False``: skip Darknet's random initialisation of the convolutions (zeros instead),
        for a caller that loads every parameter right after."""
        super().__init__()
        self.cfg = cfg
        self.net_options = cfg.net    # the [net] section's options (batch, size, flavor, lr ...)
        self.seen = 0                 # images trained on (Darknet `seen`)
        self.header = None            # WeightsHeader of the loaded .weights, kept for saving
        shapes: list[Shape] = []
        layers: list[DarknetLayer] = []
        shape = Shape(cfg.net.channels, cfg.net.height, cfg.net.width)
        for index, spec in enumerate(cfg.layers):
            ctx = BuildContext(index, shape, tuple(shapes), cfg.net, spec.file, spec.line, spec.kind, draw_weights)
            layer = SECTION_KINDS[spec.kind].layer(spec.options, ctx)
            layer.common = spec.common
            layers.append(layer)
            shape = layer.out_shape
            shapes.append(shape)
        self.layers = nn.ModuleList(layers)
        self._last_use = self._compute_last_use()
        self._release: dict[int, list[int]] = {}      # layer i -> outputs no layer after i reads
        for j, last in enumerate(self._last_use):
            self._release.setdefault(last, []).append(j)
        self.fused = False            # see fuse_
        self.memory_format = torch.contiguous_format     # of the input on the CPU (fuse_: channels_last)
        self.channels_last_everywhere = False            # channels_last_: on every device

    # -- structure ------------------------------------------------------------------------------
    @property
    def shapes(self) -> list[Shape]:
        return [layer.out_shape for layer in self.layers]

    @property
    def detection_indices(self) -> list[int]:
        return [i for i, layer in enumerate(self.layers) if layer.kind in DETECTION_KINDS]

    def detection_layers(self) -> list[DarknetLayer]:
        return [self.layers[i] for i in self.detection_indices]

    def last_detection_layer(self) -> Optional[DarknetLayer]:
        """Where Darknet's trainer takes jitter/random/max from (AB: the last yolo/region layer)."""
        return last_detection_layer(self.layers)

    def _compute_last_use(self) -> list[int]:
        last = list(range(1, len(self.layers) + 1))  # every output feeds the next layer
        for i, layer in enumerate(self.layers):
            for src in layer.sources:
                last[src] = max(last[src], i)
        return last

    def resize(self, width: int, height: int) -> None:
        """Change the input size (multiscale training); yolo layers re-normalise anchors to it."""
        for layer in self.layers:
            if hasattr(layer, "resize"):
                layer.resize(width, height)

    # -- running --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, keep: Optional[Iterable[int]] = None) -> dict[int, torch.Tensor]:
        """Run all layers on ``x`` (N, C, H, W). Returns ``{index: output}`` for the layers in ``keep``
        (default: the yolo/region layers)."""
        wanted = set(self.detection_indices if keep is None else keep)
        outputs: list[Optional[torch.Tensor]] = [None] * len(self.layers)
        release = self._release
        if x.dim() == 4 and (x.device.type == "cpu" or self.channels_last_everywhere):
            x = x.contiguous(memory_format=self.memory_format)
        for i, layer in enumerate(self.layers):
            if layer.kind in DETECTION_KINDS:
                x = x.contiguous()          # they view their input as (N, anchors, 5 + classes, H, W)
            x = layer(x, outputs)
            outputs[i] = x
            for j in release.get(i, ()):
                if j not in wanted:
                    outputs[j] = None
        return {i: outputs[i] for i in sorted(wanted)}

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output (for comparisons with Darknet's per-layer dumps)."""
        out = self.forward(x, keep=range(len(self.layers)))
        return [out[i] for i in range(len(self.layers))]

    def fuse_(self) -> "Network":
        """Turn this network into an inference network, in place: each layer folds what it can (batch norm
        into its convolution, as AlexeyAB's detector commands do) and the network goes to eval mode. Same
        outputs (to float32 rounding); it can no longer train or be saved (a folded layer refuses to give its
        `.weights` arrays), so fuse a copy (`copy.deepcopy`) of a network that is still trained or saved."""
        self.eval()
        for layer in self.layers:
            layer.fuse_()
        # channels_last: the oneDNN convolutions (layers/fused_conv.py) write (N, H, W, C) pixels whatever they
        # read, so every layer after the first works on that layout; the input is put in it too, so that a
        # cfg starting with another layer kind does the same (for a convolution first it costs nothing
        # measurable: 28.7 ms either way for yolov3-tiny, bench/RESULTS.md)
        self.memory_format = torch.channels_last
        self.fused = True
        return self

    def channels_last_(self) -> "Network":
        """Keep weights and activations in (N, H, W, C) order on every device (`detector train
        --channels-last`): the layout of GPU tensor-core convolutions, which otherwise transpose at each call.
        The same arithmetic in another order: in float64 the gradients agree to 1e-9 (7e-13 for yolov3), in
        float32 they differ by rounding (tests/train/test_train_channels_last.py)."""
        self.to(memory_format=torch.channels_last)
        self.memory_format = torch.channels_last
        self.channels_last_everywhere = True
        return self

    def summary(self) -> str:
        """Darknet's layer table (`layer filters size input output`)."""
        lines = ["layer     filters    size              input                output"]
        for i, layer in enumerate(self.layers):
            lines.append(f"{i:5d} {layer.describe():<40s} {str(layer.in_shape):>18s}   ->  {layer.out_shape}")
        return "\n".join(lines)


def meta_network(cfg: CfgModel) -> Network:
    """The network built on the meta device: its shapes and parameter counts, no storage."""
    with torch.device("meta"):
        return Network(cfg)


def check_memory(cfg: CfgModel, device: str, training: bool, images: int = 1,
                 network: Optional[Network] = None) -> MemoryEstimate:
    """Refuse a cfg whose network cannot fit in ``device``'s free memory, before allocating it: the network
    (``network``, else built from ``cfg`` by :func:`meta_network`) is estimated; ``images`` per inference
    forward pass."""
    network = network if network is not None else meta_network(cfg)
    return require_memory(estimate_memory(network, training, images), cfg, device, training)


def parse_cfg(path, flavor: Flavor | str = AB, batch: Optional[int] = None) -> CfgModel:
    """Read a `.cfg` with every layer kind darknet_py implements. ``batch`` overrides `[net] batch` and
    `subdivisions` (inference uses 1, as Darknet)."""
    return read_cfg(path, SECTIONS, flavor=flavor, batch=batch)


def load_network(cfg_path: str, weights_path: Optional[str] = None, flavor: Flavor | str = AB,
                 batch: Optional[int] = None, cutoff: Optional[int] = None, for_inference: bool = False,
                 fuse: bool = False) -> Network:
    """Parse a cfg, build the network and optionally load `.weights` or `.pt` parameters into it.
    ``for_inference``: refuse weights that do not reach the detection layers or hold NaN/Inf (a result
    from them would be silently meaningless). ``fuse``: the inference network (:meth:`Network.fuse_`:
    batch norm folded into the convolutions, eval mode), which cannot train or be saved."""
    cfg = parse_cfg(cfg_path, flavor=flavor, batch=batch)
    check_memory(cfg, "cpu", training=False)
    # inference refuses a file that leaves any layer unloaded, so drawing random values first is wasted time
    # (unless the cfg tells a layer not to load)
    loads_all = weights_path is not None and for_inference and cutoff is None and not any(
        spec.common.dontload or spec.common.dontloadscales for spec in cfg.layers)
    network = Network(cfg, draw_weights=not loads_all)
    if weights_path is not None:
        load_parameters(network, weights_path, cutoff=cutoff, for_inference=for_inference)
    return network.fuse_() if fuse else network


def load_parameters(network: Network, weights_path, cutoff: Optional[int] = None,
                    for_inference: bool = False) -> None:
    """Load `.weights` or `.pt` parameters into ``network`` (``for_inference``: see :func:`load_network`)."""
    report = load_any(network, weights_path, cutoff=cutoff)
    if for_inference:
        check_for_inference(network, report, str(weights_path))
    if report is not None and report.partial:
        # a backbone (*.conv.N) file: fine to train from, but the other layers are random
        warn(report.describe(), weights_path)
