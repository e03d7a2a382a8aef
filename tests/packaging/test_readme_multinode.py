"""README's "Multi-node training" blocks run as printed, on this machine: every line of a block is one torchrun
agent ("node"; the c10d line, which every node runs, twice), all started together in a folder holding the
demo data and cfg. Only the rendezvous ports are replaced by free ones, so that runs never collide."""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from helpers.paths import ROOT
from helpers.torchrun import Agents, free_port, launcher

pytestmark = pytest.mark.slow

README = ROOT / "README.md"


def _blocks() -> list[list[str]]:
    section = re.search(r"^### Multi-node training\n(.*?)^##", README.read_text(), re.S | re.M)
    assert section, "README has no 'Multi-node training' section"
    blocks = re.findall(r"```bash\n(.*?)```", section.group(1), re.S)
    lines = [[line for line in block.splitlines() if line.strip() and not line.startswith("#")]
             for block in blocks]
    assert len(lines) == 2 and all(lines)
    return lines


def _agent(line: str, ports: dict[str, str]) -> tuple[dict, list[str]]:
    """The environment assignments in front of the command, and the command (torchrun where it is installed,
    else the same program as ``python -m torch.distributed.run``)."""
    for printed, port in ports.items():
        line = line.replace(printed, port)
    words = shlex.split(line)
    env = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    command = [word for word in words if not re.match(r"^[A-Z_]+=", word)]
    assert command[0] == "torchrun"
    return env, launcher() + command[1:]


@pytest.mark.parametrize("block", [0, 1], ids=["c10d", "static"])
def test_readme_multinode_block_trains_the_demo(tmp_path, block):
    shutil.copytree(ROOT / "data", tmp_path / "data")
    (tmp_path / "cfg").mkdir()
    shutil.copy(ROOT / "cfg" / "shapes-tiny.cfg", tmp_path / "cfg")
    lines = _blocks()[block]
    if len(lines) == 1:                                    # c10d: every node runs the same line
        lines = lines * 2
    ports = {"29400": str(free_port()), "29500": str(free_port())}
    agents = [_agent(line, ports) for line in lines]
    env = agents[0][0]
    assert all(e == env for e, _ in agents)
    with Agents(tmp_path, [command for _, command in agents], env=env) as running:
        status = running.finish(timeout=300)
    assert status == [0, 0], "\n".join(running.err)[-4000:]
    assert (tmp_path / "backup" / "shapes-tiny_final.weights").is_file()
    printed = running.out(0) + running.out(1)
    assert [line.split(":")[0].strip() for line in printed.splitlines() if " avg loss, " in line][-1] == "20"
