"""One training run per backup folder: a second `detector train` writing to the same folder would overwrite
the first one's `_last`/`_final` weights and interleave its log, so it stops before touching any file.

The lock is ``<backup>/.darknet_py_train.lock`` holding ``pid host start-time``. It is created complete in
one step (written to a temp file, then hard-linked into place), so a reader never sees a half-written lock.
A lock whose process is gone (same host, pid no longer alive) or whose content is unreadable is stale: it is
taken over with a message. A lock from another host cannot be checked and is respected."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Optional

from ..errors import TrainingError
from ..atomic_write import process_alive

LOCK_NAME = ".darknet_py_train.lock"


class BackupLock:
    """Held from :meth:`acquire` to :meth:`release`; only the process that wrote it removes it."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / LOCK_NAME
        self.content = f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
        self.held = False

    def acquire(self, say=print) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainingError(f"cannot create the backup folder: {exc.strerror}", file=str(self.path.parent)) \
                from None
        if not self._create():
            owner = _read_owner(self.path)
            if owner is not None and not _stale(owner):
                raise TrainingError(
                    f"another training run (pid {owner[0]} on {owner[1]}, started {owner[2]}) writes to this "
                    "backup folder", file=str(self.path.parent),
                    hint=f"wait for it to end, or set another backup= in the .data file; if no such run is "
                         f"alive, delete {self.path}")
            say(f"Taking over the stale lock {self.path} "
                + (f"(pid {owner[0]} on {owner[1]} is gone)" if owner else "(unreadable)"), flush=True)
            self.path.unlink(missing_ok=True)
            if not self._create():
                raise TrainingError("another training run took this backup folder at the same moment",
                                    file=str(self.path.parent))
        self.held = True

    def release(self) -> None:
        if self.held and _read_text(self.path) == self.content:
            self.path.unlink(missing_ok=True)
        self.held = False

    def _create(self) -> bool:
        """Write the lock under a temp name and link it into place: False if a lock already exists."""
        tmp = self.path.with_name(f"{LOCK_NAME}.tmp{os.getpid()}")
        try:
            tmp.write_text(self.content)
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            raise TrainingError(f"cannot write the lock file: {exc.strerror}", file=str(self.path)) from None
        finally:
            tmp.unlink(missing_ok=True)


def _read_text(path: Path) -> Optional[str]:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _read_owner(path: Path) -> Optional[tuple[int, str, str]]:
    """(pid, host, start time) of a lock file, or None when it cannot be read or parsed."""
    fields = (_read_text(path) or "").split()
    if len(fields) != 3 or not fields[0].isdigit():
        return None
    return int(fields[0]), fields[1], fields[2]


def _stale(owner: tuple[int, str, str]) -> bool:
    """The lock's process is gone. Our own pid means an earlier run in this process that did not get to
    release it (or a recycled pid): nothing else can hold it."""
    pid, host, _ = owner
    return host == socket.gethostname() and (pid == os.getpid() or not process_alive(pid))
