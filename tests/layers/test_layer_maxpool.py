"""`[maxpool]` against a direct transcription of spec §3.2: the window of output (i, j) starts at input
(i·stride − padding/2, j·stride − padding/2), positions outside the input read as −inf, and the output size is
(size_in + padding − size)/stride + 1. Checked with and without autograd (two code paths), and at an input
size other than the one the network was built for (multiscale training)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py.network import parse_cfg
from darknet_py.network import Network


def darknet_maxpool(x: np.ndarray, size: int, stride: int, padding: int) -> np.ndarray:
    c, h, w = x.shape
    out_h, out_w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
    out = np.full((c, out_h, out_w), -np.inf, dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            for dy in range(size):
                for dx in range(size):
                    y, x_ = i * stride - padding // 2 + dy, j * stride - padding // 2 + dx
                    if 0 <= y < h and 0 <= x_ < w:
                        out[:, i, j] = np.maximum(out[:, i, j], x[:, y, x_])
    return out


GEOMETRIES = [  # size, stride, padding (None: Darknet's default size - 1), input side
    (2, 2, None, 8), (2, 2, None, 7), (2, 1, None, 5), (3, 2, None, 9), (5, 1, None, 6), (13, 1, None, 7),
    (3, 3, None, 10), (2, 2, 0, 9), (3, 1, 4, 5),
]


def maxpool_network(tmp_path, size, stride, padding, side) -> Network:
    extra = "" if padding is None else f"padding={padding}\n"
    cfg = tmp_path / "pool.cfg"
    cfg.write_text(f"[net]\nwidth={side}\nheight={side}\nchannels=2\n[maxpool]\nsize={size}\nstride={stride}\n{extra}")
    return Network(parse_cfg(cfg))


@pytest.mark.parametrize("size,stride,padding,side", GEOMETRIES)
@pytest.mark.parametrize("autograd", [False, True])
def test_maxpool_matches_the_spec(tmp_path, size, stride, padding, side, autograd):
    network = maxpool_network(tmp_path, size, stride, padding, side)
    total = size - 1 if padding is None else padding
    for input_side in (side, side + 3):            # the build size, then a multiscale size
        x = torch.randn(2, 2, input_side, input_side, generator=torch.Generator().manual_seed(input_side))
        with torch.set_grad_enabled(autograd):
            y = network.forward(x.requires_grad_(autograd), keep=[0])[0]
        for n in range(2):
            expected = darknet_maxpool(x[n].detach().numpy(), size, stride, total)
            np.testing.assert_array_equal(y[n].detach().numpy(), expected)
        if input_side == side:
            s = network.layers[0].out_shape
            assert tuple(y.shape[1:]) == (s.c, s.h, s.w)


def test_gradient_goes_to_the_first_maximum(tmp_path):
    """Darknet's backward routes the whole delta to the first maximum in row-major scan order."""
    x = torch.tensor([[[[1.0, 3.0], [3.0, 2.0]]]], requires_grad=True)
    path = tmp_path / "p.cfg"
    path.write_text("[net]\nwidth=2\nheight=2\nchannels=1\n[maxpool]\nsize=2\nstride=2\n")
    network = Network(parse_cfg(path))
    network.forward(x, keep=[0])[0].sum().backward()
    assert x.grad.flatten().tolist() == [0.0, 1.0, 0.0, 0.0]
