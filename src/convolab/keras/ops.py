"""``keras.ops``: NumPy-like functions, recorded on the tape inside a training step.

Besides :mod:`convolab.autodiff.functions`: the activations (``gelu``, ``elu``, ``selu``, ``silu``/
``swish``, ``leaky_relu``, ``hard_sigmoid``, ``softsign``, ``mish``...), ``array``, ``moments``,
``conv`` and ``conv_transpose``.
"""

import numpy as _np

from .. import activations as _activations
from ..activations import (
    elu,
    hard_sigmoid,
    leaky_relu,
    mish,
    selu,
    silu,
    softsign,  # noqa: F401
    swish,
)
from ..autodiff import functions as _f
from ..autodiff.functions import *  # noqa: F401,F403
from ..autodiff.functions import __all__ as _base_all
from ..nn.tape_conv import conv, conv_transpose  # noqa: F401


def gelu(x, approximate=True):
    """Keras's ``ops.gelu``: the tanh approximation by default (``approximate=True``), unlike
    ``keras.activations.gelu`` and ``activation="gelu"``, whose default is the exact ``x * Phi(x)``.
    Shape: output = input."""
    return _activations.gelu(x, approximate=approximate)


def array(x, dtype=None):
    """A new array of ``x`` (Keras's ``ops.array``); Python floats become ``floatx``."""
    from ..backend import floatx

    a = _np.array(x, dtype=dtype)
    if dtype is None and a.dtype == _np.float64 and not isinstance(x, _np.ndarray):
        a = a.astype(floatx())
    return a


def moments(x, axes, keepdims=False, synchronized=False):
    """``(mean, variance)`` of ``x`` over ``axes`` (``synchronized`` is accepted and ignored: one device)."""
    axes = tuple(axes) if isinstance(axes, (list, tuple)) else axes
    return _f.mean(x, axis=axes, keepdims=keepdims), _f.var(x, axis=axes, keepdims=keepdims)


__all__ = list(_base_all) + [
    "array",
    "conv",
    "conv_transpose",
    "elu",
    "gelu",
    "hard_sigmoid",
    "leaky_relu",
    "mish",
    "moments",
    "selu",
    "silu",
    "softsign",
    "swish",
]
