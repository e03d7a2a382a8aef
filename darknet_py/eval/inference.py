"""Batched inference over many images: a prefetching loader and one network forward per batch.

Worker processes decode and resize/letterbox each image (the very functions the one-image path uses, so the
network sees the same pixels); the main process stacks ``batch`` of them, runs the network once and turns each
slot of the output into that image's detections. Darknet's validation commands overlap loading and the network
the same way (4 loader threads); the batch is darknet_py's addition, and results do not depend on it."""
from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import torch

from ..data.image import check_bgr_image, image_from_bgr, load_image
from ..device import cpu_cores
from ..errors import DarknetError
from .detect import get_network_boxes, network_predict, nms_settings, prepare_image
from .detections import DetectionArrays
from .nms import apply_nms

Source = Union[str, os.PathLike, np.ndarray]
CUDA_BATCH = 32
CPU_BATCH_SMALL_INPUT = (4, 256 * 256)   # (batch, largest input area it is used for)


def default_batch(device: Union[str, torch.device], network=None) -> int:
    """Images per forward when `--batch` is not given. A GPU wants many at once. On one CPU thread batching
    pays only for small inputs (tiny3 at 128x128: 1.8x faster per image at batch 4; yolov3-tiny at 416x416:
    slower), so a CPU batches 4 only up to 256x256."""
    if torch.device(device).type == "cuda":
        return CUDA_BATCH
    batch, largest = CPU_BATCH_SMALL_INPUT
    small = network is not None and network.net_options.width * network.net_options.height <= largest
    return batch if small else 1


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """One input ready for the network, or the error that kept it from being read."""
    index: int
    source: Union[str, int]              # the path, or the position of an array input
    width: int                           # of the original image, pixels
    height: int
    sized: Optional[np.ndarray]          # (C, net_h, net_w) float32
    image: Optional[np.ndarray] = None   # the original (C, H, W) float32 RGB, when asked for
    error: Optional[DarknetError] = None


@dataclass(frozen=True, eq=False)
class DetectedImage:
    """One image's detections (after NMS), or the error that kept it from being read (``detections`` None)."""
    index: int
    source: Union[str, int]
    width: int
    height: int
    detections: Optional[DetectionArrays]
    image: Optional[np.ndarray] = None
    error: Optional[DarknetError] = None


class _Images:
    """Decode + resize/letterbox of one source, run in a loader worker. An unreadable image comes back as
    its error (raising inside a worker would lose the error's file and fields)."""

    def __init__(self, sources: Sequence[Source], channels: int, net_w: int, net_h: int, letter_box: bool,
                 keep_images: bool):
        self.sources, self.channels, self.keep_images = sources, channels, keep_images
        self.size, self.letter_box = (net_w, net_h), letter_box

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> PreparedImage:
        source = self.sources[index]
        name = index if isinstance(source, np.ndarray) else str(source)
        try:
            image = image_from_bgr(source, self.channels) if isinstance(source, np.ndarray) \
                else load_image(source, self.channels)
        except DarknetError as error:
            return PreparedImage(index, name, 0, 0, None, error=error)
        _, height, width = image.shape
        sized = prepare_image(image, *self.size, self.letter_box)
        return PreparedImage(index, name, width, height, sized, image if self.keep_images else None)


def _as_list(items):
    return items


def default_workers() -> int:
    """Image loader processes when not told. On 2 cores or fewer none: a loader process would take turns with
    the network's threads on the same cores, and decoding in the main process is faster there
    (`bench/bench_infer.py`, bench/RESULTS.md). With more cores, up to 4, one core left to the network."""
    cores = cpu_cores()
    return 0 if cores <= 2 else min(4, cores - 1)


def prepared_batches(network, sources: Sequence[Source], letter_box: bool, batch: int = 1,
                     workers: Optional[int] = None, keep_images: bool = False,
                     desc: Optional[str] = None) -> Iterator[list[PreparedImage]]:
    """``sources`` prepared for ``network`` in order, ``batch`` at a time, by ``workers`` processes (default
    :func:`default_workers`; 0 = in this process). ``desc``: show a progress bar on stderr."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    for source in sources:
        if not isinstance(source, (str, os.PathLike)):
            check_bgr_image(source)
    workers = default_workers() if workers is None else workers
    if len(sources) <= batch:
        workers = 0                     # nothing to overlap: a worker would only add its start-up
    dataset = _Images(sources, network.net_options.channels, network.net_options.width, network.net_options.height, letter_box,
                      keep_images)
    progress = _progress_bar(len(sources), desc) if desc else nullcontext()
    with progress:
        for items in _batches(dataset, batch, workers):
            yield items
            if desc:
                progress.update(len(items))


def _batches(dataset: "_Images", batch: int, workers: int) -> Iterator[list[PreparedImage]]:
    """``batch`` prepared images at a time: here (no DataLoader, whose import and set-up a one-image
    `detector test` would pay for nothing), or by ``workers`` processes."""
    if not workers:
        for start in range(0, len(dataset), batch):
            yield [dataset[i] for i in range(start, min(start + batch, len(dataset)))]
        return
    from torch.utils.data import DataLoader
    # the training loader's helpers, imported only here: that module brings the augmentation (and numba)
    from ..data.loader import forking_workers, worker_init
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=_as_list,
                        worker_init_fn=worker_init, prefetch_factor=max(2, 8 // batch))
    with forking_workers():
        batches = iter(loader)
    yield from batches


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False, disable=None,
                dynamic_ncols=True)


def predict_batch(network, items: list[PreparedImage]) -> dict[int, torch.Tensor]:
    """One forward of ``items`` (all readable) stacked in order; slot k of the outputs is the k-th of them."""
    return network_predict(network, np.stack([item.sized for item in items]))


def predicted(network, sources: Sequence[Source], letter_box: bool, batch: int = 1,
              workers: Optional[int] = None, keep_images: bool = False, desc: Optional[str] = None,
              skip_errors: bool = False) -> Iterator[tuple[PreparedImage, Optional[dict[int, torch.Tensor]], int]]:
    """(prepared image, the batch's network outputs, its slot in them) for each source in order. An
    unreadable image raises its error, or with ``skip_errors`` comes with outputs None."""
    for items in prepared_batches(network, sources, letter_box, batch, workers, keep_images, desc):
        readable = [item for item in items if item.error is None]
        outputs = predict_batch(network, readable) if readable else None
        slot = 0
        for item in items:
            if item.error is not None:
                if not skip_errors:
                    raise item.error
                yield item, None, -1
                continue
            yield item, outputs, slot
            slot += 1


def detect_images(network, sources: Sequence[Source], thresh: float, nms: float = .45,
                  letter_box: bool = False, batch: int = 1, relative: bool = True,
                  workers: Optional[int] = None, keep_images: bool = False, skip_errors: bool = False,
                  desc: Optional[str] = None) -> Iterator[DetectedImage]:
    """Darknet's detections of every source (an image path, or an (H, W, 3) BGR uint8 array as
    `cv2.imread` returns), in order; each equals :func:`~darknet_py.eval.detect.detect_arrays` of the
    decoded image whatever ``batch`` is.

    ``thresh``, ``nms``, ``letter_box``, ``relative``: as for `detect_arrays`. ``keep_images``: also hand
    back each decoded (C, H, W) image (to draw on). An unreadable image raises its ImageError, or with
    ``skip_errors`` comes back as a DetectedImage with ``error`` set and no detections."""
    kind, beta = nms_settings(network)
    for item, outputs, slot in predicted(network, sources, letter_box, batch, workers, keep_images, desc,
                                         skip_errors):
        if item.error is not None:
            yield DetectedImage(item.index, item.source, 0, 0, None, error=item.error)
            continue
        dets = get_network_boxes(network, outputs, item.width, item.height, thresh, relative, letter_box,
                                 batch_index=slot)
        yield DetectedImage(item.index, item.source, item.width, item.height, apply_nms(dets, nms, kind, beta),
                            item.image)
