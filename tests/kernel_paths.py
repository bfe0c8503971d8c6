"""Test helper: run a block on the NumPy reference path (the compiled kernels switched off)."""
from __future__ import annotations

import contextlib

from convolab import kernels


@contextlib.contextmanager
def numpy_path():
    """``kernels.lib = None`` inside the block (every op looks it up when called), restored after."""
    saved = kernels.lib
    kernels.lib = None
    try:
        yield
    finally:
        kernels.lib = saved
