"""Why SPP networks (yolov4, yolov4-csp, yolov7-tiny, yolov3-spp) give other numbers in AlexeyAB's AVX
build (README, "Differences from Darknet"): at inference, AlexeyAB's `forward_maxpool_layer_avx` (src/gemm.c)
computes a stride-1 max-pool 8 output columns at a time and skips a window column when it is outside the
picture *for the first of the 8* — so in the first 8 columns the other 7 lose real pixels of their window.

The AVX loop is re-derived here from that description (8 lanes, skipped where lane 0 is out of the
picture); darknet_py's `[maxpool]` equals the scalar loop of AVX=0 builds (tests/layers/test_layer_maxpool.py)
and differs from the AVX loop exactly there."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from test_layer_maxpool import darknet_maxpool, maxpool_network

LANES = 8


def avx_build_maxpool(x: np.ndarray, size: int) -> np.ndarray:
    """AlexeyAB's AVX=1 stride-1 max-pool (padding size-1): vectors of 8 columns while the last window stays
    inside the row, each window column taken for all 8 lanes or, when lane 0's is outside, for none."""
    c, h, w = x.shape
    offset = -((size - 1) // 2)
    out = darknet_maxpool(x, size, 1, size - 1)           # the scalar loop, for the columns the vectors leave
    j = 0
    while j < w - LANES - (size - 1):
        block = np.full((c, h, LANES), -np.inf, x.dtype)
        for i in range(h):
            for n in range(size):
                for m in range(size):
                    row, col = i + offset + n, j + offset + m
                    if 0 <= row < h and 0 <= col < w:
                        block[:, i] = np.maximum(block[:, i], x[:, row, col:col + LANES])
        out[:, :, j:j + LANES] = block
        j += LANES
    return out


@pytest.mark.parametrize("size,side,columns", [(5, 13, range(1, 8)), (5, 19, range(1, 8)), (9, 19, range(1, 8)),
                                               (13, 19, range(0))])
def test_darknet_py_is_the_avx0_build_not_the_avx_build(tmp_path, size, side, columns):
    """SPP's max-pools (size 5, 9, 13, stride 1) at a 416 (13x13) or 608 (19x19) input: the AVX build differs
    in columns 1..7 where its vector loop runs (at 19 columns a 13-wide window leaves it no room)."""
    network = maxpool_network(tmp_path, size, 1, None, side)
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(size))
    ours = network.forward(x, keep=[0])[0][0].numpy()
    image = x[0].numpy()
    np.testing.assert_array_equal(ours, darknet_maxpool(image, size, 1, size - 1))       # AVX=0 build
    differs = np.flatnonzero((ours != avx_build_maxpool(image, size)).any(axis=(0, 1)))
    assert set(differs) == set(columns)
