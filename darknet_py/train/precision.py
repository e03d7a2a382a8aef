"""The arithmetic a training run computes in: float32 like Darknet (spec §7.6) unless TF32 is allowed
(`--tf32`) or mixed precision asked for (`--amp`: the convolutions in bfloat16 or float16, the [yolo] layers
and their Darknet deltas in float32); cuDNN's convolution algorithms by its heuristics unless timing them is
asked for (`--cudnn-benchmark`: still float32, other rounding, 1.2x on an H200 in fp32, bench/RESULTS.md)."""
from __future__ import annotations

import torch


def set_precision(tf32: bool, cudnn_benchmark: bool = False) -> None:
    """float32 like Darknet unless TF32 is asked for; cuDNN times its algorithms per input shape only when
    ``cudnn_benchmark``."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = cudnn_benchmark


def amp_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 (float32's range: no loss scaling needed) where the device has it, else float16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def yolo_in_float32(network) -> None:
    """Under --amp the convolutions run in reduced precision, but the [yolo] layers and their Darknet deltas
    stay float32 (the deltas are built by exact index arithmetic on float32 tensors)."""
    for index in network.detection_indices:
        network.layers[index].register_forward_pre_hook(lambda layer, args: (args[0].float(), *args[1:]))
