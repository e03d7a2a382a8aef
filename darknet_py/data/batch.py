"""A training batch on its way to the network: built by a loader worker, handed over, turned into the network's
float input on the training device.

Images stay 8-bit wherever the augmentation is 8-bit (AlexeyAB with OpenCV, mosaic included): a batch of
uint8 is a quarter of the bytes to build, hand between processes and copy to an accelerator. Slots whose
values are not 8-bit (pjreddie, AB without OpenCV, mixup blends) make the whole batch float32, the 8-bit
slots converted exactly as the pipeline always did (:func:`~darknet_py.data.image.unit_float`).

In a worker process the batch is written straight into shared memory, so handing it to the training process
moves no pixels (PyTorch otherwise copies every tensor it sends into shared memory)."""
from __future__ import annotations

from typing import NamedTuple, Sequence, Union

import numpy as np
import torch
from torch.utils.data import get_worker_info

from .image import as_float


class DetectionBatch(NamedTuple):
    images: torch.Tensor        # (B, C, H, W) uint8 (0..255) or float32 RGB in [0, 1]: see network_input
    truth: torch.Tensor         # (B, max_boxes, 5 | 6) float32, Darknet truth rows, zero-padded
    paths: list                 # per slot, the image path(s) used (several with mixup/mosaic)
    iteration: int


def stack_images(images: Sequence[np.ndarray]) -> torch.Tensor:
    """(B, C, H, W): uint8 when every slot is, else float32 (8-bit slots converted by as_float)."""
    eight_bit = all(image.dtype == np.uint8 for image in images)
    out = _batch_tensor((len(images),) + images[0].shape, torch.uint8 if eight_bit else torch.float32)
    view = out.numpy()
    for slot, image in enumerate(images):
        view[slot] = image if eight_bit else as_float(image)
    return out


def stack_truth(truth: Sequence[np.ndarray]) -> torch.Tensor:
    out = _batch_tensor((len(truth),) + truth[0].shape, torch.float32)
    np.stack(truth, out=out.numpy())
    return out


def _batch_tensor(shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor, in shared memory when built by a loader worker (as PyTorch's default_collate
    does, so that sending it to the training process does not copy it)."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(int(np.prod(shape)))
    return torch.empty(0, dtype=dtype).new(storage).view(shape)


def network_input(images: torch.Tensor, device: Union[str, torch.device], dtype: torch.dtype = torch.float32
                  ) -> torch.Tensor:
    """The network's float input on ``device``: 8-bit batches travel as uint8 and are divided by 255 there.
    The divisor is a tensor on the device, not a Python number: CUDA turns division by a host scalar into a
    multiplication by its reciprocal, which is not always the correctly rounded quotient the pipeline (and
    Darknet) computes; true float32 division gives exactly :func:`~darknet_py.data.image.unit_float`'s values."""
    if images.dtype != torch.uint8:
        return images.to(device, dtype, non_blocking=True)
    pixels = images.to(device, non_blocking=True).to(torch.float32)
    return pixels.div_(torch.tensor(255.0, dtype=torch.float32, device=pixels.device)).to(dtype)
