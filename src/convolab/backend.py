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


def get_array_module(*arrays):
    """Return the array module for ``arrays`` (NumPy today)."""
    return xp


def clear_session() -> None:
    """Reset automatic layer-name counters, as ``keras.backend.clear_session`` does."""
    from .layers.base import reset_name_counters

    reset_name_counters()
