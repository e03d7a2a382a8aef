"""What `-mjpeg_port` costs a training run (issue 21): the iteration time of `detector train` on the shapes
demo (cfg/shapes-tiny.cfg, data/shapes) without the server (A), with the server and one client that connects
and never reads (B), and with the server and 50 clients reading the stream (C).

An iteration's cost is its training time plus the time it waited for its batch (the `seconds` and
`load_seconds` of the run's JSON-lines log); each run's median after a warm-up is taken, the variants run in
turn (A, B, C, A, B, C, ...) so that a machine loaded by other jobs weighs on all of them alike, and the
medians of the runs are compared: B / A and C / A (1.00 = no cost; the issue asks B within 10 %).

    python bench/bench_stream.py [--iterations 40] [--warmup 5] [--repeats 3] [--clients 50]
"""
from __future__ import annotations

import argparse
import json
import re
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


def run(folder: Path, variant: str, iterations: int, clients: int) -> list[float]:
    """One training run of ``variant``; each iteration's cost in seconds."""
    data, cfg = prepare(folder, iterations)
    log = folder / f"{variant}.jsonl"
    command = [sys.executable, "-m", "darknet_py", "detector", "train", str(data), str(cfg), "--device", "cpu",
               "--no-progress", "--log", str(log), "-clear", "--no-check"]
    port = free_port()
    if variant != "A":
        command += ["-mjpeg_port", str(port)]
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
    for sock in held:
        sock.close()
    for reader in readers:
        reader.join()
    if process.returncode != 0:
        raise SystemExit(f"training failed ({variant}):\n{err[-2000:]}")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return [r["seconds"] + r["load_seconds"] for r in records if r["event"] == "iteration"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)
    medians: dict[str, list[float]] = {"A": [], "B": [], "C": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for variant in medians:
                folder = Path(tmp) / f"{variant}{repeat}"
                folder.mkdir()
                costs = run(folder, variant, args.iterations, args.clients)[args.warmup:]
                medians[variant].append(statistics.median(costs))
                print(f"run {repeat + 1} {variant}: median iteration {medians[variant][-1] * 1000:.1f} ms "
                      f"({len(costs)} iterations after the warm-up)", flush=True)
    a, b, c = (statistics.median(medians[v]) for v in "ABC")
    print(f"\nmedian iteration: A no server {a * 1000:.1f} ms, B one never-reading client {b * 1000:.1f} ms, "
          f"C {args.clients} reading clients {c * 1000:.1f} ms")
    print(f"B / A = {b / a:.3f}   C / A = {c / a:.3f}")
    return {"A": a, "B": b, "C": c}


if __name__ == "__main__":
    main()
