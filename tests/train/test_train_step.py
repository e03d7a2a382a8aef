"""`train_network_step` against what real Darknet's `train_network()` did on the tiny3 fixture
(`tests/fixtures/train/tiny3/`, copied from the oracle runs): 2 iterations on a fixed 16-image batch
(4 subdivisions of 4) from `init.weights`, starting at iteration 49 (burn-in, rates 2.5e-4 and 2.706e-4).

* `abpatch_burnin`: AlexeyAB CPU with the three oracle patches (deltas zeroed per forward, conv backward
  accumulating, BN β trained) — the gradients AlexeyAB computes on GPU — with the CPU batch norm, i.e. our
  "ab_cpu" BN mode with β trained.
* `pj_burnin`: stock pjreddie CPU (our "pj_cpu" mode). Its 1x1-conv backward overwrites the previous
  layer's delta instead of adding to it; in tiny3 every 1x1 conv (13, 15, 18, 22) is the only consumer of
  its input layer, so the bug changes no gradient here and all layers are compared. Layers 0 and 2 get a
  looser bound: one pre-activation of layer 2 (channel 14, sub-batch 0) lies within 3e-6 of zero and
  Darknet's float rounding puts it on the other side of the leaky kink (slope 1 vs 0.1); flipping that one
  slope makes both layers agree to 3e-5 (checked by hand), so the residual is rounding, not semantics.
* `ab_burnin` (stock AB CPU): its iteration-0 yolo deltas are byte-identical to abpatch's (the patches only
  change the backward), so the abpatch delta checks cover it.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from darknet_py.network import parse_cfg
from darknet_py.errors import TrainingError
from darknet_py.network import Network, load_network
from darknet_py.train.batchnorm import set_batchnorm_mode
from darknet_py.train.step import train_network_step
from darknet_py.train.update import make_optimizer

FORKS = {"abpatch": ("ab", "ab_cpu", "truth_ab.f32", 6), "pj": ("pj", "pj_cpu", "truth_pj.f32", 5)}
START_ITERATION = 49
LOOSE_LAYERS = {"pj": {0: 5e-3, 2: 5e-3}}     # see the module docstring
# abpatch on other arithmetic: one pre-activation of layer 4 (micro-batch 3, image 3, channel 6, y 15, x 11)
# is -1.3e-5 in float32 on the CPU (Darknet's side of the leaky kink, slope 0.1) and +2.5e-6 in exact
# (float64) arithmetic (slope 1). Arithmetic that lands on the exact side -- float64 on the CPU, fp32 cuDNN
# on an H200 (bench/RESULTS.md, GPU session) -- moves the gradients of layers 4, 2 and 0 by up to 7.2e-3
# relative; every other layer still agrees to 3e-5 (test_abpatch_gradient_in_exact_arithmetic).
KINK_SIDE_LAYERS = {0: 1e-2, 2: 1e-2, 4: 5e-3}


def _tiny3(fixtures_dir):
    return fixtures_dir / "train" / "tiny3"


def _batch(folder, truth_file, fields):
    images = np.fromfile(folder / "batch16_input_128x128.f32", dtype="<f4").reshape(16, 3, 128, 128)
    truth = np.fromfile(folder / truth_file, dtype="<f4").reshape(16, -1, fields)
    return torch.from_numpy(images), torch.from_numpy(truth)


def _conv_tensors(network):
    """Per conv layer, Darknet's arrays by name (biases = BN β or the conv bias)."""
    out = {}
    for layer in network.layers:
        if layer.kind != "convolutional":
            continue
        arrays = {"biases": layer.biases, "weights": layer.conv.weight}
        if layer.bn is not None:
            arrays.update(scales=layer.bn.weight, rolling_mean=layer.bn.running_mean,
                          rolling_variance=layer.bn.running_var)
        out[layer.index] = arrays
    return out


def _read_grads(path, network):
    """`it0_grads_before_update.f32`: per conv layer bias_updates, scale_updates (BN), weight_updates —
    Darknet's accumulators, i.e. the NEGATIVE gradient summed over the 16 images."""
    data = np.fromfile(path, dtype="<f4")
    out, pos = {}, 0
    for index, arrays in _conv_tensors(network).items():
        names = ["biases"] + (["scales"] if "scales" in arrays else []) + ["weights"]
        out[index] = {}
        for name in names:
            n = arrays[name].numel()
            out[index][name] = data[pos:pos + n].reshape(arrays[name].shape)
            pos += n
    assert pos == data.size
    return out


def _snapshot(network):
    return {i: {k: t.detach().clone() for k, t in a.items()} for i, a in _conv_tensors(network).items()}


def _fixture_start(folder, fork):
    """tiny3 as the fork's oracle run starts it (init.weights, its batch norm, START_ITERATION) and its arrays."""
    flavor, bn_mode, _, _ = FORKS[fork]
    network = load_network(folder / "tiny3.cfg", folder / "init.weights", flavor=flavor)
    set_batchnorm_mode(network, bn_mode)
    network.seen = START_ITERATION * network.net_options.images_per_update
    return network, _snapshot(network)


def _first_gradient(network, optimizer, convert) -> dict:
    """Filled at the optimizer's first update with ``convert`` of every conv array's gradient."""
    grads = {}
    update = optimizer.step

    def capture(*args, **kwargs):
        if not grads:
            grads.update({i: {k: convert(t.grad) for k, t in a.items() if t.grad is not None}
                          for i, a in _conv_tensors(network).items()})
        return update(*args, **kwargs)

    optimizer.step = capture
    return grads


class Run:
    """One 2-iteration run of our engine with everything the comparisons need."""

    def __init__(self, folder, fork):
        flavor, _, truth_file, fields = FORKS[fork]
        self.info = json.loads((folder / f"{fork}_burnin" / "train.json").read_text())
        network, self.init = _fixture_start(folder, fork)
        optimizer = make_optimizer(network)
        self.grads = _first_gradient(network, optimizer, lambda g: g.clone())
        images, truth = _batch(folder, truth_file, fields)
        self.results, self.after = [], []
        for _ in range(2):
            self.results.append(train_network_step(network, optimizer, images, truth, keep_deltas=True))
            self.after.append(_snapshot(network))
        self.network = network
        self.folder = folder / f"{fork}_burnin"
        self.flavor = flavor


@pytest.fixture(scope="module", params=sorted(FORKS))
def run(request, fixtures_dir):
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return request.param, Run(_tiny3(fixtures_dir), request.param)


def _rel(ours, ref):
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return np.linalg.norm(ours - ref) / np.linalg.norm(ref)


def test_costs_loss_rate_and_seen(run):
    fork, r = run
    for result, expected in zip(r.results, r.info["iterations"]):
        assert result.rate == pytest.approx(expected["rate_used"], rel=1e-6)
        assert result.loss == pytest.approx(expected["loss_returned_by_train_network"], rel=1e-4)
        for costs, network_cost, sub in zip(result.layer_costs, result.costs, expected["subdivisions"]):
            assert network_cost == pytest.approx(sub["network_cost"], rel=1e-4)
            assert costs == pytest.approx([y["cost"] for y in sub["yolo"]], rel=1e-4)
    assert [res.iteration for res in r.results] == [START_ITERATION + 1, START_ITERATION + 2]
    assert r.network.seen == r.info["iterations"][-1]["seen_after"]
    assert r.results[0].yolo_indices == (16, 23)
    assert len(r.results[0].log_lines) == 8


def test_yolo_deltas_of_every_subdivision(run):
    fork, r = run
    result = r.results[0]
    for s in range(4):
        for k, index in enumerate(result.yolo_indices):
            ref = np.fromfile(r.folder / f"it0_sub{s}_layer{index:03d}_yolo_delta.f32", dtype="<f4")
            ours = result.yolo[s][k].delta.numpy().ravel()
            assert np.abs(ours - ref).max() <= 1e-4, (s, index)


def test_accumulated_gradient_before_the_first_update(run):
    fork, r = run
    B = r.network.net_options.images_per_update
    reference = _read_grads(r.folder / "it0_grads_before_update.f32", r.network)
    for index, arrays in reference.items():
        for name, ref in arrays.items():
            ours = -B * r.grads[index][name].numpy()   # our grad is +G/B; Darknet's accumulator is -G
            bound = LOOSE_LAYERS.get(fork, {}).get(index, 1e-3)
            assert _rel(ours, ref) <= bound, (index, name, _rel(ours, ref))


@pytest.mark.parametrize("iteration", [0, 1])
def test_parameters_after_each_update(run, iteration):
    fork, r = run
    reference = load_network(r.folder.parent / "tiny3.cfg", r.folder / f"it{iteration}_weights_after.weights",
                             flavor=r.flavor)
    for index, arrays in _conv_tensors(reference).items():
        for name, ref_after in arrays.items():
            ref_after = ref_after.detach().numpy()
            ours_after = r.after[iteration][index][name].numpy()
            if name.startswith("rolling"):                 # forward statistics: compare the values
                assert _rel(ours_after, ref_after) <= 1e-4, (index, name)
                continue
            start = r.init[index][name].numpy()
            bound = LOOSE_LAYERS.get(fork, {}).get(index, 1e-3)
            assert _rel(ours_after - start, ref_after - start) <= bound, (index, name)


def abpatch_step(fixtures_dir, device="cpu", dtype=torch.float32):
    """One abpatch step from the fixture's start on ``device`` in ``dtype``: (network, result, the parameters
    before it, the gradient it applied as Darknet's accumulators, Darknet's accumulators)."""
    folder = _tiny3(fixtures_dir)
    _, _, truth_file, fields = FORKS["abpatch"]
    network, start = _fixture_start(folder, "abpatch")   # AB CPU's batch norm (torch reductions elsewhere)
    network.to(device=device, dtype=dtype)
    optimizer = make_optimizer(network)
    B = network.net_options.images_per_update            # our grad is +G/B; Darknet's accumulator is -G
    grads = _first_gradient(network, optimizer, lambda g: -B * g.detach().cpu().double().numpy())
    images, truth = _batch(folder, truth_file, fields)
    result = train_network_step(network, optimizer, images.to(dtype), truth, device=device, keep_deltas=True)
    reference = _read_grads(folder / "abpatch_burnin" / "it0_grads_before_update.f32", network)
    return network, result, start, grads, reference


def test_abpatch_gradient_in_exact_arithmetic(fixtures_dir):
    """The float64 step shows the kink behind KINK_SIDE_LAYERS: the layers behind layer 4 leave the 1e-3 bound
    of float32 (so the bound is needed on other arithmetic) and stay within it; the others agree to 1e-4."""
    _, _, _, grads, reference = abpatch_step(fixtures_dir, dtype=torch.float64)
    for index, arrays in reference.items():
        for name, ref in arrays.items():
            assert _rel(grads[index][name], ref) <= KINK_SIDE_LAYERS.get(index, 1e-4), (index, name)
    assert _rel(grads[0]["biases"], reference[0]["biases"]) > 1e-3


# -- properties that need no oracle ---------------------------------------------------------------------

def _plain_tiny3(folder, tmp_path, subdivisions=4, extra=None, flavor="ab"):
    """tiny3 at 64x64 without batch norm (micro-batches then see the same function), constant lr, no
    burn-in; ``extra`` adds a key to a layer section."""
    text = (folder / "tiny3.cfg").read_text().replace("batch_normalize=1", "batch_normalize=0")
    text = text.replace("width=128", "width=64").replace("height=128", "height=64")
    text = text.replace("subdivisions=4", f"subdivisions={subdivisions}").replace("burn_in=100", "burn_in=0")
    lines = text.splitlines()
    for layer_index, key in (extra or {}).items():
        count = -1
        for n, line in enumerate(lines):
            if line.startswith("[") and not line.startswith("[net"):
                count += 1
                if count == layer_index:
                    lines.insert(n + 1, key)
                    break
    path = tmp_path / f"plain_{subdivisions}.cfg"
    path.write_text("\n".join(lines) + "\n")
    return Network(parse_cfg(path, flavor=flavor))


def _small_batch(folder):
    images, truth = _batch(folder, "truth_ab.f32", 6)
    return torch.nn.functional.avg_pool2d(images, 2), truth     # truth is relative: valid at 64x64


def _step_once(network, folder, state):
    """One step from ``state``: the parameters after it and the gradient it applied (still in ``.grad``)."""
    network.load_state_dict(state)
    optimizer = make_optimizer(network)
    images, truth = _small_batch(folder)
    result = train_network_step(network, optimizer, images, truth)
    return result, {n: (p.detach().clone(), p.grad.clone()) for n, p in network.named_parameters()}


def test_subdivisions_do_not_change_the_update(fixtures_dir, tmp_path):
    # The update is a fixed function of the accumulated gradient, so compare that: differences of float32
    # weights before/after a 1e-4-sized step would only measure the rounding of the weights.
    folder = _tiny3(fixtures_dir)
    torch.manual_seed(0)
    state = _plain_tiny3(folder, tmp_path).state_dict()
    runs = {s: _step_once(_plain_tiny3(folder, tmp_path, s), folder, state) for s in (1, 2, 4, 16)}
    reference_result, reference = runs[1]
    for s in (2, 4, 16):
        result, params = runs[s]
        assert result.loss == pytest.approx(reference_result.loss, rel=1e-5)
        assert result.iteration == reference_result.iteration == 1
        for name, (after, grad) in params.items():
            ref_after, ref_grad = reference[name]
            assert ((grad - ref_grad).norm() / ref_grad.norm()).item() <= 1e-5, (s, name)
            torch.testing.assert_close(after, ref_after, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("flavor", ["ab", "pj"])
def test_stopbackward_freezes_earlier_layers(fixtures_dir, tmp_path, flavor):
    folder = _tiny3(fixtures_dir)
    torch.manual_seed(1)
    network = _plain_tiny3(folder, tmp_path, extra={4: "stopbackward=1"}, flavor=flavor)
    before = {n: p.detach().clone() for n, p in network.named_parameters()}
    optimizer = make_optimizer(network)
    images, truth = _small_batch(folder)
    result = train_network_step(network, optimizer, images, truth)
    shrink = 1 - result.rate * network.net_options.decay      # first update, momentum buffer empty: decay only
    for name, p in network.named_parameters():
        index = int(name.split(".")[1])
        now = p.detach()
        if index < 4 and flavor == "ab":                # AB: train=0, never updated
            torch.testing.assert_close(now, before[name], rtol=0, atol=0)
        elif index <= 4:                                # no gradient; weights decay, biases stay
            expected = before[name] * shrink if name.endswith("conv.weight") else before[name]
            torch.testing.assert_close(now, expected, rtol=1e-6, atol=1e-9)
        else:
            assert not torch.equal(now, before[name]), name
    assert all(p.requires_grad for p in network.parameters())   # flags restored after the step


def test_wrong_batch_is_a_training_error(fixtures_dir, tmp_path):
    folder = _tiny3(fixtures_dir)
    network = _plain_tiny3(folder, tmp_path)
    images, truth = _small_batch(folder)
    with pytest.raises(TrainingError, match="16 images"):
        train_network_step(network, make_optimizer(network), images[:8], truth[:8])


def test_device_argument(fixtures_dir, tmp_path):
    folder = _tiny3(fixtures_dir)
    torch.manual_seed(2)
    network = _plain_tiny3(folder, tmp_path)
    state = {n: t.clone() for n, t in network.state_dict().items()}
    images, truth = _small_batch(folder)
    cpu = train_network_step(network, make_optimizer(network), images, truth, device="cpu")
    cpu_params = {n: p.detach().clone() for n, p in network.named_parameters()}
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: only the CPU path was exercised")
    network.load_state_dict(state)
    network.to("cuda")
    network.seen = 0
    gpu = train_network_step(network, make_optimizer(network), images, truth, device="cuda")
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-4)
    for name, p in network.named_parameters():
        change_gpu = p.detach().cpu() - state[name]
        change_cpu = cpu_params[name] - state[name]
        assert ((change_gpu - change_cpu).norm() / change_cpu.norm()).item() <= 1e-3, name
