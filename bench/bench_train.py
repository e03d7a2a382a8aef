"""End-to-end CPU training speed: `darknet_py detector train` vs the Debian (pjreddie) darknet binary on the
same demo cfg and data set (cfg/shapes-tiny.cfg, data/shapes), both for the same number of iterations.

Per iteration each program prints the time it waited for the batch (`Loaded: ...`) and the time it trained
(`N: loss, avg, rate, S seconds, ...`); their sum is an iteration's cost. The medians after a warm-up are
compared, and the ratio darknet_py / darknet (iterations per second) is printed; so are the whole wall time
and the CPU time (user + system, all processes of the run, start-up included) of each run: on a shared
machine the CPU time is the steadier number. darknet_py runs with flavor pj (Debian's darknet is pjreddie's) and its default
settings (data loader workers, torch threads).

    python bench/bench_train.py [--iterations 30] [--warmup 5] [--workers N]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "cfg" / "shapes-tiny.cfg"
TRAIN_LIST = REPO / "data" / "shapes" / "train.txt"
NAMES = REPO / "data" / "shapes.names"
TRAIN_LINE = re.compile(r"^(\d+): \S+, \S+ avg, \S+ rate, (\S+) seconds, \d+ images$")
LOADED_LINE = re.compile(r"^Loaded: (\S+) seconds")


def prepare(folder: Path, iterations: int) -> tuple[Path, Path]:
    text = re.sub(r"(?m)^max_batches=.*$", f"max_batches={iterations}", CFG.read_text())
    cfg = folder / "shapes-tiny.cfg"
    cfg.write_text(text)
    data = folder / "shapes.data"
    data.write_text(f"classes=3\ntrain={TRAIN_LIST}\nvalid={TRAIN_LIST}\nnames={NAMES}\nbackup={folder}/backup\n")
    (folder / "backup").mkdir()
    return data, cfg


def timed(command: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``command``; return it with its wall time and the CPU time of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_darknet(binary: str, data: Path, cfg: Path) -> tuple[list[float], float, float]:
    done, wall, cpu = timed([binary, "detector", "train", str(data), str(cfg)])
    if done.returncode != 0:
        sys.exit(f"darknet failed:\n{done.stderr[-2000:]}")
    costs, loaded = [], 0.0
    for line in (done.stdout + done.stderr).splitlines():
        if m := LOADED_LINE.match(line):
            loaded = float(m[1])
        elif m := TRAIN_LINE.match(line):
            costs.append(float(m[2]) + loaded)
    return costs, wall, cpu


def run_darknet_py(data: Path, cfg: Path, folder: Path, workers: int | None) -> tuple[list[float], float, float]:
    log = folder / "darknet_py.jsonl"
    command = [sys.executable, "-m", "darknet_py", "detector", "train", str(data), str(cfg), "--flavor", "pj",
               "--device", "cpu", "--no-progress", "--no-check", "--log", str(log)]
    if workers is not None:
        command += ["--workers", str(workers)]
    done, wall, cpu = timed(command)
    if done.returncode != 0:
        sys.exit(f"darknet_py failed:\n{done.stderr[-2000:]}")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return [r["seconds"] + r["load_seconds"] for r in records if r["event"] == "iteration"], wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="darknet_py loader workers (default: its own)")
    args = parser.parse_args()
    binary = shutil.which("darknet")
    if binary is None:
        sys.exit("the Debian darknet binary is not installed (apt-get install darknet): nothing to compare with")
    batch = int(re.search(r"(?m)^batch=(\d+)", CFG.read_text())[1])
    print(f"cfg {CFG.relative_to(REPO)} (batch {batch}), {args.iterations} iterations, median of the last "
          f"{args.iterations - args.warmup}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name in ("darknet", "darknet_py"):
            folder = Path(tmp) / name
            folder.mkdir()
            data, cfg = prepare(folder, args.iterations)
            costs, wall, cpu = run_darknet(binary, data, cfg) if name == "darknet" else \
                run_darknet_py(data, cfg, folder, args.workers)
            seconds = statistics.median(costs[args.warmup:])
            results[name] = seconds, cpu
            print(f"{name:>10}: {seconds:.3f} s/iteration = {1 / seconds:.2f} iterations/s = "
                  f"{batch / seconds:.1f} images/s; whole run {wall:.1f} s wall, {cpu:.1f} s CPU")
    (dn_seconds, dn_cpu), (py_seconds, py_cpu) = results["darknet"], results["darknet_py"]
    print(f"ratio darknet_py / darknet iterations per second: {dn_seconds / py_seconds:.2f}x; "
          f"CPU time of the whole run darknet_py / darknet: {py_cpu / dn_cpu:.2f}x")


if __name__ == "__main__":
    main()
