"""A command's outputs are never its inputs: before any work, every command that writes a file hands its
inputs (cfg, weights, data, names, lists, images, video) and the files it will write to
:func:`refuse_overwriting_inputs`, which refuses an output that is an input, with one message naming both.

"Is" means the same file however it is spelled: for files that exist, the same file on disk (device and
inode: ``./a``, ``dir/../a``, a symlink on either side, a hard link); for files not there yet, the same
resolved path. A folder the command writes into (``detector test --save-dir DIR``) is checked through the
files it would write there (``DIR/<image name>.jpg``): the caller lists them, or gives the folder and the
names in ``output_dirs``.

The roles are what the message calls each file: ``{"weights file": "x.weights"}`` as input and
``{"output": "x.weights"}`` as output give ``export: output 'x.weights' is the input weights file
'x.weights'``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Optional, Union

from .errors import UsageError

PathLike = Union[str, "os.PathLike[str]"]
Paths = Union[PathLike, Iterable[PathLike]]


def refuse_overwriting_inputs(command: str, inputs: Mapping[str, Optional[Paths]],
                              outputs: Mapping[str, Optional[Paths]],
                              output_dirs: Mapping[str, tuple[PathLike, Iterable[str]]] = {}) -> None:
    """Raise :class:`~darknet_py.errors.UsageError` if an output is one of the inputs (or two outputs of
    different roles are one file: one would overwrite the other).

    ``inputs`` and ``outputs`` map a role ("weights file", "-out_filename") to a path, several paths, or
    None (no such file this run). ``output_dirs`` maps a role to (folder, names of the files written in
    it). Paths are compared as they are now; a missing path can still clash by its resolved name."""
    written = dict(outputs)
    for role, (folder, names) in output_dirs.items():
        written[role] = [Path(folder) / name for name in names]
    known, outs = _identities(inputs), {}
    for role, path in _each(written):
        identity = file_identity(path)
        if identity in known:
            in_role, in_path = known[identity]
            raise UsageError(f"{command}: {role} '{path}' is the input {in_role} '{in_path}'",
                             hint="write to another file name: the input would be overwritten")
        other_role, other = outs.setdefault(identity, (role, path))
        if other_role != role:
            raise UsageError(f"{command}: {role} '{path}' is also the {other_role} '{other}'",
                             hint="give each output its own file name: one would overwrite the other")


def file_identity(path: PathLike) -> object:
    """What makes two spellings one file: (device, inode) of an existing file (a symlink is followed, a hard
    link has the same), else the resolved path. An existing file and a missing one are never the same."""
    try:
        stat = os.stat(path)
        return stat.st_dev, stat.st_ino
    except (OSError, ValueError):            # missing, unreadable folder, or a name with a NUL
        pass
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):          # a symlink loop: the literal path is all there is
        return os.path.abspath(path)


def _identities(inputs: Mapping[str, Optional[Paths]]) -> dict[object, tuple[str, PathLike]]:
    """Each input's identities -> (role, path as given); the first role named wins."""
    known: dict[object, tuple[str, PathLike]] = {}
    for role, path in _each(inputs):
        known.setdefault(file_identity(path), (role, path))
    return known


def _each(paths: Mapping[str, Optional[Paths]]) -> Iterable[tuple[str, PathLike]]:
    """(role, path) for every path of every role; None and empty strings are no file."""
    for role, value in paths.items():
        many = value if isinstance(value, Iterable) and not isinstance(value, (str, bytes, os.PathLike)) \
            else [value]
        for path in many:
            if path is not None and str(path) != "":
                yield role, path
