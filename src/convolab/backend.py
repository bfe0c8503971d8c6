"""The one door to the array module, the device, and the global numeric settings.

Every kernel asks this module for its array module instead of importing NumPy directly, so
that CuPy can stand in for NumPy at one place (Chainer's ``backend.get_array_module``):

- ``xp`` is the array module of the current device: NumPy on ``'cpu'``, CuPy on ``'gpu'``.
  Code that creates arrays from nothing (weights, optimizer state) reads ``backend.xp`` at
  call time, never ``from backend import xp`` (that would freeze it at import).
- :func:`get_array_module` looks at the arrays it is given: an op computes where its inputs
  live, whatever the current device.

The device is chosen at start-up from ``CONVOLAB_DEVICE`` (``cpu``, the default; ``gpu`` or
``gpu:N``; ``auto``: the GPU when CuPy and a CUDA device are there) and in code with
:func:`set_device`. Arrays cross between host and device only through :func:`to_device` and
:func:`to_host`. The CuPy details (finding it, its errors) live in ``_gpu.py``.
"""

from __future__ import annotations

import os

import numpy as np

from . import _gpu
from ._gpu import GPUOutOfMemoryError as GPUOutOfMemoryError  # re-exported: backend.GPUOutOfMemoryError
from ._gpu import GPUUnavailableError as GPUUnavailableError

xp = np

_FLOATX = "float32"
_EPSILON = 1e-7
_DEVICE = "cpu"


def floatx() -> str:
    """The default float dtype name for new weights and cast inputs (``'float32'``)."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float dtype (``'float32'`` or ``'float64'``)."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"set_floatx expects 'float32' or 'float64'; got {value!r}")
    _FLOATX = value


def epsilon() -> float:
    """The fuzz factor Keras uses to clip probabilities (1e-7)."""
    return _EPSILON


def image_data_format() -> str:
    """The image layout: always ``'channels_last'`` (NHWC), Keras's default."""
    return "channels_last"


def set_image_data_format(data_format: str) -> None:
    """Accepts ``'channels_last'`` only: every convolab kernel is written for NHWC images.

    Raises:
        ValueError: for any other value (``'channels_first'`` included).
    """
    if data_format != "channels_last":
        raise ValueError(
            f"set_image_data_format: convolab supports only 'channels_last' (NHWC images, "
            f"(batch, height, width, channels)); got {data_format!r}. Transpose channels-first "
            "data with np.transpose(x, (0, 2, 3, 1))"
        )


# -- the device --------------------------------------------------------------------------------


def set_device(device: str) -> str:
    """Compute on ``'cpu'`` (NumPy) or ``'gpu'`` / ``'gpu:N'`` (CuPy on CUDA device N).

    Models built before the switch move their weights (and optimizer state) to the new device
    at their next ``fit``/``evaluate``/``predict``. ``'auto'`` picks the GPU when one is usable.

    Returns:
        The device now in use (``'cpu'`` or ``'gpu'``).

    Raises:
        ValueError: an unknown device name.
        GPUUnavailableError: ``'gpu'`` without CuPy (``pip install "convolab[gpu]"``) or
            without a CUDA device.
    """
    global xp, _DEVICE
    name, index = _parse_device(device)
    if name == "auto":
        name = "gpu" if _gpu.usable(index) else "cpu"
    if name == "cpu":
        xp, _DEVICE = np, "cpu"
        return _DEVICE
    xp = _gpu.activate(index)  # raises GPUUnavailableError with what to do
    _DEVICE = "gpu"
    return _DEVICE


def _parse_device(device):
    if not isinstance(device, str):
        raise TypeError(f"set_device expects a string ('cpu', 'gpu', 'gpu:0', 'auto'); got {type(device).__name__}")
    name, _, index = device.strip().lower().partition(":")
    if name == "cuda":
        name = "gpu"
    if name not in ("cpu", "gpu", "auto") or (index and (name == "cpu" or not index.isdigit())):
        raise ValueError(
            f"unknown device {device!r}; expected 'cpu', 'gpu', 'gpu:N' (N a CUDA device number) or 'auto'"
        )
    return name, int(index) if index else 0


def get_device() -> str:
    """``'cpu'`` or ``'gpu'``: where new weights and training data go."""
    return _DEVICE


def on_gpu() -> bool:
    """True when the current device is the GPU."""
    return _DEVICE == "gpu"


def get_array_module(*arrays):
    """The array module of ``arrays``: CuPy if any of them is a CuPy array, else NumPy.

    Costs one global lookup while CuPy was never loaded (the CPU hot path).
    """
    cp = _gpu.cupy
    if cp is not None:
        for a in arrays:
            if isinstance(a, cp.ndarray):
                return cp
    return np


def is_device_array(a) -> bool:
    """True for an array that lives on the GPU."""
    cp = _gpu.cupy
    return cp is not None and isinstance(a, cp.ndarray)


def to_device(a, dtype=None):
    """``a`` as an array of the current device (a no-op for an array already there).

    On the CPU this is ``np.asarray``; on the GPU one host-to-device copy.
    """
    if _DEVICE == "cpu":
        return np.asarray(a, dtype=dtype)
    return _gpu.to_gpu(xp, a, dtype)


def to_host(a):
    """``a`` as a NumPy array: the identity for NumPy arrays, one copy back for a GPU array."""
    cp = _gpu.cupy
    if cp is not None and isinstance(a, cp.ndarray):
        return cp.asnumpy(a)
    return a


def host_copy(a):
    """A NumPy copy of ``a`` (what ``get_weights`` returns), from the host or the GPU."""
    cp = _gpu.cupy
    if cp is not None and isinstance(a, cp.ndarray):
        return cp.asnumpy(a)
    return np.array(a, copy=True)


def assign(dst, value):
    """``dst[...] = value``, first copying ``value`` to where ``dst`` lives (host or GPU)."""
    dst[...] = get_array_module(dst).asarray(value)


def scatter_add(dst, indices, values):
    """``dst[indices] += values`` with repeated indices adding up, in place, on the host or the GPU.

    ``np.add.at`` on NumPy arrays; CuPy's ``cupyx.scatter_add`` on GPU arrays (``indices`` and
    ``values`` on the GPU too).
    """
    if get_array_module(dst) is np:
        np.add.at(dst, indices, values)
        return
    import cupyx

    cupyx.scatter_add(dst, indices, values)


def out_of_memory_errors() -> tuple:
    """The exception classes the GPU library raises when its memory runs out (``()`` on CPU)."""
    return _gpu.oom_errors()


def clear_session() -> None:
    """Reset automatic layer-name counters, as ``keras.backend.clear_session`` does."""
    from .utils.naming import reset_name_counters

    reset_name_counters()


_env_device = os.environ.get("CONVOLAB_DEVICE", "").strip()
if _env_device and _env_device.lower() != "cpu":
    set_device(_env_device)
