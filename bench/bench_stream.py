"""What `-mjpeg_port` costs a training run (issue 21): the iteration time of `detector train` on the shapes
demo (cfg/shapes-tiny.cfg, data/shapes) without the server (A), with the server and one client that connects
and never reads (B), and with the server and 50 clients reading the stream (C).

An iteration's cost is its training time plus the time it waited for its batch (the `seconds` and
`load_seconds` of the run's JSON-lines log); each run's median after a warm-up is taken, the variants run in
turn (A, B, C, A, B, C, ...) so that a machine loaded by other jobs weighs on all of them alike, and the
medians of the runs are compared: B / A and C / A (1.00 = no cost; the issue asks B within 10 %). On a
machine shared with other jobs the wall times swing by 2x from run to run, so each run's CPU time (user +
system of the training process and its loader workers, the server's threads included, start-up included)
is reported too: the steadier number there.

    python bench/bench_stream.py [--iterations 40] [--warmup 5] [--repeats 3] [--clients 50]
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "cfg" / "shapes-tiny.cfg"
TRAIN_LIST = REPO / "data" / "shapes" / "train.txt"
NAMES = REPO / "data" / "shapes.names"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(folder: Path, iterations: int) -> tuple[Path, Path]:
    cfg = folder / "shapes-tiny.cfg"
    cfg.write_text(re.sub(r"(?m)^max_batches=.*$", f"max_batches={iterations}", CFG.read_text()))
    train = folder / "train.txt"          # absolute paths: the run works in ``folder`` (its chart.png goes there)
    lines = [line.strip() for line in TRAIN_LIST.read_text().splitlines() if line.strip()]
    train.write_text("".join(f"{REPO / line}\n" for line in lines))
    data = folder / "shapes.data"
    data.write_text(f"classes=3\ntrain={train}\nvalid={train}\nnames={NAMES}\nbackup={folder}/backup\n")
    return data, cfg


def connect(port: int, process: subprocess.Popen) -> socket.socket:
    """A client of the run's server, once it listens (bounded: the run ends by itself)."""
    while process.poll() is None:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            time.sleep(0.05)
            continue
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return sock
    raise SystemExit("the training run ended before its server listened")


def drain(sock: socket.socket) -> None:
    """A client that reads everything it is sent until the stream ends."""
    sock.settimeout(None)
    with sock:
        try:
            while sock.recv(1 << 16):
                pass
        except OSError:
            pass


def run(folder: Path, variant: str, iterations: int, clients: int) -> tuple[list[float], float]:
    """One training run of ``variant``: each iteration's cost in seconds, and the run's CPU seconds."""
    data, cfg = prepare(folder, iterations)
    log = folder / f"{variant}.jsonl"
    command = [sys.executable, "-m", "darknet_py", "detector", "train", str(data), str(cfg), "--device", "cpu",
               "--no-progress", "--log", str(log), "-clear", "--no-check"]
    port = free_port()
    if variant != "A":
        command += ["-mjpeg_port", str(port)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    held, readers = [], []
    if variant == "B":
        held.append(connect(port, process))                         # connects, never reads
    elif variant == "C":
        for _ in range(clients):
            reader = threading.Thread(target=drain, args=(connect(port, process),))
            reader.start()
            readers.append(reader)
    _, err = process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for sock in held:
        sock.close()
    for reader in readers:
        reader.join()
    if process.returncode != 0:
        raise SystemExit(f"training failed ({variant}):\n{err[-2000:]}")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return [r["seconds"] + r["load_seconds"] for r in records if r["event"] == "iteration"], cpu


def publish_cost(points: int = 1000, calls: int = 2000) -> float:
    """Seconds the training loop spends per iteration on the stream when a client is connected and never
    reads: the chart's snapshot and the status (what ChartStream.iteration does) and ``publish``."""
    sys.path.insert(0, str(REPO))
    from darknet_py.http_stream import Frame, StreamServer, status_text
    from darknet_py.train.chart import TrainingChart
    from darknet_py.train.chart_stream import ROUTES

    chart = TrainingChart(10 * points, losses=[(i, 1.0) for i in range(points)])
    server = StreamServer(ROUTES, 0)
    idle = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1].strip("/"))))
    idle.sendall(b"GET / HTTP/1.0\r\n\r\n")
    times = []
    for k in range(calls):
        started = time.perf_counter()
        snapshot = chart.snapshot()
        server.publish(Frame(lambda snapshot=snapshot: snapshot.draw(), status_text(iteration=k, loss=1.0)))
        times.append(time.perf_counter() - started)
    server.close()
    idle.close()
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)
    medians: dict[str, list[float]] = {"A": [], "B": [], "C": []}
    cpus: dict[str, list[float]] = {"A": [], "B": [], "C": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for variant in medians:
                folder = Path(tmp) / f"{variant}{repeat}"
                folder.mkdir()
                costs, cpu = run(folder, variant, args.iterations, args.clients)
                medians[variant].append(statistics.median(costs[args.warmup:]))
                cpus[variant].append(cpu)
                print(f"run {repeat + 1} {variant}: median iteration {medians[variant][-1] * 1000:.1f} ms "
                      f"({len(costs) - args.warmup} iterations after the warm-up), CPU {cpu:.1f} s", flush=True)
    a, b, c = (statistics.median(medians[v]) for v in "ABC")
    print(f"\nmedian iteration: A no server {a * 1000:.1f} ms, B one never-reading client {b * 1000:.1f} ms, "
          f"C {args.clients} reading clients {c * 1000:.1f} ms")
    print(f"B / A = {b / a:.3f}   C / A = {c / a:.3f}")
    for repeat in range(args.repeats):
        print(f"run {repeat + 1}: B / A = {medians['B'][repeat] / medians['A'][repeat]:.3f} (CPU "
              f"{cpus['B'][repeat] / cpus['A'][repeat]:.3f}), C / A = {medians['C'][repeat] / medians['A'][repeat]:.3f}"
              f" (CPU {cpus['C'][repeat] / cpus['A'][repeat]:.3f})")
    ca, cb, cc = (statistics.median(cpus[v]) for v in "ABC")
    print(f"median CPU time of a run: A {ca:.1f} s, B {cb:.1f} s, C {cc:.1f} s;  B / A = {cb / ca:.3f}   "
          f"C / A = {cc / ca:.3f}")
    cost = publish_cost()
    print(f"the loop's share with a never-reading client (snapshot of a 1000-point chart + publish): "
          f"{cost * 1e6:.0f} us an iteration = {cost / a:.2e} of A's median iteration")
    return {"A": a, "B": b, "C": c}


if __name__ == "__main__":
    main()
