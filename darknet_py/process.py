"""How the `darknet_py` process spends its first and last second (issue 22). On the 2-core bench machine
`detector test` on one photo took 1.6 s, of which the command's own work was 0.13 s; the rest was Python
loading torch and tearing it down again (bench/RESULTS.md, "Start-up and exit"):

* Loading torch creates about half a million Python objects, and that growth keeps triggering the cyclic
  garbage collector, whose full passes walk every one of them: 0.1 s of the 0.8 s `import torch`. The
  collector is paused while torch loads, and what torch loaded is then frozen (`gc.freeze`): later passes,
  during the command, skip those objects, which live as long as the process anyway.
* After a command has succeeded, the interpreter's tear-down frees torch's modules object by object (0.4 s).
  The process ends instead once Python's own exit steps that keep data have run: other (non-daemon) threads
  have finished, the `atexit` handlers have run (logging, multiprocessing children, ...), and stdout and
  stderr are flushed. Every file darknet_py writes is closed (and renamed into place) before its command
  returns, so nothing is left for the tear-down to write.

Only the `darknet_py` entry point (`__main__.run`) does either; the library, and the CLI called in-process,
leave the interpreter as it is."""
from __future__ import annotations

import atexit
import gc
import importlib.abc
import importlib.util
import os
import sys
import threading


class _FreezeAfterLoading(importlib.abc.MetaPathFinder):
    """Finds the top-level package ``name`` once, with a loader that pauses the collector while it runs."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)          # once: the real finders answer from here on
        spec = importlib.util.find_spec(fullname)
        if spec is not None and isinstance(spec.loader, importlib.abc.FileLoader):
            spec.loader = _frozen_loader(type(spec.loader))(spec.loader.name, spec.loader.path)
        return spec


def _frozen_loader(base: type) -> type:
    class FrozenLoader(base):
        def exec_module(self, module):
            enabled = gc.isenabled()
            gc.disable()
            try:
                super().exec_module(module)
            finally:
                gc.freeze()
                if enabled:
                    gc.enable()
    return FrozenLoader


def freeze_after_loading(name: str = "torch") -> None:
    """The first import of ``name`` (whenever a command gets to it) runs with the garbage collector paused,
    and the objects that exist once it is loaded are frozen. Nothing happens if it is imported already."""
    if name not in sys.modules and not any(isinstance(f, _FreezeAfterLoading) for f in sys.meta_path):
        sys.meta_path.insert(0, _FreezeAfterLoading(name))


def end_successful_process() -> None:
    """End the process with status 0 now, skipping the interpreter's tear-down, after what a normal exit does
    first: wait for other threads (here: return, and let Python do it), run the `atexit` handlers, flush
    stdout and stderr (a failure, e.g. a closed pipe, also returns: Python then reports it as usual)."""
    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()             # and unregisters them: a return below does not run them twice
    try:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(0)
