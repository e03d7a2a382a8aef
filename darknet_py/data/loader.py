"""Detector training batches (spec §11.1): every iteration draws its images independently and uniformly WITH
replacement from the train list — no epochs, no shuffled passes — and augments them per flavour
(:mod:`darknet_py.data.augment`).

Usage (what the training loop does)::

    loader = detection_loader(cfg, read_list(data.resolve("train")), seed=1, num_workers=4)
    for each iteration:
        if multiscale says so: loader.set_size(w, h); network.resize(w, h)
        batch = loader.next_batch()   # DetectionBatch(images (B,C,H,W) uint8|float32, truth (B,max,5|6), paths, iteration)
        images = network_input(batch.images, device)   # float32 in [0, 1] on the training device

Determinism: slot ``i`` of iteration ``n`` on rank ``r`` draws everything (image choice, crop, flip, HSV,
label shuffle, mixup/mosaic partners) from a generator seeded by ``(seed, r, n, i)``, and AB's per-chunk
mixup/mosaic switch from one seeded by ``(seed, r, n, chunk)``; a batch is therefore the same whatever the
number of worker processes. Chunks emulate Darknet's loader threads: the batch is cut into
``loader_threads`` contiguous chunks (AB with OpenCV: 6 per GPU; otherwise 64), each making its own switch.
With several processes (DDP), give every rank the same seed and rank=0 and let each take its ``slots`` of the
global batch: the union is then exactly the single-process batch.

An image that cannot be decoded is warned about once (per worker) and replaced by another draw from the same
generator. A missing label file is an image without objects (AB, with a warning). Errors about the user's
data (:class:`~darknet_py.errors.DarknetError`) raised in a worker are re-raised intact by ``next_batch``.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, NamedTuple, Optional, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..device import cpu_cores
from ..errors import DataFileError, DarknetError, ImageError, LabelError, warn
from . import kernels
from .augment import AugmentOptions, Sample, augment_options, chunk_mode, load_slot
from .batch import BatchBuffers, DetectionBatch, stack_images, stack_truth
from .heap import keep_freed_buffers
from .image import read_image_file, unit_float
from .labels import label_path, read_labels

MAX_DRAWS = 1000            # consecutive unreadable draws before giving up on the train list
CHUNK_STREAM, SLOT_STREAM = 0, 1


class BatchKey(NamedTuple):
    iteration: int
    slot: int
    width: int
    height: int


class _Failure(NamedTuple):
    """A DarknetError crossing the worker boundary with its fields (exceptions pickle only their message)."""
    error_type: type
    message: str
    file: Optional[str]
    line: Optional[int]
    value: Optional[str]
    hint: Optional[str]

    def reraise(self):
        raise self.error_type(self.message, file=self.file, line=self.line, value=self.value, hint=self.hint)


def slot_rng(seed: int, rank: int, iteration: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, rank, iteration], spawn_key=(stream, index)))


def chunk_of(slot: int, batch: int, threads: int) -> int:
    """Darknet thread i loads images [i·B/threads, (i+1)·B/threads) (integer division)."""
    return max(i for i in range(threads) if i * batch // threads <= slot)


class DetectionDataset(Dataset):
    """Map-style dataset keyed by :class:`BatchKey`; also the :class:`~darknet_py.data.augment.ImageSource`
    that draws and decodes images."""

    def __init__(self, paths: list[str], options: AugmentOptions, seed: int, batch: int, rank: int = 0,
                 loader_threads: Optional[int] = None, source: Optional[str] = None):
        if not paths:
            raise DataFileError("the train list names no images", file=source)
        self.paths = list(paths)
        self.source = source            # the train list file, for messages
        self.options = options
        self.seed, self.rank, self.batch = int(seed), int(rank), int(batch)
        self.loader_threads = loader_threads or (6 if options.decodes_u8 else 64)
        self._bad: dict[str, DarknetError] = {}     # image path -> why it was left out

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: BatchKey):
        try:
            opts = self.options.with_size(key.width, key.height)
            chunk = chunk_of(key.slot, self.batch, self.loader_threads)
            mode = chunk_mode(slot_rng(self.seed, self.rank, key.iteration, CHUNK_STREAM, chunk), opts)
            rng = slot_rng(self.seed, self.rank, key.iteration, SLOT_STREAM, key.slot)
            image, truth, used = load_slot(self, rng, opts, mode)
            return image, truth, used, key
        except DarknetError as exc:
            return _Failure(type(exc), exc.message, exc.file, exc.line, exc.value, exc.hint)

    def draw(self, rng: np.random.Generator) -> Sample:
        for _ in range(MAX_DRAWS):
            path = self.paths[int(rng.integers(len(self.paths)))]
            if path in self._bad:
                continue
            labels = label_path(path, self.options.flavor)
            try:
                pixels = self._decode(path)
                records = read_labels(labels, self.options.flavor)
            except (ImageError, LabelError) as exc:
                # a file deleted or spoiled while the run trains (the pre-training check saw it whole): the
                # run goes on without it; pjreddie aborts on a missing label file and loses the progress
                warn(f"{exc.message}; skipped during training, another image is drawn instead", file=exc.file,
                     line=exc.line)
                self._bad[path] = exc
                continue
            return Sample(path, pixels, records, labels)
        raise self._nothing_readable()

    def _nothing_readable(self) -> DarknetError:
        """The error when no draw found a readable image: the label files' own error when they are the only
        problem (pjreddie without label files: the label file and its hint), else one naming the list."""
        problems = list(self._bad.values())
        if problems and all(isinstance(p, LabelError) for p in problems):
            return problems[-1]
        return DataFileError(f"no readable image in {MAX_DRAWS} draws from the train list ({len(self._bad)} "
                             f"unreadable images seen, e.g. {str(problems[0]).splitlines()[0] if problems else ''})",
                             file=self.source)

    def _decode(self, path: str) -> np.ndarray:
        """Pixels as the pipeline wants them: uint8 (H, W[, C]) RGB for OpenCV, float32 (C, H, W) otherwise
        (the values of :func:`~darknet_py.data.image.load_image`). pjreddie always loads 3 channels."""
        grey = self.options.channels == 1 and self.options.flavor.alexeyab   # pjreddie loads 3 channels
        pixels = read_image_file(path, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR_RGB)
        if self.options.takes_decoded_u8:
            return pixels
        return unit_float((pixels[:, :, None] if grey else pixels).transpose(2, 0, 1))


class Collate:
    """The DataLoader's collate_fn: the slots of one iteration -> a DetectionBatch (or the first failure).
    Built in the training process, batch images go into reused buffers (:class:`BatchBuffers`)."""

    def __init__(self):
        self.buffers = BatchBuffers()

    def __call__(self, items):
        failure = next((item for item in items if isinstance(item, _Failure)), None)
        if failure is not None:
            return failure
        images, truth, paths, keys = zip(*items)
        return DetectionBatch(stack_images(images, self.buffers), stack_truth(truth), list(paths),
                              keys[0].iteration)


class IterationSampler(Sampler):
    """Endless batches of keys: iteration ``start``, ``start + 1``, … at the size set before ``iter()``.
    ``slots``: only these slots of each batch (a multi-process rank's share of the global batch)."""

    def __init__(self, batch: int, start: int, width: int, height: int, slots: Optional[Sequence[int]] = None):
        self.batch, self.start, self.width, self.height = batch, start, width, height
        self.slots = tuple(range(batch)) if slots is None else tuple(slots)

    def __iter__(self):
        iteration = self.start
        while True:
            yield [BatchKey(iteration, slot, self.width, self.height) for slot in self.slots]
            iteration += 1


def default_workers(device: str = "cpu") -> int:
    """Training loader processes when not told: one per core this process may use (taskset/cgroups
    respected): on a GPU the loader is the bottleneck. Training on the CPU with a single core, none: a worker
    process would only take turns with the training process on that core, and each batch would cross
    between the two (on the one-core bench of issue #15 loading in the training process is ~1.3x faster)."""
    cores = cpu_cores()
    return 0 if cores == 1 and str(device).startswith("cpu") else cores


def worker_init(_worker_id: int) -> None:
    keep_freed_buffers()
    cv2.setNumThreads(1)        # workers are the parallelism; OpenCV's own threads would oversubscribe
    torch.set_num_threads(1)
    # Ctrl-C (and `kill -- -PGID`) reach the whole foreground process group: the training process finishes
    # its iteration and saves, and a worker dying first would make that batch fail. A worker therefore leaves
    # the group. It must not ignore SIGTERM: that is how multiprocessing stops workers still running at exit.
    # Orphaned workers exit by themselves (PyTorch's worker watchdog notices the parent is gone).
    os.setpgrp()


@contextmanager
def forking_workers() -> Iterator[None]:
    """Around the `iter(DataLoader)` that forks the worker processes. OpenCV's thread pool does not survive a
    fork: a worker forked while this process's pool has threads hangs for ever in worker_init's
    `cv2.setNumThreads` (it joins threads the child does not have). The pool is stopped while the workers are
    forked and given back its size after (its threads start again at the next parallel OpenCV call)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


class DetectionLoader:
    """Batches for consecutive iterations, produced by ``num_workers`` persistent worker processes (0: in
    this process). ``set_size`` takes effect at the next batch: batches prefetched at the old size are
    dropped, as Darknet drops its prefetched batch when multiscale resizes."""

    def __init__(self, dataset: DetectionDataset, num_workers: int = 0, pin_memory: bool = False,
                 start_iteration: int = 0, prefetch_factor: int = 2, slots: Optional[Sequence[int]] = None):
        self.dataset = dataset
        self.iteration = int(start_iteration)
        self.size = (dataset.options.width, dataset.options.height)
        self._sampler = IterationSampler(dataset.batch, self.iteration, *self.size, slots=slots)
        extra = dict(persistent_workers=True, prefetch_factor=prefetch_factor, worker_init_fn=worker_init) \
            if num_workers > 0 else {}
        self._loader = DataLoader(dataset, batch_sampler=self._sampler, num_workers=num_workers,
                                  collate_fn=Collate(), pin_memory=pin_memory, **extra)
        self._batches = None
        if num_workers == 0:
            keep_freed_buffers()        # this process is the worker (see heap.py)
        if dataset.options.runs_compiled_kernels:
            kernels.warm_up()           # once here, not in every worker

    def set_size(self, width: int, height: int) -> None:
        if (width, height) != self.size:
            self.size = (int(width), int(height))
            self._batches = None

    def next_batch(self) -> DetectionBatch:
        if self._batches is None:
            self._sampler.start, (self._sampler.width, self._sampler.height) = self.iteration, self.size
            with forking_workers():
                self._batches = iter(self._loader)
        batch = next(self._batches)
        if isinstance(batch, _Failure):
            self._batches = None
            batch.reraise()
        self.iteration += 1
        return batch

    def state_dict(self) -> dict:
        """Plain ints: with the seed, enough to continue the exact batch sequence after a resume."""
        return {"iteration": self.iteration, "width": self.size[0], "height": self.size[1]}

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
        self.size = (int(state["width"]), int(state["height"]))
        self._batches = None


def detection_loader(cfg, paths: list[str], seed: int, batch: Optional[int] = None, rank: int = 0,
                     num_workers: int = 0, pin_memory: bool = False, backend: Optional[str] = None,
                     start_iteration: int = 0, loader_threads: Optional[int] = None,
                     slots: Optional[Sequence[int]] = None, source: Optional[str] = None) -> DetectionLoader:
    """The loader for training ``cfg`` (a CfgModel) on ``paths``: ``batch`` images per iteration (default
    `[net]` batch, i.e. mini-batch × subdivisions), augmentation from the cfg (``backend`` 'opencv' or
    'darknet' for flavor ab; default 'opencv'). ``slots``: produce only these slots of each batch; ``source``:
    the train list file the paths came from, named in errors."""
    options = augment_options(cfg, backend)
    dataset = DetectionDataset(paths, options, seed, batch or cfg.net.images_per_update, rank, loader_threads,
                               source)
    return DetectionLoader(dataset, num_workers, pin_memory, start_iteration, slots=slots)
