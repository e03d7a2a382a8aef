"""What the command line imports: `--help`, `--version` and every sub-command's `--help` load neither torch nor
OpenCV (they would make asking for help take seconds), and an inference command loads neither numba (only
pjreddie-flavour training augmentation uses it) nor the data set checker. Each case runs in a fresh
interpreter (`sys.modules` of this test process holds everything already) and lists what it imported."""
from __future__ import annotations

import json
import subprocess
import sys

from helpers.paths import FIXTURES, ROOT

HEAVY = ("torch", "cv2", "numba", "onnx", "onnxruntime", "pycocotools", "matplotlib", "darknet_py.check",
         "darknet_py.train", "darknet_py.data.loader", "darknet_py.data.augment")

# runs the CLI in-process for each argument list, then prints which HEAVY modules were imported
PROBE = """
import json, sys
from darknet_py.cli import main
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit as exit:
        assert exit.code in (0, None), (argv, exit.code)
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


def imported(*argvs: list[str], cwd=ROOT) -> list[str]:
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs), json.dumps(HEAVY)], cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def help_argvs() -> list[list[str]]:
    from darknet_py.cli import cli
    argvs = [["--help"], ["--version"]]
    for name, command in cli.commands.items():
        argvs.append([name, "--help"])
        argvs += [[name, sub, "--help"] for sub in getattr(command, "commands", {})]
    return argvs


def test_help_and_version_import_no_torch_or_opencv():
    argvs = help_argvs()
    assert ["detector", "test", "--help"] in argvs and ["export", "--help"] in argvs
    assert imported(*argvs) == []


def imported_by_detect_run(tmp_path) -> list[str]:
    data = tmp_path / "obj.data"
    data.write_text(f"classes=3\nnames={FIXTURES / 'eval' / 'synth' / 'obj.names'}\n")
    image = FIXTURES / "eval" / "synth" / "JPEGImages" / "valid" / "00003.jpg"
    return imported(["detector", "test", str(data), str(FIXTURES / "eval" / "synth" / "cfg" / "tiny3.cfg"),
                     str(FIXTURES / "eval" / "tiny3" / "trained.weights"), str(image), "-dont_show"],
                    cwd=tmp_path)


def test_detector_test_imports_no_numba_nor_checker(tmp_path):
    found = imported_by_detect_run(tmp_path)
    # it did run the network on a picture (and so the probe does see heavy imports)
    assert "torch" in found and "cv2" in found
    assert set(found) <= {"torch", "cv2"}, found
    assert (tmp_path / "predictions.jpg").is_file()


def wait_policy_seen_by_torch(env_value) -> str:
    """OMP_WAIT_POLICY after the command line started (before any torch import), given ``env_value``."""
    import os
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    code = ("import os, sys\nfrom darknet_py.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules\nprint(os.environ.get('OMP_WAIT_POLICY'))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


def test_waiting_threads_sleep_unless_the_environment_says_otherwise():
    """Set before torch is imported (OpenMP reads it once): spinning threads starve the threads they wait
    for on shared cores (bench/RESULTS.md)."""
    assert wait_policy_seen_by_torch(None) == "PASSIVE"
    assert wait_policy_seen_by_torch("ACTIVE") == "ACTIVE"
