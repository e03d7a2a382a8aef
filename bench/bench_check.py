"""How fast `detector check --fast` (what `detector train` runs first) goes through a large list.

Builds N one-byte "images" with 3-box label files in a temp folder, then times check_dataset(fast=True)
against the least any checker must do: stat every image and read every label file. Prints images/s and
the ratio. Usage: python bench/bench_check.py [N] (default 20000)."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from darknet_py.check import check_dataset


def build(root: Path, n: int) -> Path:
    (root / "JPEGImages").mkdir()
    (root / "labels").mkdir()
    paths = []
    for i in range(n):
        image = root / "JPEGImages" / f"{i:07d}.jpg"
        image.write_bytes(b"x")
        (root / "labels" / f"{i:07d}.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n2 0.7 0.7 0.1 0.3\n")
        paths.append(str(image))
    (root / "train.txt").write_text("\n".join(paths) + "\n")
    (root / "obj.names").write_text("a\nb\nc\n")
    data = root / "obj.data"
    data.write_text(f"classes=3\ntrain={root / 'train.txt'}\nnames={root / 'obj.names'}\n")
    return data


def reference(root: Path) -> None:
    """Stat each listed image and read its label file: the I/O floor."""
    for line in (root / "train.txt").read_text().split("\n"):
        if line:
            os.stat(line)
            with open(line.replace("/JPEGImages/", "/labels/")[:-4] + ".txt", "rb") as f:
                f.read()


def main() -> None:
    torch.set_num_threads(1)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with tempfile.TemporaryDirectory() as tmp:
        data = build(Path(tmp), n)
        started = time.perf_counter()
        reference(Path(tmp))
        floor = time.perf_counter() - started
        started = time.perf_counter()
        report = check_dataset(data, fast=True)
        took = time.perf_counter() - started
    assert report.ok, report.format()
    print(f"{n} images: check --fast {took:.2f} s ({n / took:,.0f} images/s); stat+read floor {floor:.2f} s; "
          f"ratio {took / floor:.1f}x; 100k images ~ {took * 100000 / n:.0f} s")


if __name__ == "__main__":
    main()
