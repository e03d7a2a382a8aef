"""`darknet_py export` (ONNX), run with ONNX Runtime.

Golden values: darknet_py's own forward and `detector test` pipeline (both verified against real Darknet
elsewhere in the suite) and, for pjreddie, the live Debian `darknet detector test` on its sample images."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from darknet_py.commands.export import at_size
from darknet_py.network import parse_cfg
from darknet_py.data.image import load_image
from darknet_py.eval.detect import detect_arrays, nms_settings, prepare_image, uses_letter_box
from darknet_py.eval.detections import DetectionArrays
from darknet_py.eval.printout import pj_detection_lines
from darknet_py.export import export_onnx, onnx_detections
from darknet_py.network import Network, load_network
from darknet_py.weights import load_pt, save_pt, save_weights
from helpers.cli import run_cli
from helpers.datasets import write_data_file
from helpers.paths import ROOT

IMAGES = ("dog", "eagle", "giraffe", "horses", "kite", "person")
THRESH = .25


def session(onnxruntime, path: Path):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def assert_close(got: np.ndarray, want: torch.Tensor) -> None:
    """Within 1e-4 relative to the output's scale."""
    want = want.numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


def forward(network, images: np.ndarray) -> list[torch.Tensor]:
    with torch.no_grad():
        return list(network(torch.from_numpy(images)).values())


def sized_images(network, names=IMAGES, share=Path("/usr/share/darknet")) -> tuple[np.ndarray, list]:
    """Debian's sample images as `detector test` feeds them to this network, and the decoded originals."""
    letter = uses_letter_box(network, False, "test")
    originals = [load_image(share / "data" / f"{name}.jpg") for name in names]
    sized = [prepare_image(im, network.net_options.width, network.net_options.height, letter) for im in originals]
    return np.stack(sized).astype(np.float32), originals


@pytest.mark.oracle
@pytest.mark.parametrize("flavor", ["ab", "pj"])
def test_real_yolov3_tiny_outputs_equal_forward(onnxruntime, debian_share, yolov3_tiny_weights, tmp_path, flavor):
    out = tmp_path / "tiny.onnx"
    cfg = debian_share / "cfg" / "yolov3-tiny.cfg"
    result = run_cli("export", cfg, yolov3_tiny_weights, out, "--flavor", flavor)
    assert result.code == 0, result.err
    assert "outputs yolo_16, yolo_23" in result.out
    network = load_network(str(cfg), str(yolov3_tiny_weights), flavor=flavor, batch=1).eval()
    images, _ = sized_images(network, ("dog",), debian_share)
    run = session(onnxruntime, out)
    assert [o.name for o in run.get_outputs()] == ["yolo_16", "yolo_23"]
    assert run.get_inputs()[0].shape == [1, 3, 416, 416]
    for got, want in zip(run.run(None, {"images": images}), forward(network, images)):
        assert_close(got, want)


def sane_random(network: Network) -> Network:
    """Random weights whose outputs stay finite: Darknet starts with a rolling variance of 0, which makes an
    untrained network's inference outputs overflow."""
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.uniform_(.5, 1.5, generator=generator)
            module.running_mean.uniform_(-.1, .1, generator=generator)
    return network.eval()


@pytest.mark.parametrize("name,size", [("shapes-tiny", None), ("yolov3-tiny", 160), ("yolov4-tiny", 160),
                                       ("yolov3", 128), ("yolov3-spp", 128), ("yolov4", 128)])
def test_shipped_cfg_exports_with_dynamic_batch(onnxruntime, tmp_path, name, size):
    """Every cfg in cfg/ (random weights, reduced size): ONNX Runtime equals forward at batch 1 and 3."""
    cfg = parse_cfg(ROOT / "cfg" / f"{name}.cfg", flavor="ab", batch=1)
    network = sane_random(Network(at_size(cfg, size, size)))
    out = tmp_path / f"{name}.onnx"
    names = export_onnx(network, str(out), dynamic_batch=True)
    assert names == tuple(f"yolo_{i}" for i in network.detection_indices)
    run = session(onnxruntime, out)
    rng = np.random.default_rng(1)
    for batch in (1, 3):
        images = rng.random((batch, 3, network.net_options.height, network.net_options.width), dtype=np.float32)
        for got, want in zip(run.run(None, {"images": images}), forward(network, images)):
            assert_close(got, want)


def detections_table(dets: DetectionArrays, im_w: int, im_h: int) -> list[tuple]:
    """(detection, class, prob, left, top, right, bottom in pixels) of every prob above the threshold."""
    rows = []
    for i in range(len(dets)):
        x, y, w, h = dets.boxes[i] * np.array([im_w, im_h, im_w, im_h])
        for j in np.flatnonzero(dets.probs[i] > THRESH):
            rows.append((i, int(j), float(dets.probs[i, j]), x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    return rows


def _as_arrays(dets, classes: int) -> DetectionArrays:
    """onnx_detections' list of Detection as the arrays detect_arrays returns."""
    if not dets:
        return DetectionArrays.empty(classes)
    return DetectionArrays(np.array([[d.x, d.y, d.w, d.h] for d in dets], np.float32),
                           np.array([d.objectness for d in dets], np.float32),
                           np.array([d.probs for d in dets], np.float32))


def decoded_detections(onnxruntime, network, model: Path, images, originals) -> list[DetectionArrays]:
    boxes, scores = session(onnxruntime, model).run(None, {"images": images})
    kind, beta = nms_settings(network)
    found = []
    for im, b, s in zip(originals, boxes, scores):
        dets = onnx_detections(b, s, network.net_options.width, network.net_options.height, im.shape[2], im.shape[1], THRESH,
                               .45, uses_letter_box(network, False, "test"), kind, beta)
        found.append(_as_arrays(dets, s.shape[1]))
    return found


@pytest.mark.oracle
@pytest.mark.parametrize("flavor", ["ab", "pj"])
def test_decode_and_nms_helper_equal_detector_test(onnxruntime, debian_share, yolov3_tiny_weights, tmp_path, flavor):
    """--decode --dynamic-batch, all six sample images in one batch, then `onnx_detections`: the detections
    of `detector test` (same classes and order, boxes within 1 px, probabilities within 0.01)."""
    out = tmp_path / "tiny-decode.onnx"
    cfg = debian_share / "cfg" / "yolov3-tiny.cfg"
    result = run_cli("export", cfg, yolov3_tiny_weights, out, "--flavor", flavor, "--decode",
                     "--dynamic-batch")
    assert result.code == 0, result.err
    network = load_network(str(cfg), str(yolov3_tiny_weights), flavor=flavor, batch=1).eval()
    images, originals = sized_images(network, IMAGES, debian_share)
    found = decoded_detections(onnxruntime, network, out, images, originals)
    letter = uses_letter_box(network, False, "test")
    total = 0
    for im, got in zip(originals, found):
        want = detect_arrays(network, im, THRESH, .45, letter)
        got_rows, want_rows = detections_table(got, *im.shape[:0:-1]), detections_table(want, *im.shape[:0:-1])
        assert [r[1] for r in got_rows] == [r[1] for r in want_rows]
        np.testing.assert_allclose([r[2] for r in got_rows], [r[2] for r in want_rows], atol=.01)
        np.testing.assert_allclose([r[3:] for r in got_rows], [r[3:] for r in want_rows], atol=1)
        total += len(got_rows)
    assert total >= 10


@pytest.mark.oracle
def test_decoded_pj_detections_equal_debian_darknet(onnxruntime, darknet_binary, debian_share,
                                                   yolov3_tiny_weights, tmp_path):
    """The exported model + `onnx_detections` print the lines the real Debian `darknet detector test` prints
    for each sample image (class names and percentages, in Darknet's order)."""
    out = tmp_path / "tiny-decode.onnx"
    cfg = debian_share / "cfg" / "yolov3-tiny.cfg"
    assert run_cli("export", cfg, yolov3_tiny_weights, out, "--flavor", "pj", "--decode",
                   "--dynamic-batch").code == 0
    network = load_network(str(cfg), str(yolov3_tiny_weights), flavor="pj", batch=1)
    images, originals = sized_images(network, IMAGES, debian_share)
    names = (debian_share / "data" / "coco.names").read_text().splitlines()
    ours = [pj_detection_lines(dets, names, THRESH)
            for dets in decoded_detections(onnxruntime, network, out, images, originals)]
    write_data_file(tmp_path / "t.data", names=debian_share / "data" / "coco.names")
    for name, lines in zip(IMAGES, ours):
        theirs = subprocess.run([darknet_binary, "detector", "test", "t.data", str(cfg), str(yolov3_tiny_weights),
                                 str(debian_share / "data" / f"{name}.jpg"), "-thresh", str(THRESH), "-out",
                                 "pred"], cwd=tmp_path, capture_output=True, text=True, timeout=300).stdout
        block = theirs.split("Predicted in", 1)[1].splitlines()[1:]
        assert lines == [line for line in block if line], name
    assert sum(map(len, ours)) >= 10


SELU_CFG = """[net]
width=32
height=32
channels=3

[convolutional]
filters=18
size=3
stride=1
pad=1
activation=leaky

[activation]
activation=selu

[yolo]
mask=0,1,2
anchors=10,13,16,30,33,23
classes=1
num=3
"""


def test_unsupported_layer_is_named_with_file_and_line(onnxruntime, tmp_path):
    """ONNX has no expm1 (AlexeyAB's selu uses it): one line naming the layer, its cfg line, the operator."""
    cfg = tmp_path / "selu.cfg"
    cfg.write_text(SELU_CFG)
    save_weights(load_network(str(cfg)), tmp_path / "selu.weights")
    result = run_cli("export", cfg, tmp_path / "selu.weights", tmp_path / "selu.onnx")
    assert result.code == 1
    assert result.err.startswith(f"darknet_py: error: {cfg}:13: layer 1 [activation] cannot be exported to "
                                 "ONNX (opset 17): ")
    assert "expm1" in result.err and "Traceback" not in result.err
    assert result.out == ""
    assert not (tmp_path / "selu.onnx").exists()


def test_missing_onnx_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)     # `import onnx` raises ImportError
    cfg = tmp_path / "selu.cfg"
    cfg.write_text(SELU_CFG)
    result = run_cli("export", cfg, tmp_path / "none.weights", tmp_path / "x.onnx")
    assert result.code == 1
    assert "needs the 'onnx' package" in result.err and "pip install 'darknet_py[onnx]'" in result.err


def test_batch_and_dynamic_batch_exclude_each_other(tmp_path):
    result = run_cli("export", "a.cfg", "a.weights", tmp_path / "x.onnx", "--batch", "2",
                     "--dynamic-batch")
    assert result.code == 1 and "either --batch N or --dynamic-batch" in result.err


def readme_export_section() -> tuple[list[str], str]:
    """The README's Export section: its command's arguments and its Python example."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Export (ONNX)", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```bash\n(.*?)\n```", section, re.S).group(1)
    return shlex.split(command), re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.oracle
def test_readme_export_example_runs(onnxruntime, debian_share, yolov3_tiny_weights, tmp_path, monkeypatch,
                                    capsys):
    """The README's command and ONNX Runtime example, with the official yolov3-tiny and Debian's dog.jpg: it
    prints `detector test`'s detections."""
    args, code = readme_export_section()
    assert args[:2] == ["darknet_py", "export"]
    files = {"yolov3-tiny.cfg": debian_share / "cfg" / "yolov3-tiny.cfg",
             "yolov3-tiny.weights": yolov3_tiny_weights, "dog.jpg": debian_share / "data" / "dog.jpg"}
    monkeypatch.chdir(tmp_path)
    assert run_cli(*[str(files.get(a, a)) for a in args[1:]]).code == 0
    code = code.replace('"dog.jpg"', repr(str(files["dog.jpg"])))
    exec(compile(code, "README.md", "exec"), {})
    printed = [line.split() for line in capsys.readouterr().out.splitlines()]
    network = load_network(str(files["yolov3-tiny.cfg"]), str(yolov3_tiny_weights), flavor="pj", batch=1)
    want = detect_arrays(network, load_image(files["dog.jpg"]), .25, .45, letter_box=True)
    want = [(i, p) for i, p in zip(want.probs.argmax(1), want.probs.max(1)) if p > 0]
    assert [(int(row[0]), row[1]) for row in printed] == [(int(i), f"{p:.0%}") for i, p in want]
    assert len(printed) >= 3


def test_pt_weights_fixed_batch_and_size(onnxruntime, tmp_path):
    """WEIGHTS may be a .pt checkpoint; --batch and --width/--height set the input shape; the lowest opset
    offered still expresses mish."""
    cfg = tmp_path / "leaky.cfg"
    cfg.write_text(SELU_CFG.replace("activation=selu", "activation=mish"))
    network = load_network(str(cfg))
    save_pt(network, tmp_path / "leaky.pt")
    out = tmp_path / "leaky.onnx"
    result = run_cli("export", cfg, tmp_path / "leaky.pt", out, "--batch", "2", "--width", "64",
                     "--height", "48", "--opset", "13")
    assert result.code == 0, result.err
    assert result.out.strip() == f"{out}: input images (2, 3, 48, 64), outputs yolo_2 (opset 13)"
    run = session(onnxruntime, out)
    assert run.get_inputs()[0].shape == [2, 3, 48, 64]
    images = np.random.default_rng(2).random((2, 3, 48, 64), dtype=np.float32)
    network = Network(at_size(parse_cfg(cfg, batch=1), 64, 48))
    load_pt(network, tmp_path / "leaky.pt")
    (got,) = run.run(None, {"images": images})
    assert_close(got, forward(network.eval(), images)[0])


def test_cfg_without_detection_layer_is_refused(onnxruntime, tmp_path):
    cfg = tmp_path / "conv.cfg"
    cfg.write_text(SELU_CFG.split("[activation]")[0])
    save_weights(load_network(str(cfg)), tmp_path / "conv.weights")
    result = run_cli("export", cfg, tmp_path / "conv.weights", tmp_path / "conv.onnx")
    assert result.code == 1
    assert result.err.startswith(f"darknet_py: error: {cfg}: the cfg has no [yolo] or [region] layer")
