"""The inference network (`Network.fuse_`, `load_network(..., fuse=True)`): batch norm folded into each
convolution as AlexeyAB's `fuse_conv_batchnorm` does. Reference: the same network unfused, i.e. the separate
batch-norm pass that the layer and Darknet tests check against Darknet. Random weights with batch-norm
statistics far from the identity, so that a wrong fold (eps inside/outside the square root, the mean's
sign, a missed scale) shows."""
from __future__ import annotations

import copy

import pytest
import torch

from darknet_py.errors import WeightsError
from darknet_py.layers import fused_conv
from darknet_py.network import load_network
from darknet_py.weights import save_weights
from helpers.networks import SIZE, random_network, relative_difference
from helpers.paths import ROOT

CFGS = sorted(p.name for p in (ROOT / "cfg").glob("*.cfg"))
PJ_CFGS = ("yolov3-tiny.cfg", "yolov3.cfg")     # pjreddie's own cfgs: its batch-norm formula (eps outside sqrt)


@pytest.mark.parametrize("cfg_name, flavor", [(name, "ab") for name in CFGS] + [(name, "pj") for name in PJ_CFGS])
def test_fused_outputs_match_unfused(cfg_name, flavor):
    network = random_network(cfg_name, flavor)
    x = torch.rand(1, 3, SIZE, SIZE)
    with torch.inference_mode():
        expected = network(x)
        fused = copy.deepcopy(network).fuse_()
        got = fused(x)
    assert fused.fused and not network.fused
    assert any(layer.folded for layer in fused.layers if layer.kind == "convolutional")
    assert all(getattr(layer, "bn", None) is None for layer in fused.layers if layer.kind == "convolutional")
    assert got.keys() == expected.keys()
    for index in expected:
        assert relative_difference(expected[index], got[index]) <= 1e-4, (cfg_name, index)


def test_folding_is_not_a_no_op():
    """The check above can fail: dropping the batch norm instead of folding it changes the outputs."""
    network = random_network("yolov3-tiny.cfg", "ab")
    x = torch.rand(1, 3, SIZE, SIZE)
    broken = copy.deepcopy(network)
    for layer in broken.layers:
        if getattr(layer, "bn", None) is not None:
            layer.bn = None
    with torch.inference_mode():
        expected, got = network(x), broken(x)
    assert max(relative_difference(expected[i], got[i]) for i in expected) > 1e-2


def test_saving_after_fusing_keeps_the_weights_file(tmp_path):
    """Fusing a copy leaves the network it came from (and what it saves) untouched; the fused network itself
    refuses to be saved rather than write folded numbers into a `.weights` file."""
    network = random_network("yolov3-tiny.cfg", "ab")
    original = tmp_path / "original.weights"
    save_weights(network, original)
    loaded = load_network(ROOT / "cfg" / "yolov3-tiny.cfg", original, batch=1)
    fused = copy.deepcopy(loaded).fuse_()
    save_weights(loaded, tmp_path / "again.weights")
    assert (tmp_path / "again.weights").read_bytes() == original.read_bytes()
    with pytest.raises(WeightsError, match="folded"):
        save_weights(fused, tmp_path / "fused.weights")
    assert not (tmp_path / "fused.weights").exists()


def test_load_network_fuse(tmp_path):
    network = random_network("yolov3-tiny.cfg", "pj")
    path = tmp_path / "pj.weights"
    save_weights(network, path)
    fused = load_network(ROOT / "cfg" / "yolov3-tiny.cfg", path, flavor="pj", batch=1, fuse=True)
    assert fused.fused and not fused.training
    x = torch.rand(1, 3, 416, 416)
    reference = load_network(ROOT / "cfg" / "yolov3-tiny.cfg", path, flavor="pj", batch=1).eval()
    with torch.inference_mode():
        expected, got = reference(x), fused(x)
    for index in expected:
        assert relative_difference(expected[index], got[index]) <= 1e-4


@pytest.mark.skipif(not fused_conv.available(), reason="this torch build has no oneDNN fused convolution")
def test_cpu_kernel_prepacks_once_follows_weight_changes_and_copies():
    """On the CPU the fused layers run oneDNN with prepacked weights: packed at the first call, packed again
    when the weights change (a later load), and a deep copy of a used network packs its own."""
    network = random_network("yolov3-tiny.cfg", "ab").fuse_()
    x = torch.rand(1, 3, SIZE, SIZE)
    convs = [layer for layer in network.layers if layer.kind == "convolutional"]
    with torch.no_grad():
        first = network(x)
        packed = [dict(layer.prepacked.packed) for layer in convs]
        assert all(packed)
        network(x)
        assert all(layer.prepacked.packed[kernel][1] is weights for layer, p in zip(convs, packed)
                   for kernel, (_, weights) in p.items())
        copied = copy.deepcopy(network)
        assert all(not layer.prepacked.packed for layer in copied.layers if layer.kind == "convolutional")
        assert all(torch.equal(first[i], out) for i, out in copied(x).items())
        convs[-1].conv.weight.mul_(2.0)
        changed = network(x)
    assert convs[-1].prepacked.packed["direct"][1] is not packed[-1]["direct"][1]
    last = network.detection_indices[-1]
    assert not torch.equal(first[last], changed[last])


def test_upsample_keeps_channels_last_and_darknets_pixels():
    """`[upsample]` in the inference network (channels_last) repeats each pixel stride x stride times exactly as
    on an NCHW tensor (Darknet's nearest upsample, written out as an independent index formula), and its output
    stays channels_last so that the `[route]` joining it to a channels_last convolution output is a plain copy."""
    network = random_network("yolov4-tiny.cfg", "ab")
    upsample = next(layer for layer in network.layers if layer.kind == "upsample")
    x = torch.rand(1, 4, 3, 5)
    expected = x[:, :, torch.arange(6) // 2][:, :, :, torch.arange(10) // 2]
    for tensor in (x, x.contiguous(memory_format=torch.channels_last)):
        y = upsample(tensor, [])
        assert torch.equal(y, expected)
    assert y.is_contiguous(memory_format=torch.channels_last)
