"""The one door to the array module and the global numeric settings.

Every kernel asks this module for ``xp`` (the array module) instead of importing
NumPy directly, so that a GPU array library could be swapped in at one place
(Chainer's ``backend.get_array_module`` idea). Today ``xp`` is always NumPy.
"""
from __future__ import annotations

import numpy as np

xp = np

_FLOATX = "float32"
_EPSILON = 1e-7


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


def get_array_module(*arrays):
    """Return the array module for ``arrays`` (NumPy today)."""
    return xp


def clear_session() -> None:
    """Reset automatic layer-name counters, as ``keras.backend.clear_session`` does."""
    from .layers.base import reset_name_counters

    reset_name_counters()
