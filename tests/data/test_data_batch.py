"""The batch hand-over (issue #15): 8-bit batches become the same floats on the training device as the
pipeline's own conversion, and a strided 1x1 convolution's shortcut gives PyTorch's strided result."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py.data.batch import network_input, stack_images

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_network_input_divides_exactly_like_numpy(device):
    every = torch.arange(256, dtype=torch.uint8).repeat(3, 70, 1)      # every value, in a vectorised size
    expected = np.arange(256, dtype=np.float32) / np.float32(255)      # correctly rounded float32 quotients
    got = network_input(every[None], device)[0].cpu().numpy()
    assert got.dtype == np.float32 and np.array_equal(got, np.broadcast_to(expected, got.shape))
    # a reciprocal multiply (what a host-scalar divisor may become) is not the same thing
    assert not np.array_equal(np.arange(256, dtype=np.float32) * np.float32(1 / 255), expected)


def test_float_batches_pass_through():
    images = torch.rand(2, 3, 4, 4)
    assert torch.equal(network_input(images, "cpu"), images)


def test_stack_images_keeps_uint8_and_converts_mixed_batches():
    u8 = np.full((3, 2, 2), 128, np.uint8)
    f32 = np.full((3, 2, 2), 0.25, np.float32)
    assert stack_images([u8, u8]).dtype == torch.uint8
    mixed = stack_images([u8, f32])
    assert mixed.dtype == torch.float32
    assert mixed[0, 0, 0, 0].item() == np.float32(128) / np.float32(255) and mixed[1, 0, 0, 0].item() == 0.25


@pytest.mark.parametrize("stride", [(2, 2), (32, 32), (3, 5)])
def test_strided_1x1_convolution_equals_pytorch_strided(tmp_path, stride):
    from darknet_py.network import parse_cfg
    from darknet_py.network import Network
    cfg = (f"[net]\nbatch=1\nwidth=67\nheight=45\nchannels=3\n\n[convolutional]\nfilters=5\nsize=1\n"
           f"stride_x={stride[1]}\nstride_y={stride[0]}\npad=0\nactivation=linear\n")
    (tmp_path / "c.cfg").write_text(cfg)
    network = Network(parse_cfg(tmp_path / "c.cfg", "ab"))
    layer = network.layers[0]
    x = torch.rand(2, 3, 45, 67)
    # activation=linear: the convolution's output. The same products and sums, but PyTorch may pick another
    # kernel for each call (on one thread they differ in the last bit), hence a float32-rounding tolerance.
    torch.testing.assert_close(layer(x, []), layer.conv(x), rtol=1e-6, atol=1e-6)


def _crop_reference(rgb, crop):
    """AB's crop written out: a canvas of the rounded mean colour, the overlapping part copied in."""
    oh, ow = rgb.shape[:2]
    mean = np.rint(rgb.reshape(oh * ow, -1).mean(axis=0)).astype(np.uint8)
    out = np.empty((crop.sheight, crop.swidth) + rgb.shape[2:], np.uint8)
    out[...] = mean if rgb.ndim == 3 else mean[0]
    for y in range(crop.sheight):
        for x in range(crop.swidth):
            if 0 <= y + crop.ptop < oh and 0 <= x + crop.pleft < ow:
                out[y, x] = rgb[y + crop.ptop, x + crop.pleft]
    return out


@pytest.mark.parametrize("grey", [False, True])
def test_ab_crop_pads_with_the_mean_colour(grey):
    from darknet_py.data.augment import Crop, _crop_u8
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (9, 13) if grey else (9, 13, 3), dtype=np.uint8)
    for pleft, ptop, sw, sh in [(0, 0, 13, 9), (2, 1, 8, 5), (-3, -2, 20, 14), (5, 4, 12, 10), (-30, 0, 5, 9),
                                (0, 20, 13, 4), (-4, 3, 6, 3)]:
        crop = Crop(pleft, 13 - pleft - sw, ptop, 9 - ptop - sh, sw, sh, False)
        assert np.array_equal(_crop_u8(rgb, crop), _crop_reference(rgb, crop)), crop
