"""Cost of the `[yolo]` loss (darknet_py.layers.yolo_loss.yolo_deltas) relative to a whole tiny3 training
iteration (B=16, subdivisions=4, 128×128, CPU, one thread), both measured here.

Target: the loss is < 10 % of the iteration. Times are this process's CPU time (time.process_time), so
that other processes on a shared machine, which stretch wall-clock time unevenly, distort the ratio less;
each iteration is timed alone and the fastest and the median are reported.
Run: python bench/bench_yolo_loss.py [cfg]"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from darknet_py.network import parse_cfg
from darknet_py.layers.yolo_loss import yolo_deltas, yolo_surrogate
from darknet_py.network import Network

TINY3 = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "yolo_loss" / "tiny3.cfg"
BATCH, SUBDIVISIONS, REPEATS = 16, 4, 15


def random_truth(images: int, max_boxes: int, generator: torch.Generator) -> torch.Tensor:
    """1–4 boxes per image, x y w h class 0 rows, AB layout."""
    truth = torch.zeros(images, max_boxes, 6)
    for b in range(images):
        k = int(torch.randint(1, 5, (1,), generator=generator))
        wh = 0.1 + 0.4 * torch.rand(k, 2, generator=generator)
        xy = wh / 2 + (1 - wh) * torch.rand(k, 2, generator=generator)
        truth[b, :k, :2], truth[b, :k, 2:4] = xy, wh
        truth[b, :k, 4] = torch.randint(0, 3, (k,), generator=generator).float()
    return truth


def main(cfg_path: Path) -> None:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    network = Network(parse_cfg(cfg_path, flavor="ab"))
    network.train()
    yolos = {i: network.layers[i] for i in network.detection_indices}
    mini = BATCH // SUBDIVISIONS
    images = torch.rand(BATCH, 3, network.net_options.height, network.net_options.width, generator=generator)
    truth = random_truth(BATCH, 200, generator)
    captured = {}

    def capture_input(index):
        def hook(module, args):
            captured[index] = args[0]
        return hook
    for index, layer in yolos.items():
        layer.register_forward_pre_hook(capture_input(index))

    def iteration() -> tuple[float, float]:
        """(seconds of the whole iteration, seconds spent in yolo_deltas)."""
        loss_seconds = 0.0
        start = time.process_time()
        for s in range(SUBDIVISIONS):
            part = slice(s * mini, (s + 1) * mini)
            outputs = network(images[part])
            loss_start = time.process_time()
            deltas = {i: yolo_deltas(layer.options, outputs[i], truth[part], layer.net_w, layer.net_h, "ab")
                      for i, layer in yolos.items()}
            loss_seconds += time.process_time() - loss_start
            sum(yolo_surrogate(captured[i], d.delta, BATCH) for i, d in deltas.items()).backward()
        network.zero_grad(set_to_none=True)
        return time.process_time() - start, loss_seconds

    iteration()
    runs = sorted(iteration() for _ in range(REPEATS))
    calls = SUBDIVISIONS * len(yolos)
    for label, (total, loss) in (("fastest", runs[0]), ("median", runs[len(runs) // 2])):
        print(f"{label} tiny3 iteration (B={BATCH}, S={SUBDIVISIONS}): {total * 1e3:.1f} ms; yolo loss "
              f"{loss * 1e3:.1f} ms ({calls} calls, {loss / calls * 1e3:.2f} ms each) = "
              f"{100 * loss / total:.1f} % of the iteration")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else TINY3)
