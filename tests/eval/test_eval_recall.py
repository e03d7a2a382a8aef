"""`detector recall` against the live Debian `darknet` (pjreddie), which always reads
`data/coco_val_5k.list` relative to the working directory."""
from __future__ import annotations

import re
import subprocess

import pytest

from darknet_py.errors import DarknetError
from helpers.cli import run_cli
from helpers.datasets import add_picture, write_data_file, write_list
from helpers.paths import FIXTURES

# Hand-placed boxes (class x y w h): some on real objects, some on nothing, so recall is neither 0 nor 1.
LABELS = {
    "dog": "16 0.33 0.61 0.31 0.57\n1 0.46 0.47 0.57 0.48\n7 0.75 0.2 0.26 0.16\n0 0.1 0.1 0.05 0.05\n",
    "eagle": "14 0.49 0.51 0.63 0.62\n14 0.2 0.8 0.1 0.1\n",
    "giraffe": "23 0.49 0.44 0.54 0.79\n19 0.62 0.75 0.2 0.3\n",
    "horses": "17 0.3 0.55 0.2 0.4\n17 0.52 0.5 0.17 0.5\n17 0.75 0.55 0.3 0.45\n17 0.9 0.2 0.1 0.1\n",
}
LINE = re.compile(r"^\s*\d+\s+\d+\s+\d+\tRPs/Img: [\d.]+\tIOU: [\d.]+%\tRecall:[\d.]+%$")


def _numbers(text: str) -> list[list[float]]:
    return [[float(v) for v in re.findall(r"[\d.]+", line)] for line in text.splitlines() if LINE.match(line)]


@pytest.mark.slow
@pytest.mark.oracle
def test_recall_equals_debian_darknet(darknet_binary, debian_share, yolov3_tiny_weights, tmp_path, monkeypatch):
    pictures = [add_picture(tmp_path, f"{name}.jpg", debian_share / "data" / f"{name}.jpg", text)
                for name, text in LABELS.items()]
    (tmp_path / "data").mkdir()
    write_list(tmp_path / "data" / "coco_val_5k.list", pictures)    # the list pjreddie's recall always reads
    write_data_file(tmp_path / "r.data", classes=80)
    cfg = debian_share / "cfg" / "yolov3-tiny.cfg"
    theirs = subprocess.run([darknet_binary, "detector", "recall", "r.data", str(cfg), str(yolov3_tiny_weights)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600).stderr
    monkeypatch.chdir(tmp_path)
    result = run_cli("detector", "recall", "r.data", cfg, yolov3_tiny_weights, "--flavor", "pj")
    assert result.code == 0, result.output
    want, got = _numbers(theirs), _numbers(result.err)
    assert len(want) == len(LABELS) == len(got)
    for g, w in zip(got, want):
        assert g[:3] == w[:3]                                   # index, correct, total
        assert g[3] == pytest.approx(w[3], abs=0.011)           # proposals per image
        assert g[4] == pytest.approx(w[4], abs=0.02)            # mean best IoU %
        assert g[5] == w[5]                                     # recall %
    assert 0 < want[-1][5] < 100


def test_pj_recall_names_the_hard_coded_list(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_data_file(tmp_path / "r.data", classes=3)
    fixtures = FIXTURES / "eval"
    with pytest.raises(DarknetError) as error:
        run_cli("--debug", "detector", "recall", "r.data", fixtures / "synth" / "cfg" / "tiny3.cfg",
                fixtures / "tiny3" / "trained.weights", "--flavor", "pj")
    assert "data/coco_val_5k.list" in str(error.value)
