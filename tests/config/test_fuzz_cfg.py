"""Fuzzed cfgs: byte flips, truncations, line deletions/duplications/swaps, odd values and stray bytes applied to
real Darknet cfgs (Debian's yolov3-tiny.cfg and yolov2-tiny.cfg). Parsing and building each must either
succeed or raise a DarknetError naming the file — never another exception."""
from __future__ import annotations

import random
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch

from darknet_py.network import parse_cfg
from darknet_py.errors import DarknetError
from darknet_py.network import Network
from helpers.paths import FIXTURES

BAD_INPUTS = FIXTURES / "bad_inputs"
SOURCES = ("yolov3-tiny.cfg", "yolov2-tiny.cfg")
CASES = 210
SEED = 20240606
REAL_BUILD_LIMIT = 20_000_000     # parameters
ODD_VALUES = (b"0", b"-1", b"-7", b"1e30", b"nan", b"inf", b"-inf", b"abc", b"99999", b"2", b"1,2", b",", b"",
              b"-1,-100", b"3.5", b"1e-30", b"99", b"0x10", b"1 2", b"\xff\xfe", b"=", b"[", b"]")


def _flip_bytes(rng, data):
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _truncate(rng, data):
    return data[:rng.randrange(len(data))]


def _insert_bytes(rng, data):
    i = rng.randrange(len(data))
    junk = bytes(rng.choice(b"\x00\r\n\t []=#;,-.0123456789abc\xc3\xff") for _ in range(rng.randint(1, 6)))
    return data[:i] + junk + data[i:]


def _delete_line(rng, lines):
    del lines[rng.randrange(len(lines))]


def _duplicate_line(rng, lines):
    lines.insert(rng.randrange(len(lines)), lines[rng.randrange(len(lines))])


def _swap_lines(rng, lines):
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]


def _odd_value(rng, lines):
    options = [i for i, line in enumerate(lines) if b"=" in line]
    i = rng.choice(options)
    lines[i] = lines[i].split(b"=")[0] + b"=" + rng.choice(ODD_VALUES)


def _duplicate_section(rng, lines):
    starts = [i for i, line in enumerate(lines) if line.startswith(b"[")] + [len(lines)]
    k = rng.randrange(len(starts) - 1)
    lines[starts[k]:starts[k]] = lines[starts[k]:starts[k + 1]]


BYTE_MUTATIONS = (_flip_bytes, _truncate, _insert_bytes)
LINE_MUTATIONS = (_delete_line, _duplicate_line, _swap_lines, _odd_value, _duplicate_section)


def mutate(rng: random.Random, data: bytes) -> bytes:
    for _ in range(rng.randint(1, 3)):
        mutation = rng.choice(BYTE_MUTATIONS + LINE_MUTATIONS)
        if mutation in BYTE_MUTATIONS:
            data = mutation(rng, data) if data else data
        else:
            lines = data.split(b"\n")
            mutation(rng, lines)
            data = b"\n".join(lines)
    return data


def build(path: Path, flavor: str, for_real: bool = False) -> None:
    """Parse and build on the meta device (shapes and parameters without memory or init cost); with
    ``for_real`` also on the CPU when the network is small enough to initialise quickly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = parse_cfg(path, flavor=flavor)
        with torch.device("meta"):
            network = Network(model)
        if for_real and sum(p.numel() for p in network.parameters()) < REAL_BUILD_LIMIT:
            Network(model)


def test_fuzzed_cfgs_raise_only_darknet_errors(tmp_path):
    rng = random.Random(SEED)
    sources = {name: (BAD_INPUTS / name).read_bytes() for name in SOURCES}
    outcomes, unexpected = Counter(), []
    for case in range(CASES):
        name = rng.choice(SOURCES)
        path = tmp_path / f"case{case:03d}-{name}"
        path.write_bytes(mutate(rng, sources[name]))
        flavor = rng.choice(("ab", "pj"))
        try:
            # Every 20th case builds for real: initialisation must cope with what the parser let through.
            build(path, flavor, for_real=case % 20 == 0)
            outcomes["built"] += 1
        except DarknetError as exc:
            outcomes["DarknetError"] += 1
            if exc.file is None or Path(exc.file).name != path.name:
                unexpected.append(f"{path.name} ({flavor}): error does not name the file: {exc}")
        except Exception as exc:   # noqa: BLE001 - the point of the test
            unexpected.append(f"{path.name} ({flavor}): {type(exc).__name__}: {exc}")
    assert unexpected == [], "\n".join(unexpected)
    # The fuzzer must exercise both outcomes, or it is not testing anything.
    assert outcomes["built"] >= CASES // 10 and outcomes["DarknetError"] >= CASES // 10, outcomes


@pytest.mark.parametrize("name", SOURCES)
def test_unmutated_sources_build(name):
    for flavor in ("ab", "pj"):
        build(BAD_INPUTS / name, flavor)
