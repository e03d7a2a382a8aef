"""A training batch on its way to the network: built by a loader worker, handed over, turned into the network's
float input on the training device.

Images stay 8-bit wherever the augmentation is 8-bit (AlexeyAB with OpenCV, mosaic included): a batch of
uint8 is a quarter of the bytes to build, hand between processes and copy to an accelerator. Slots whose
values are not 8-bit (pjreddie, AB without OpenCV, mixup blends) make the whole batch float32, the 8-bit
slots converted exactly as the pipeline always did (:func:`~darknet_py.data.image.unit_float`).

In a worker process the batch is written straight into shared memory, so handing it to the training process
moves no pixels (PyTorch otherwise copies every tensor it sends into shared memory)."""
from __future__ import annotations

import sys
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import get_worker_info

from .image import as_float


class DetectionBatch(NamedTuple):
    images: torch.Tensor        # (B, C, H, W) uint8 (0..255) or float32 RGB in [0, 1]: see network_input
    truth: torch.Tensor         # (B, max_boxes, 5 | 6) float32, Darknet truth rows, zero-padded
    paths: list                 # per slot, the image path(s) used (several with mixup/mosaic)
    iteration: int


def stack_images(images: Sequence[np.ndarray], buffers: Optional["BatchBuffers"] = None) -> torch.Tensor:
    """(B, C, H, W): uint8 when every slot is, else float32 (8-bit slots converted by as_float)."""
    eight_bit = all(image.dtype == np.uint8 for image in images)
    shape, dtype = (len(images),) + images[0].shape, torch.uint8 if eight_bit else torch.float32
    out = buffers.empty(shape, dtype) if buffers is not None else _batch_tensor(shape, dtype)
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


class BatchBuffers:
    """The image tensors of the batches a loader builds in the training process itself (no worker processes).
    A batch of 64 float32 images at 416 is 133 MB: glibc maps a block that large afresh for every batch and
    every page of it faults on first touch (about 1 ms per image, as much as the JPEG decode; issue #15). A
    previous batch's tensor is therefore written again, but only once nothing refers to it any more: not the
    batch, not a view of it, not a NumPy array over it. A batch someone keeps is never overwritten."""

    def __init__(self, keep: int = 2):
        self.keep = keep
        self._tensors: list[torch.Tensor] = []

    def empty(self, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        if get_worker_info() is not None:        # a worker: shared memory, handed over (and freed) by PyTorch
            return _batch_tensor(shape, dtype)
        self._tensors = [t for t in self._tensors if t.shape == shape and t.dtype == dtype]
        for index in range(len(self._tensors)):
            if self._only_here(index):
                return self._tensors[index]
        out = torch.empty(shape, dtype=dtype)
        self._tensors = [out] + self._tensors[:self.keep - 1]
        return out

    def _only_here(self, index: int) -> bool:
        """True when this list holds the only reference to the tensor and the tensor the only one to its
        memory (a view or a NumPy array over it would count)."""
        use_count = getattr(torch._C, "_storage_Use_Count", None)
        if use_count is None:                    # a torch without the counter: never reuse
            return False
        tensor = self._tensors[index]
        # references: the list, `tensor`, getrefcount's argument; storage users: the tensor, the temporary
        return sys.getrefcount(tensor) <= 3 and use_count(tensor.untyped_storage()._cdata) <= 2


def network_input(images: torch.Tensor, device: Union[str, torch.device], dtype: torch.dtype = torch.float32
                  ) -> torch.Tensor:
    """The network's float input on ``device``: 8-bit batches travel as uint8 and are divided by 255 there.
    The divisor is a tensor on the device, not a Python number: CUDA turns division by a host scalar into a
    multiplication by its reciprocal, which is not always the correctly rounded quotient the pipeline (and
    Darknet) computes; true float32 division gives exactly :func:`~darknet_py.data.image.unit_float`'s values.
    It is filled there (`torch.full`), not copied from the host (`torch.tensor`): a blocking upload would make
    the host wait for the GPU at every step (bench/host_syncs.py)."""
    if images.dtype != torch.uint8:
        return images.to(device, dtype, non_blocking=True)
    pixels = images.to(device, non_blocking=True).to(torch.float32)
    return pixels.div_(torch.full((), 255.0, dtype=torch.float32, device=pixels.device)).to(dtype)
