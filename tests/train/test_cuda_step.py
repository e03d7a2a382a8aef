"""Issue 13, check 3 on a GPU: one training step of the abpatch fixture on CUDA (fp32, TF32 off) equals what
AlexeyAB's Darknet computed, within the CPU tolerances of tests/train/test_train_step.py. Skips without CUDA."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from darknet_py.network import load_network
from darknet_py.train.batchnorm import set_batchnorm_mode
from darknet_py.train.step import train_network_step
from darknet_py.train.update import make_optimizer
from test_train_step import FORKS, START_ITERATION, _batch, _conv_tensors, _read_grads, _rel, _tiny3

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_abpatch_step_on_cuda(fixtures_dir):
    folder = _tiny3(fixtures_dir)
    flavor, bn_mode, truth_file, fields = FORKS["abpatch"]
    reference = folder / "abpatch_burnin"
    info = json.loads((reference / "train.json").read_text())
    network = load_network(folder / "tiny3.cfg", folder / "init.weights", flavor=flavor)
    set_batchnorm_mode(network, bn_mode)      # AB CPU's batch norm, as the fixture; torch reductions on CUDA
    network.seen = START_ITERATION * network.net_options.images_per_update
    start = {i: {k: t.detach().clone() for k, t in a.items()} for i, a in _conv_tensors(network).items()}
    network.to("cuda")
    optimizer = make_optimizer(network)
    grads = {}
    update = optimizer.step

    def capture(*args, **kwargs):
        grads.update({i: {k: t.grad.detach().cpu() for k, t in a.items() if t.grad is not None}
                      for i, a in _conv_tensors(network).items()})
        return update(*args, **kwargs)

    optimizer.step = capture
    images, truth = _batch(folder, truth_file, fields)
    result = train_network_step(network, optimizer, images, truth, device="cuda", keep_deltas=True)
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    expected = info["iterations"][0]
    assert result.loss == pytest.approx(expected["loss_returned_by_train_network"], rel=1e-4)
    for s in range(4):
        for k, index in enumerate(result.yolo_indices):
            ref = np.fromfile(reference / f"it0_sub{s}_layer{index:03d}_yolo_delta.f32", dtype="<f4")
            assert np.abs(result.yolo[s][k].delta.cpu().numpy().ravel() - ref).max() <= 1e-4, (s, index)
    B = network.net_options.images_per_update
    for index, arrays in _read_grads(reference / "it0_grads_before_update.f32", network).items():
        for name, ref in arrays.items():
            assert _rel(-B * grads[index][name].numpy(), ref) <= 1e-3, (index, name)
    after = load_network(folder / "tiny3.cfg", reference / "it0_weights_after.weights", flavor=flavor)
    for index, arrays in _conv_tensors(after).items():
        for name, ref_after in arrays.items():
            ours = _conv_tensors(network)[index][name].detach().cpu().numpy()
            ref_after, begin = ref_after.detach().numpy(), start[index][name].numpy()
            if name.startswith("rolling"):
                assert _rel(ours, ref_after) <= 1e-4, (index, name)
            else:
                assert _rel(ours - begin, ref_after - begin) <= 1e-3, (index, name)
