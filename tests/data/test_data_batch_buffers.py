"""Batch buffers reused in the training process (issue #15): a previous batch's tensor is written again only
when nothing refers to it any more, so a batch, a view of it or a NumPy array over it that someone keeps
always keeps its values."""
from __future__ import annotations

import numpy as np
import pytest

from darknet_py.data.batch import BatchBuffers, stack_images


def _slots(value: float, size: int = 6) -> list[np.ndarray]:
    return [np.full((3, size, size), value, np.float32), np.full((3, size, size), value / 2, np.float32)]


def test_a_released_batch_buffer_is_reused():
    buffers = BatchBuffers()
    first = stack_images(_slots(.5), buffers)
    where = first.data_ptr()
    del first
    again = stack_images(_slots(.25), buffers)
    assert again.data_ptr() == where
    assert float(again[0, 0, 0, 0]) == .25 and float(again[1, 0, 0, 0]) == .125


@pytest.mark.parametrize("keep", ["batch", "view", "numpy"])
def test_a_kept_batch_is_never_overwritten(keep):
    buffers = BatchBuffers()
    batch = stack_images(_slots(.5), buffers)
    kept = {"batch": lambda: batch, "view": lambda: batch[1], "numpy": lambda: batch.numpy()}[keep]()
    del batch
    for value in (.25, .75, .125):                     # more batches than the buffers kept
        stack_images(_slots(value), buffers)
    values = np.asarray(kept)
    expected = {"batch": np.stack(_slots(.5)), "view": _slots(.5)[1], "numpy": np.stack(_slots(.5))}[keep]
    assert np.array_equal(values, expected)


def test_two_batches_alive_at_once_have_their_own_buffers():
    """The training loop holds batch N while the loader builds batch N + 1."""
    buffers = BatchBuffers()
    current = stack_images(_slots(.5), buffers)
    for value in (.25, .75, .125, .375):
        following = stack_images(_slots(value), buffers)
        assert following.data_ptr() != current.data_ptr()
        assert float(current[0, 0, 0, 0]) != value or value == .5
        current = following
    assert float(current[0, 0, 0, 0]) == .375


def test_a_new_size_gets_a_new_buffer():
    buffers = BatchBuffers()
    small = stack_images(_slots(.5, 6), buffers)
    del small
    large = stack_images(_slots(.5, 8), buffers)
    assert tuple(large.shape) == (2, 3, 8, 8)
