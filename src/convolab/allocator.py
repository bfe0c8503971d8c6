"""Keep glibc from handing each large temporary back to the kernel (Linux only).

A training step allocates a dozen arrays of 0.5 to 8 MB (layer outputs, gradients, window
matrices). glibc serves blocks that large with a fresh ``mmap`` and unmaps them when freed,
so every step pays a page fault for each 4 KB page it touches again: measured here, the
one-conv CNN's epoch took 2.33 s that way and 1.69 s with the settings below. Raising the mmap threshold keeps those blocks in the heap,
where the next step reuses them; raising the trim threshold stops glibc from shrinking the
heap after each step. This is what a framework's caching allocator does, done with two
``mallopt`` calls. The trim threshold must exceed what one step frees: ResNet-20 at batch 128
frees over 256 MB at the end of each step, and with the threshold there glibc gave it back and
took 28,000 page faults (110 MB) a step to get it again: 275 ms a step on one thread, against
243 ms with 1 GiB and 386 ms with glibc's defaults (``python benchmarks/page_faults.py``, with
``CONVOLAB_MALLOC_TUNING=0`` for the defaults). It applies to the whole process and costs at most
the retained heap, so it is done by the first ``fit`` (``Trainer.fit`` calls :func:`tune`), never
by ``import convolab``: a program that imports convolab only to load a model or predict keeps its
allocator as it was. Skipped with ``CONVOLAB_MALLOC_TUNING=0`` or where the C library has no
``mallopt``.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 1 << 30

tuned = False


def tune() -> bool:
    """Apply the two ``mallopt`` settings once (the first ``fit`` calls this); returns whether they
    are in force."""
    global tuned
    if tuned or os.environ.get("CONVOLAB_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return tuned
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): leave the allocator alone
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return tuned
