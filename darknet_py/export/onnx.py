"""Writing an :class:`~.graph.ExportGraph` as an ONNX file with PyTorch's TorchScript-based exporter.

Why that exporter (``dynamo=False``): it needs only torch and gives a small, stable graph of plain ONNX ops for
these feed-forward models; the newer torch.export-based one needs the extra ``onnxscript`` package and adds
nothing here. When the export fails, each layer is exported alone to name the one at fault."""
from __future__ import annotations

import io
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import nn

from ..errors import ExportError, UsageError
from ..atomic_write import write_atomically
from .graph import INPUT_NAME, ExportGraph
from .opsets import DEFAULT_OPSET, OPSETS
INSTALL_HINT = "pip install 'darknet_py[onnx]' (installs onnx and onnxruntime)"


def require_onnx():
    """The `onnx` package (an optional dependency), or an error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the 'onnx' package, which is not installed", hint=INSTALL_HINT)
    return onnx


def export_onnx(network, path: str, batch: int = 1, dynamic_batch: bool = False, decode: bool = False,
                opset: int = DEFAULT_OPSET) -> tuple[str, ...]:
    """Write ``network`` (at its `[net]` size) to ``path`` as ONNX; returns the output names.

    Input ``images``: float32 NCHW RGB in [0, 1], ``batch`` images or, with ``dynamic_batch``, any number.
    Outputs: see :class:`~.graph.ExportGraph`. The file is checked with ``onnx.checker`` and written
    atomically (a failed export leaves no file)."""
    onnx = require_onnx()
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, got {batch}")
    if opset not in OPSETS:
        raise UsageError(f"--opset must be {OPSETS.start}..{OPSETS.stop - 1}, got {opset}")
    was_training = network.training
    graph = ExportGraph(network, decode).eval()   # export restores the wrapper's mode onto the network
    example = _example_input(network, 2 if dynamic_batch else batch)
    names = graph.output_names
    axes = {name: {0: "batch"} for name in (INPUT_NAME, *names)} if dynamic_batch else None
    buffer = io.BytesIO()
    try:
        _trace_to_onnx(graph, (example,), buffer, opset, input_names=[INPUT_NAME], output_names=list(names),
                       dynamic_axes=axes)
    except Exception as exc:   # the exporter raises several types (unsupported op, symbolic errors, ...)
        raise _located_error(network, example, opset, exc) from exc
    finally:
        network.train(was_training)
    try:
        onnx.checker.check_model(onnx.load_model_from_string(buffer.getvalue()))
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported model fails onnx.checker: {_first_line(exc)}", file=network.cfg.file)
    write_atomically(path, buffer.getvalue())
    return names


def _example_input(network, batch: int) -> torch.Tensor:
    device = next((p.device for p in network.parameters()), torch.device("cpu"))
    net = network.net_options
    # a traced batch of 1 could be folded into constants; dynamic batch is traced with 2
    return torch.full((batch, net.channels, net.height, net.width), 0.5, device=device)


def _trace_to_onnx(module: nn.Module, args: tuple, target, opset: int, **names) -> None:
    with warnings.catch_warnings(), _native_stdout_silenced():
        # the tracer warns about every shape it reads as a Python number; shapes other than the batch are
        # fixed in the exported graph by design (tests check batch 1 and 3 on a dynamic-batch export)
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, target, dynamo=False, opset_version=opset, **names)


@contextmanager
def _native_stdout_silenced() -> Iterator[None]:
    """The exporter's C++ side prints the whole graph to stdout when an export fails (its ONNX log is always
    switched on by torch's exporter); our error names the layer instead, so that dump is dropped."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class _LayerAlone(nn.Module):
    """One layer as a module of its inputs (the previous output and the outputs it refers to)."""

    def __init__(self, layer, count: int):
        super().__init__()
        self.layer, self.count = layer, count

    def forward(self, x: torch.Tensor, *sources: torch.Tensor) -> torch.Tensor:
        outputs: list[Optional[torch.Tensor]] = [None] * self.count
        for index, tensor in zip(self.layer.sources, sources):
            outputs[index] = tensor
        return self.layer(x, outputs)


def _failing_layer(network, example: torch.Tensor, opset: int) -> Optional[tuple[int, Exception]]:
    """The first layer that cannot be exported on its own, with the exporter's error."""
    with torch.no_grad():
        outputs = network.forward_all(example)
    for index, layer in enumerate(network.layers):
        x = example if index == 0 else outputs[index - 1]
        try:
            _trace_to_onnx(_LayerAlone(layer, len(outputs)).eval(),
                           (x, *(outputs[s] for s in layer.sources)), io.BytesIO(), opset)
        except Exception as exc:
            return index, exc
    return None


def _located_error(network, example: torch.Tensor, opset: int, exc: Exception) -> ExportError:
    found = _failing_layer(network, example, opset)
    if found is None:
        return ExportError(f"ONNX export (opset {opset}) failed: {_first_line(exc)}", file=network.cfg.file)
    index, layer_exc = found
    spec = network.cfg.layers[index]
    return ExportError(f"layer {index} [{spec.kind}] cannot be exported to ONNX (opset {opset}): "
                       f"{_first_line(layer_exc)}", file=spec.file, line=spec.line)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    # the exporter appends the offending node's whole IR ("[Caused by the value ...") to the line
    return text.splitlines()[0].split("  [Caused by")[0] if text else type(exc).__name__
