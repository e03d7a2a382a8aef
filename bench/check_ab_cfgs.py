"""Parse and build every AlexeyAB detection cfg in a folder with flavor ab (not a test: the cfgs are not in the
repository). A detection cfg has a [yolo] or [region] section; one whose sections or options darknet_py
knowingly refuses (a CfgError saying "not supported" / "exists only") is listed as unsupported, any other
failure as a FAILURE (exit status 1).

    python bench/check_ab_cfgs.py DIR        # e.g. a checkout of AlexeyAB/darknet's cfg/

Built on the meta device: shapes only, no weights allocated.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

from darknet_py.network import parse_cfg
from darknet_py.errors import CfgError
from darknet_py.network import Network


def is_detection_cfg(path: Path) -> bool:
    text = path.read_text(errors="replace")
    return "[yolo]" in text or "[region]" in text


def check(path: Path) -> tuple[str, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.device("meta"):
                network = Network(parse_cfg(path, flavor="ab"))
    except CfgError as exc:
        refused = "not supported" in str(exc) or "exists only" in str(exc)
        return ("unsupported" if refused else "FAILURE"), str(exc).splitlines()[0]
    except Exception as exc:  # anything else is a bug to fix
        return "FAILURE", f"{type(exc).__name__}: {exc}"
    return "ok", f"{len(network.layers)} layers, {len(network.detection_indices)} detection layers"


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    results = {path.name: check(path) for path in sorted(folder.glob("*.cfg")) if is_detection_cfg(path)}
    for name, (status, detail) in results.items():
        print(f"{status:<12s} {name:<45s} {detail}")
    counts = {s: sum(1 for st, _ in results.values() if st == s) for s in ("ok", "unsupported", "FAILURE")}
    print(f"\n{counts['ok']} built, {counts['unsupported']} refused on purpose, {counts['FAILURE']} failures "
          f"({len(results)} detection cfgs)")
    sys.exit(1 if counts["FAILURE"] else 0)


if __name__ == "__main__":
    main()
