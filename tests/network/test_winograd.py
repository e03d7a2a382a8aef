"""Winograd's F(2x2, 3x3) kernel of the inference network (`layers/winograd.py`). Reference: the same
convolution in float64 (`F.conv2d`), an independent computation; and the network unfused at 416x416, the
size at which yolov4-tiny's deep layers take the kernel."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from darknet_py.layers import fused_conv, winograd
from darknet_py.network import load_network
from darknet_py.weights import save_weights
from helpers.networks import random_network, relative_difference
from helpers.paths import ROOT

pytestmark = pytest.mark.skipif(not fused_conv.available(), reason="this torch build has no oneDNN convolution")


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def yolov4_tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("winograd") / "yolov4-tiny.weights"
    save_weights(random_network("yolov4-tiny.cfg", "ab"), path)
    return path


def random_conv(channels: int, filters: int, padding: int, bias: bool = True) -> nn.Conv2d:
    torch.manual_seed(channels + filters + padding)
    conv = nn.Conv2d(channels, filters, 3, padding=padding, bias=bias)
    with torch.no_grad():
        conv.weight.uniform_(-0.1, 0.1)
        if bias:
            conv.bias.uniform_(-1.0, 1.0)
    return conv


def winograd_output(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    packed, bias = winograd.pack(conv, x)
    return winograd.convolve(x, packed, bias, conv.padding, conv.out_channels)


@pytest.mark.parametrize("batch, channels, filters, height, width, padding", [
    (1, 256, 128, 26, 26, 1),     # even: whole 2x2 blocks
    (1, 128, 64, 13, 13, 1),      # odd: the last block row and column half outside
    (2, 16, 8, 7, 10, 0),         # no padding (a 3x3 layer with pad=0): the output shrinks by 2
    (3, 8, 24, 5, 6, 2),          # padding 2: the output grows by 2
    (1, 32, 16, 1, 1, 1),         # one pixel
])
def test_winograd_matches_a_float64_convolution(batch, channels, filters, height, width, padding):
    conv = random_conv(channels, filters, padding)
    x = torch.rand(batch, channels, height, width).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        got = winograd_output(conv, x)
        expected = F.conv2d(x.double(), conv.weight.detach().double(), conv.bias.detach().double(), padding=padding)
    assert got.shape == expected.shape
    assert got.is_contiguous(memory_format=torch.channels_last)     # what the next oneDNN layer reads
    assert relative_difference(expected, got.double()) <= 2e-6


def test_winograd_without_bias():
    conv = random_conv(32, 16, 1, bias=False)
    x = torch.rand(1, 32, 6, 6).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        got = winograd_output(conv, x)
    assert relative_difference(F.conv2d(x.double(), conv.weight.detach().double(), padding=1), got.double()) <= 2e-6


def test_winograd_bias_reaches_every_pixel_once():
    """The bias rides on one of the 16 products; a zero-weight convolution must give exactly the bias."""
    conv = random_conv(16, 8, 1)
    with torch.no_grad():
        conv.weight.zero_()
    x = torch.rand(1, 16, 5, 7).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        got = winograd_output(conv, x)
    assert torch.equal(got, conv.bias.detach().view(1, -1, 1, 1).expand_as(got))


def test_which_convolutions_take_winograd(one_thread):
    deep = random_conv(256, 256, 1)
    x = torch.rand(1, 256, 26, 26)
    assert winograd.suits(deep, (1, 1), x)
    assert not winograd.suits(deep, (2, 2), x)                              # strided
    assert not winograd.suits(deep, (1, 1), torch.rand(1, 256, 4, 4))       # too little work
    assert not winograd.suits(random_conv(64, 64, 1), (1, 1), torch.rand(1, 64, 104, 104))   # too shallow
    assert not winograd.suits(random_conv(128, 128, 1), (1, 1), torch.rand(1, 128, 52, 52))  # 128 on a big map
    assert not winograd.suits(nn.Conv2d(256, 256, 1), (1, 1), x)            # 1x1
    huge = nn.Conv2d(4096, 4096, 3, device="meta")                             # no output pixel at all
    assert not winograd.suits(huge, (1, 1), torch.empty(1, 4096, 1, 1, device="meta"))
    assert not winograd.suits(nn.Conv2d(256, 256, 3, padding=2, dilation=2), (1, 1), x)
    assert not winograd.suits(nn.Conv2d(256, 256, 3, padding=1, groups=2), (1, 1), x)
    torch.set_num_threads(2)
    assert not winograd.suits(deep, (1, 1), x)                              # two threads: oneDNN's direct kernel


def test_yolov4_tiny_at_416_on_one_thread_matches_unfused(one_thread, yolov4_tiny_weights):
    """The inference network at the size the cfg runs at, where its 26x26 and 13x13 layers take Winograd's
    kernel, gives the unfused network's outputs (batch norm as its own pass, PyTorch's own convolution)."""
    cfg = ROOT / "cfg" / "yolov4-tiny.cfg"
    reference = load_network(cfg, yolov4_tiny_weights, batch=1).eval()
    fused = load_network(cfg, yolov4_tiny_weights, batch=1, fuse=True)
    x = torch.rand(1, 3, 416, 416)
    with torch.inference_mode():
        expected, got = reference(x), fused(x)
    convs = [layer for layer in fused.layers if layer.kind == "convolutional"]
    assert sum("winograd" in layer.prepacked.packed for layer in convs) >= 4
    assert sum("direct" in layer.prepacked.packed for layer in convs) >= 10
    for index in expected:
        assert relative_difference(expected[index], got[index]) <= 1e-4


def test_winograd_weights_follow_weight_and_bias_changes(one_thread):
    conv = random_conv(256, 256, 1)
    weights = fused_conv.PrepackedWeights()
    x = torch.rand(1, 256, 26, 26).contiguous(memory_format=torch.channels_last)

    def output():
        with torch.inference_mode():
            y, activated = fused_conv.convolve(conv, weights, x, "linear", (1, 1))
        assert not activated
        return y

    first = output()
    packed = weights.packed["winograd"][1]
    assert torch.equal(output(), first) and weights.packed["winograd"][1] is packed
    with torch.no_grad():
        conv.bias.add_(1.0)
    assert torch.allclose(output(), first + 1.0, atol=1e-5)
    with torch.no_grad():
        conv.weight.mul_(2.0)
    expected = F.conv2d(x.double(), conv.weight.detach().double(), conv.bias.detach().double(), padding=1)
    assert relative_difference(expected, output().double()) <= 2e-6
    assert not copy.deepcopy(weights).packed


def test_an_image_gets_the_same_numbers_in_any_batch(one_thread, yolov4_tiny_weights):
    """The kernel is chosen per image, so an image alone and the same image in a batch of 3 give identical
    outputs (what `Detector.predict` of one image and of a list promise)."""
    fused = load_network(ROOT / "cfg" / "yolov4-tiny.cfg", yolov4_tiny_weights, batch=1, fuse=True)
    batch = torch.rand(3, 3, 416, 416)
    with torch.inference_mode():
        together, alone = fused(batch), fused(batch[1:2])
    assert any("winograd" in layer.prepacked.packed for layer in fused.layers if layer.kind == "convolutional")
    for index in together:
        assert torch.equal(together[index][1:2], alone[index])
