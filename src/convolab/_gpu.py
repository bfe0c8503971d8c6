"""CuPy behind the backend: finding it, choosing the CUDA device, and its errors said plainly.

Nothing here imports CuPy until a GPU is asked for, so the CPU path never pays for it and
CPU installs never need it. :data:`cupy` stays ``None`` until then; ``backend`` reads it to
tell GPU arrays from NumPy ones.
"""

from __future__ import annotations

import importlib
import os

#: the CuPy module once a GPU was activated (``None`` before: the CPU path never loads it)
cupy = None

#: the share of free GPU memory ``fit`` may fill with the whole training set; above it, batches
#: are copied one at a time (``CONVOLAB_GPU_DATA_FRACTION``, default 0.5)
DATA_FRACTION = float(os.environ.get("CONVOLAB_GPU_DATA_FRACTION", "0.5"))

INSTALL_HINT = 'pip install "convolab[gpu]" (CuPy for CUDA 12, cupy-cuda12x; for CUDA 13 pip install cupy-cuda13x)'


class GPUUnavailableError(RuntimeError):
    """The GPU was asked for but cannot be used: CuPy is missing or no CUDA device answers."""


class GPUOutOfMemoryError(MemoryError):
    """The GPU ran out of memory; the message says what was running and what to try."""


def _import_cupy():
    try:
        return importlib.import_module("cupy")
    except ImportError as e:
        raise GPUUnavailableError(
            f"convolab was asked to compute on the GPU, but CuPy is not installed ({e}). Install it with "
            f"{INSTALL_HINT}, or use the CPU: convolab.backend.set_device('cpu') / CONVOLAB_DEVICE=cpu"
        ) from e


def _device_count(cp) -> int:
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception as e:  # CUDARuntimeError (no driver, no device); its class moves between versions
        raise GPUUnavailableError(
            f"CuPy is installed but no CUDA device answers ({type(e).__name__}: {e}). Check `nvidia-smi`, the "
            "driver, and that the CuPy package matches the CUDA version (cupy-cuda12x for CUDA 12); or use the "
            "CPU: convolab.backend.set_device('cpu')"
        ) from e


def usable(index=0) -> bool:
    """True when CuPy imports and CUDA device ``index`` exists (never raises)."""
    try:
        return _device_count(_import_cupy()) > index
    except GPUUnavailableError:
        return False


def activate(index=0):
    """Load CuPy, select CUDA device ``index``, and return the CuPy module.

    Raises:
        GPUUnavailableError: CuPy missing, no device, or no device ``index``.
    """
    global cupy
    cp = _import_cupy()
    count = _device_count(cp)
    if count <= index:
        raise GPUUnavailableError(
            f"CUDA device {index} was asked for, but CuPy sees {count} device(s)"
            + ("" if count else "; check `nvidia-smi` and the driver")
            + "; use 'gpu' for the first one, or set_device('cpu')"
        )
    cp.cuda.Device(index).use()
    cupy = cp
    return cp


def oom_errors() -> tuple:
    """CuPy's out-of-memory exception classes, or ``()`` while CuPy is not in use."""
    if cupy is None:
        return ()
    return (cupy.cuda.memory.OutOfMemoryError,)


def out_of_memory(error, what):
    """A :class:`GPUOutOfMemoryError` for ``error`` raised while doing ``what`` (a phrase)."""
    return GPUOutOfMemoryError(
        f"the GPU ran out of memory while {what} ({error}). Try a smaller batch_size, keep less training data on "
        "the GPU (CONVOLAB_GPU_DATA_FRACTION=0.2; the rest is copied per batch), free other GPU work, or "
        "train on the CPU with convolab.backend.set_device('cpu')"
    )


def free_bytes() -> int:
    """Free memory on the current device: the driver's free bytes plus CuPy's pooled free blocks."""
    free, _total = cupy.cuda.Device().mem_info
    return int(free) + int(cupy.get_default_memory_pool().free_bytes())


def fits(nbytes) -> bool:
    """True when ``nbytes`` of data fit in :data:`DATA_FRACTION` of the free GPU memory."""
    return nbytes <= DATA_FRACTION * free_bytes()


def to_gpu(cp, a, dtype=None):
    """``cp.asarray(a, dtype)``, with CuPy's out-of-memory error said in convolab's words."""
    try:
        return cp.asarray(a, dtype=dtype)
    except oom_errors() as e:
        shape = getattr(a, "shape", None)
        raise out_of_memory(e, f"copying an array of shape {shape} to the GPU") from e
