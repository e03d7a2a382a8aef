"""Write a file so that a reader (or a resumed run) never finds it half-written: the bytes go to a temp file
beside it, are fsync'ed, and the temp file is renamed over the target. Every file darknet_py writes that
someone may rely on after a crash goes through :func:`replace_atomically`: `.weights` and `.pt` files, the
training backups and their state side file, the chart, the evaluation outputs.

A temp file is named ``.<name>.tmp<pid>``; the temp files of writers that were killed mid-write (their
process is gone) are swept after each successful write."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .errors import DarknetError, WeightsError
from .faults import pause_point


def write_atomically(path: str | os.PathLike, data: bytes, error_type: type[DarknetError] = WeightsError) -> None:
    """Write ``data`` to ``path`` atomically; failures raise ``error_type`` naming ``path``."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    replace_atomically(path, write, error_type)


def save_with_torch(payload: dict, path: str | os.PathLike, error_type: type[DarknetError] = WeightsError) -> None:
    """`torch.save` atomically; its failures (a full disk, a missing directory: torch reports both as
    RuntimeError) become one ``error_type`` naming ``path``."""
    import torch     # on use: writing JSON or text (every command's outputs) must not import torch

    def write(tmp: Path) -> None:
        torch.save(payload, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())

    replace_atomically(path, write, error_type)


def replace_atomically(path: str | os.PathLike, write: Callable[[Path], None],
                       error_type: type[DarknetError] = WeightsError) -> None:
    """``write(tmp)`` fills a temp file beside ``path``, which then replaces ``path`` in one rename. A
    write-protected ``path`` is refused: a rename would silently replace it."""
    path = Path(path)
    refuse_read_only(path, error_type)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        pause_point("write", str(path))     # tests: stop or kill the process between the write and the rename
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        _remove_quietly(tmp)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error_type(f"cannot write file: {reason}", file=str(path)) from None
    _remove_stale_temps(path)


def refuse_read_only(path: Path, error_type: type[DarknetError] = WeightsError) -> None:
    """Writing by rename would replace a file its owner protected; refuse instead, as `cp` does."""
    if path.is_file() and not (os.access(path, os.W_OK) and path.stat().st_mode & 0o222):  # root ignores modes
        raise error_type("is write-protected: not replaced", file=str(path),
                         hint="make it writable (chmod u+w) or choose another destination")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True         # it exists but belongs to someone else
    return True


def _remove_stale_temps(path: Path) -> None:
    """Temp files of ``path`` left by writers that were killed mid-write (their process is gone)."""
    prefix = f".{path.name}.tmp"
    for tmp in path.parent.glob(f"{prefix}*"):
        pid = tmp.name[len(prefix):]
        if pid.isdigit() and not process_alive(int(pid)):
            _remove_quietly(tmp)


def _remove_quietly(tmp: Path) -> None:
    """Drop a temp file if there is one (its directory may not even exist: that is often why we failed)."""
    try:
        tmp.unlink()
    except OSError:
        pass
