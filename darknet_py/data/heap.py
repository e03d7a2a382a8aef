"""Where a loader process's image buffers come from: glibc's heap, kept, instead of fresh mappings.

Every augmented image allocates a few arrays of 0.5-2 MB (the decoded pixels, the canvas, HSV planes, the
output). glibc serves blocks that large with a fresh `mmap` and unmaps them when freed, so each image pays
first-touch page faults on several MB — on the VMs measured for issue #15 that was about a third of the CPU
time of a pjreddie image. Raising the mmap threshold (to glibc's 32 MiB maximum) and the trim threshold keeps
those blocks on the heap, mapped, and the next image reuses them. Values are unchanged; the process keeps up
to TRIM bytes of freed heap instead of returning them to the system."""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3        # glibc's mallopt parameter numbers
MMAP = 32 << 20                                    # glibc's largest allowed mmap threshold (64-bit)
TRIM = 256 << 20


def keep_freed_buffers() -> bool:
    """Tune this process's malloc as above. False where the C library has no `mallopt` (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM))
