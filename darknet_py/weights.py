"""`.weights` files (spec §6) and `.pt` checkpoints.

A `.weights` file is a header (int32 major, minor, revision; uint64 `seen`, or uint32 when
major·10+minor < 2) followed by every parameterised layer's float32 arrays in layer order (§6.2)."""
from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .atomic_write import save_with_torch, write_atomically
from .errors import WeightsError
from .flavor import AB, Flavor, flavor_of

PT_FORMAT = "darknet_py/1"


@dataclass(frozen=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int
    seen_bytes: Optional[int] = None   # 4 or 8 as read; None: by the version (AB's rule)

    @property
    def wide_seen(self) -> bool:
        if self.seen_bytes is not None:
            return self.seen_bytes == 8
        return self.major * 10 + self.minor >= 2

    @property
    def nbytes(self) -> int:
        return 20 if self.wide_seen else 16

    @property
    def transpose(self) -> bool:
        """Old files with major or minor > 1000 store [connected] matrices transposed."""
        return self.major > 1000 or self.minor > 1000

    def pack(self) -> bytes:
        fmt = "<3iQ" if self.wide_seen else "<3iI"
        return struct.pack(fmt, self.major, self.minor, self.revision, self.seen)

    def with_seen(self, seen: int) -> "WeightsHeader":
        return WeightsHeader(self.major, self.minor, self.revision, seen, self.seen_bytes)


def new_header(flavor: Flavor | str, seen: int) -> WeightsHeader:
    """The header a fork writes for a network it did not load from a file (spec §6.1, §15.1)."""
    return WeightsHeader(*flavor_of(flavor).weights_version, seen)


@dataclass(frozen=True)
class LoadReport:
    header: WeightsHeader
    layers_loaded: int      # parameterised layers read from the file
    layers_total: int       # parameterised layers the cfg has (within cutoff)
    loaded_upto: int        # layers 0 .. loaded_upto-1 came from the file (AB's "Loaded N layers")
    partial: bool

    def describe(self) -> str:
        text = f"Loaded {self.loaded_upto} layers from weights-file ({self.layers_loaded} with parameters)"
        if self.partial:
            text += f"; {self.layers_total - self.layers_loaded} layers with parameters keep their initial values"
        return text


def parse_header(raw: bytes, path: str, flavor: Flavor | str = AB) -> WeightsHeader:
    """`seen` is 8 bytes when major·10+minor >= 2; pjreddie also requires major and minor < 1000."""
    if len(raw) == 0:
        raise WeightsError("the weights file is empty", file=path)
    if len(raw) < 16:
        raise WeightsError(f"the weights file has only {len(raw)} bytes, less than a header", file=path)
    major, minor, revision = struct.unpack_from("<3i", raw)
    if not (0 <= major < 100000 and 0 <= minor < 100000 and 0 <= revision < 100000):
        raise WeightsError(f"not a Darknet weights file: header version {major}.{minor}.{revision} "
                           "is implausible", file=path,
                           hint="is this a .pt file, an image, or a file from another framework?")
    small = major < 1000 and minor < 1000
    wide = major * 10 + minor >= 2 and (small or not flavor_of(flavor).seen_wide_below_1000_only)
    if wide and len(raw) < 20:
        raise WeightsError("the weights file ends inside its 20-byte header", file=path)
    seen = struct.unpack_from("<Q" if wide else "<I", raw, 12)[0]
    return WeightsHeader(major, minor, revision, seen, 8 if wide else 4)


def _layer_arrays(layer, for_load: bool) -> list[torch.Tensor]:
    """The arrays of one layer in file order, honouring dontload/dontloadscales (load) and dontsave."""
    common = layer.common
    if for_load and common.dontload:
        return []
    if not for_load and common.dontsave:
        return []
    arrays = layer.darknet_arrays()
    bn = getattr(layer, "bn", None)
    if for_load and common.dontloadscales and bn is not None and layer.kind in ("convolutional", "connected"):
        skip = {id(bn.weight), id(bn.running_mean), id(bn.running_var)}
        arrays = [a for a in arrays if id(a) not in skip]
    return arrays


def _param_layers(network, cutoff: Optional[int], for_load: bool) -> list[tuple[int, object, list]]:
    end = len(network.layers) if cutoff is None else min(cutoff, len(network.layers))
    found = []
    for index in range(end):
        layer = network.layers[index]
        arrays = _layer_arrays(layer, for_load)
        if arrays:
            found.append((index, layer, arrays))
    return found


def load_weights(network, path: str | os.PathLike, cutoff: Optional[int] = None) -> LoadReport:
    """Load a `.weights` file into the layers before ``cutoff`` (default: all).

    A file that stops exactly at a layer boundary is a partial (backbone) file: the layers it holds are
    loaded, the rest keep their values (Darknet does the same). Ending inside a layer, or having floats left
    over when no ``cutoff`` is given, is an error: the file does not belong to this cfg. The sizes are checked
    before anything is read, so a bad file leaves the network untouched."""
    path = str(path)
    layers = _param_layers(network, cutoff, for_load=True)
    sizes = [sum(a.numel() for a in arrays) for _, _, arrays in layers]
    try:
        with open(path, "rb") as f:
            file_size = os.fstat(f.fileno()).st_size
            header = parse_header(f.read(20), path, network.net_options.flavor)
            payload_bytes = file_size - header.nbytes
            if payload_bytes % 4:
                raise WeightsError(f"payload of {payload_bytes} bytes is not a whole number of float32 values",
                                   file=path, hint="the file is truncated or not a Darknet weights file")
            loaded = _layers_in_file(layers, sizes, payload_bytes // 4, cutoff, path)
            f.seek(header.nbytes)
            for _, layer, arrays in layers[:loaded]:
                _read_layer(f, layer, arrays, header, path)
    except FileNotFoundError:
        raise WeightsError("file not found", file=path) from None
    except IsADirectoryError:
        raise WeightsError("is a directory, not a weights file", file=path) from None
    except OSError as exc:
        raise WeightsError(f"cannot read file: {exc.strerror}", file=path) from None
    network.header = header
    network.seen = header.seen
    end = len(network.layers) if cutoff is None else min(cutoff, len(network.layers))
    loaded_upto = layers[loaded][0] if loaded < len(layers) else end
    return LoadReport(header, loaded, len(layers), loaded_upto, loaded < len(layers))


def _layers_in_file(layers: list, sizes: list[int], floats: int, cutoff: Optional[int], path: str) -> int:
    """How many of ``layers`` a payload of ``floats`` holds; it must end at a layer boundary."""
    pos = 0
    for count, ((index, layer, _), need) in enumerate(zip(layers, sizes)):
        if pos == floats:
            return count
        if pos + need > floats:
            raise WeightsError(f"file ends inside layer {index} [{layer.kind}]: cfg needs {sum(sizes[count:])} "
                               f"floats from layer {index} on, file has {floats - pos}", file=path,
                               hint="the weights do not belong to this cfg (or the file is truncated)")
        pos += need
    if pos < floats and cutoff is None:
        raise WeightsError(f"file has {floats - pos} floats left over: cfg needs {sum(sizes)} floats from "
                           f"layer 0 on, file has {floats}", file=path,
                           hint="the weights do not belong to this cfg (different classes/filters?)")
    return len(layers)


def _read_layer(f, layer, arrays: list[torch.Tensor], header: WeightsHeader, path: str) -> None:
    """Read one layer's arrays. Plain float32 CPU tensors are filled straight from the file (one copy, as
    fast as `numpy.fromfile`); the rest go through a buffer."""
    with torch.no_grad():
        for tensor in arrays:
            reorder = _file_order(layer, tensor, header)
            if reorder is None and _fillable_in_place(tensor):
                _read_into(f, tensor.detach().numpy(), path)
                continue
            buffer = np.empty(tensor.numel(), dtype="<f4")
            _read_into(f, buffer, path)
            values = torch.from_numpy(buffer.astype(np.float32, copy=False))
            tensor.copy_((values if reorder is None else reorder(values)).reshape(tensor.shape))


def _file_order(layer, tensor: torch.Tensor, header: WeightsHeader):
    """How to turn a file array into ``tensor``'s layout, when they differ (spec §6.3)."""
    if layer.kind == "convolutional" and tensor is layer.conv.weight and layer.options.flipped:
        return lambda v: v.view(-1, layer.options.filters).t()            # file: [(c/groups)·k·k][n]
    if layer.kind == "connected" and tensor is layer.linear.weight and header.transpose:
        return lambda v: v.view(tensor.shape[1], tensor.shape[0]).t()     # file: [inputs][outputs]
    return None


def _fillable_in_place(tensor: torch.Tensor) -> bool:
    # Darknet writes native floats; every platform it runs on is little-endian
    return (tensor.device.type == "cpu" and tensor.dtype == torch.float32 and tensor.is_contiguous()
            and sys.byteorder == "little")


def _read_into(f, array: np.ndarray, path: str) -> None:
    """Darknet's order is the array's logical (C) order, whatever its memory layout (a channels_last network)."""
    contiguous = array if array.flags.c_contiguous else np.empty(array.shape, array.dtype)
    target = memoryview(contiguous).cast("B")
    if f.readinto(target) != len(target):
        raise WeightsError("the file ended early (was it changed while being read?)", file=path)
    if contiguous is not array:
        array[...] = contiguous


def weights_payload(network, cutoff: Optional[int] = None,
                    header: Optional[WeightsHeader] = None) -> np.ndarray:
    """Every saved array in file order as one float32 vector. ``header`` with the transpose flag writes
    [connected] matrices transposed again, so a file read that way is written back the same way."""
    transpose = header is not None and header.transpose
    arrays = []
    for _, layer, layer_arrays in _param_layers(network, cutoff, for_load=False):
        for a in layer_arrays:
            if transpose and layer.kind == "connected" and a is layer.linear.weight:
                a = a.t()
            arrays.append(a.detach().reshape(-1).to("cpu", torch.float32))
    if not arrays:
        return np.zeros(0, dtype="<f4")
    return torch.cat(arrays).numpy().astype("<f4", copy=False)


def save_weights(network, path: str | os.PathLike, cutoff: Optional[int] = None,
                 header: Optional[WeightsHeader] = None) -> None:
    """Write a `.weights` file atomically (temp file + fsync + rename). Keeps the header read from the
    loaded file (so load -> save is byte-identical); a network that was not loaded from a file gets its
    fork's header (AB 0.2.5, PJ 0.2.0). ``seen`` is the network's current `seen`."""
    if header is None:
        header = (network.header or new_header(network.net_options.flavor, 0)).with_seen(network.seen)
    write_atomically(path, header.pack() + weights_payload(network, cutoff, header).tobytes())


# -- .pt checkpoints ----------------------------------------------------------------------------------

def save_pt(network, path: str | os.PathLike) -> None:
    """A `.pt` holds the state dict, the `.weights` header, `seen` and the cfg text; plain types only, so
    it loads with ``torch.load(weights_only=True)``."""
    header = network.header or new_header(network.net_options.flavor, network.seen)
    payload = {
        "format": PT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "header": [header.major, header.minor, header.revision, header.nbytes - 12],
        "seen": int(network.seen),
        "cfg": network.cfg.text,
    }
    save_with_torch(payload, path)


def load_pt(network, path: str | os.PathLike) -> None:
    """Load a `.pt` written by :func:`save_pt` (only plain tensors and types are unpickled)."""
    path = str(path)
    payload = _read_pt(path)
    state = payload["state_dict"]
    own = network.state_dict()
    mismatched = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    if mismatched or set(state) - set(own):
        first = (mismatched or sorted(set(state) - set(own)))[0]
        raise WeightsError(f"checkpoint does not fit this cfg ({len(mismatched)} tensors missing or of "
                           f"another shape, first: {first})", file=path,
                           hint="was it written for another cfg? its cfg text is stored under 'cfg'")
    network.load_state_dict(state)
    network.seen = int(payload["seen"])
    major, minor, revision, *seen_bytes = payload["header"]
    network.header = WeightsHeader(major, minor, revision, network.seen, *seen_bytes[:1])


def _read_pt(path: str) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError("file not found", file=path) from None
    except IsADirectoryError:
        raise WeightsError("is a directory, not a checkpoint", file=path) from None
    except Exception as exc:  # torch raises many types for non-checkpoint files
        raise WeightsError(f"not a darknet_py .pt checkpoint ({type(exc).__name__})", file=path,
                           hint="convert .weights files with `darknet_py convert CFG IN.weights OUT.pt`") from None
    if not isinstance(payload, dict) or payload.get("format") != PT_FORMAT:
        raise WeightsError(f"not a darknet_py .pt checkpoint (no 'format: {PT_FORMAT}')", file=path)
    header, state, seen = payload.get("header"), payload.get("state_dict"), payload.get("seen")
    if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
            and isinstance(seen, int) and seen >= 0 and isinstance(header, (list, tuple))
            and len(header) in (3, 4) and all(isinstance(v, int) for v in header)):
        raise WeightsError("damaged darknet_py .pt checkpoint (state_dict, seen or header missing or of the "
                           "wrong type)", file=path)
    return payload


def load_any(network, path: str | os.PathLike, cutoff: Optional[int] = None) -> Optional[LoadReport]:
    """`.pt` by extension, else `.weights`."""
    if str(path).endswith(".pt"):
        load_pt(network, path)
        return None
    return load_weights(network, path, cutoff=cutoff)
