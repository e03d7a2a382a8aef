"""`.weights` files (spec §6) and `.pt` checkpoints.

A `.weights` file is a header (int32 major, minor, revision; uint64 `seen`, or uint32 when
major·10+minor < 2) followed by every parameterised layer's float32 arrays in layer order (§6.2)."""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .errors import WeightsError

AB_VERSION = (0, 2, 5)


@dataclass(frozen=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int

    @property
    def wide_seen(self) -> bool:
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
        return WeightsHeader(self.major, self.minor, self.revision, seen)


@dataclass(frozen=True)
class LoadReport:
    header: WeightsHeader
    layers_loaded: int      # parameterised layers read from the file
    layers_total: int       # parameterised layers the cfg has (within cutoff)
    partial: bool


def parse_header(raw: bytes, path: str) -> WeightsHeader:
    if len(raw) == 0:
        raise WeightsError("the weights file is empty", file=path)
    if len(raw) < 16:
        raise WeightsError(f"the weights file has only {len(raw)} bytes, less than a header", file=path)
    major, minor, revision = struct.unpack_from("<3i", raw)
    wide = major * 10 + minor >= 2
    if not (0 <= major < 100000 and 0 <= minor < 100000 and 0 <= revision < 100000):
        raise WeightsError(f"not a Darknet weights file: header version {major}.{minor}.{revision} "
                           "is implausible", file=path,
                           hint="is this a .pt file, an image, or a file from another framework?")
    if wide and len(raw) < 20:
        raise WeightsError("the weights file ends inside its 20-byte header", file=path)
    seen = struct.unpack_from("<Q" if wide else "<I", raw, 12)[0]
    return WeightsHeader(major, minor, revision, seen)


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
    """Load a `.weights` file. A file that stops exactly at a layer boundary is a partial (backbone)
    file: the layers it holds are loaded, the rest keep their values. Ending inside a layer or having bytes
    left over is an error."""
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise WeightsError("file not found", file=path) from None
    except OSError as exc:
        raise WeightsError(f"cannot read file: {exc.strerror}", file=path) from None
    header = parse_header(raw, path)
    payload_bytes = len(raw) - header.nbytes
    if payload_bytes % 4:
        raise WeightsError(f"payload of {payload_bytes} bytes is not a whole number of float32 values",
                           file=path)
    data = np.frombuffer(raw, dtype="<f4", offset=header.nbytes)
    layers = _param_layers(network, cutoff, for_load=True)
    pos, loaded = 0, 0
    for index, layer, arrays in layers:
        need = sum(a.numel() for a in arrays)
        if pos == data.size:
            break
        if pos + need > data.size:
            rest = sum(sum(a.numel() for a in arr) for _, _, arr in layers[loaded:])
            raise WeightsError(f"file ends inside layer {index} [{layer.kind}]: cfg needs {rest} floats from "
                               f"layer {index} on, file has {data.size - pos}", file=path,
                               hint="the weights do not belong to this cfg (or the file is truncated)")
        _assign(layer, arrays, data[pos:pos + need], header)
        pos += need
        loaded += 1
    if pos < data.size:
        total = sum(sum(a.numel() for a in arr) for _, _, arr in layers)
        raise WeightsError(f"file has {data.size - pos} floats left over: cfg needs {total} floats from layer 0 "
                           f"on, file has {data.size}", file=path,
                           hint="the weights do not belong to this cfg (different classes/filters?)")
    network.header = header
    network.seen = header.seen
    return LoadReport(header, loaded, len(layers), loaded < len(layers))


def _assign(layer, arrays: list[torch.Tensor], values: np.ndarray, header: WeightsHeader) -> None:
    pos = 0
    with torch.no_grad():
        for tensor in arrays:
            n = tensor.numel()
            chunk = torch.from_numpy(values[pos:pos + n].copy())
            pos += n
            if layer.kind == "convolutional" and tensor is layer.conv.weight and layer.options.flipped:
                chunk = chunk.view(-1, layer.options.filters).t().contiguous()
            if layer.kind == "connected" and tensor is layer.linear.weight and header.transpose:
                chunk = chunk.view(tensor.shape[1], tensor.shape[0]).t().contiguous()
            tensor.copy_(chunk.view(tensor.shape))


def weights_payload(network, cutoff: Optional[int] = None) -> np.ndarray:
    arrays = [a.detach().reshape(-1).to("cpu", torch.float32)
              for _, _, layer_arrays in _param_layers(network, cutoff, for_load=False) for a in layer_arrays]
    if not arrays:
        return np.zeros(0, dtype="<f4")
    return torch.cat(arrays).numpy().astype("<f4", copy=False)


def save_weights(network, path: str | os.PathLike, cutoff: Optional[int] = None,
                 header: Optional[WeightsHeader] = None) -> None:
    """Write a `.weights` file atomically (temp file + fsync + rename). Keeps the header read from the
    loaded file (so load -> save is byte-identical); a fresh network gets AB's 0.2.5 header. ``seen`` is
    the network's current `seen`."""
    if header is None:
        header = network.header or WeightsHeader(*AB_VERSION, 0)
        header = header.with_seen(network.seen)
    write_atomically(path, header.pack() + weights_payload(network, cutoff).tobytes())


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Never leave a half-written file under ``path``: write a temp file beside it, fsync, rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"cannot write weights: {exc.strerror}", file=str(path)) from None


# -- .pt checkpoints ----------------------------------------------------------------------------------

def save_pt(network, path: str | os.PathLike) -> None:
    """A `.pt` holds the state dict, the `.weights` header, `seen` and the cfg text; plain types only, so
    it loads with ``torch.load(weights_only=True)``."""
    header = network.header or WeightsHeader(*AB_VERSION, network.seen)
    payload = {
        "format": "darknet_py/1",
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "header": [header.major, header.minor, header.revision],
        "seen": int(network.seen),
        "cfg": network.cfg.text,
    }
    tmp = Path(path).with_name(f".{Path(path).name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_pt(network, path: str | os.PathLike) -> None:
    path = str(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError("file not found", file=path) from None
    except Exception as exc:  # torch raises many types for non-checkpoint files
        raise WeightsError(f"not a darknet_py .pt checkpoint ({type(exc).__name__})", file=path) from None
    if not isinstance(payload, dict) or payload.get("format") != "darknet_py/1":
        raise WeightsError("not a darknet_py .pt checkpoint (no 'format: darknet_py/1')", file=path)
    state = payload["state_dict"]
    own = network.state_dict()
    mismatched = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    if mismatched or set(state) - set(own):
        raise WeightsError(f"checkpoint does not fit this cfg ({len(mismatched)} tensors missing or of "
                           f"another shape, first: {(mismatched or sorted(set(state) - set(own)))[0]})", file=path)
    network.load_state_dict(state)
    network.seen = int(payload["seen"])
    network.header = WeightsHeader(*payload["header"], network.seen)


def load_any(network, path: str | os.PathLike, cutoff: Optional[int] = None) -> Optional[LoadReport]:
    """`.pt` by extension, else `.weights`."""
    if str(path).endswith(".pt"):
        load_pt(network, path)
        return None
    return load_weights(network, path, cutoff=cutoff)
