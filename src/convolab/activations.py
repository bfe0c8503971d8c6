"""Activations: the functions of ``keras.activations``, and the lookup behind ``activation=``.

The functions take NumPy arrays of any rank (a 1-D vector included, softmax excepted only
for 0-D) and return NumPy arrays. Integer and boolean inputs are cast to
``backend.floatx()`` first, as Keras converts its inputs; floating inputs keep their dtype.
A tape :class:`~convolab.autodiff.Tensor` goes to the matching ``keras.ops`` function
instead, so inside a ``GradientTape`` its gradient is recorded, never silently dropped.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autodiff import functions as _tape_ops
from .autodiff.tensor import Tensor
from .ops.activations import ACTIVATIONS, activation_forward, relu_forward
from .ops.activations import softmax as _softmax


def _as_float(x):
    x = x if backend.is_device_array(x) else np.asarray(x)
    if x.dtype.kind in "biu":
        return x.astype(backend.floatx())
    if x.dtype.kind != "f":
        raise TypeError(f"activations expect a numeric array; got dtype {x.dtype}")
    return x


def linear(x):
    """The identity (``activation=None``)."""
    return x if isinstance(x, Tensor) else _as_float(x)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's ``relu``: ``x`` above ``threshold`` (capped at ``max_value``), else
    ``negative_slope * (x - threshold)``. Shape: output = input."""
    if isinstance(x, Tensor):
        if negative_slope or max_value is not None or threshold:
            raise NotImplementedError(
                "keras.activations.relu on a tape Tensor supports the plain ReLU only; got "
                f"negative_slope={negative_slope!r}, max_value={max_value!r}, threshold={threshold!r}"
            )
        return _tape_ops.relu(x)
    return relu_forward(_as_float(x), negative_slope, max_value, threshold)[0]


def sigmoid(x):
    """``1 / (1 + exp(-x))``, without overflow for large ``|x|``. Shape: output = input."""
    if isinstance(x, Tensor):
        return _tape_ops.sigmoid(x)
    return activation_forward("sigmoid", _as_float(x))


def tanh(x):
    """Hyperbolic tangent. Shape: output = input."""
    if isinstance(x, Tensor):
        return _tape_ops.tanh(x)
    return activation_forward("tanh", _as_float(x))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis`` (default the last), computed stably.

    Raises:
        ValueError: ``x`` is 0-D, or ``axis`` is not one of its axes.
    """
    if isinstance(x, Tensor):
        return _tape_ops.softmax(x, axis=axis)
    x = _as_float(x)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"softmax: `axis` must be an int naming one of the input's {x.ndim} axes; got axis={axis!r} "
            f"for shape {tuple(x.shape)}"
        )
    return _softmax(x, axis=int(axis))


#: the function behind each name in ACTIVATIONS
FUNCTIONS = {"linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax}
_NAMES = {fn: name for name, fn in FUNCTIONS.items()}


def get(identifier, owner: str = "layer") -> str:
    """Normalise an activation argument to one of :data:`ACTIVATIONS`.

    ``None`` means ``'linear'``; names are case-insensitive; the functions of this module
    (``keras.activations.relu``...) stand for their names. Raises ``ValueError`` listing the
    valid names.
    """
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        name = identifier.lower()
        if name in ACTIVATIONS:
            return name
    elif callable(identifier) and identifier in _NAMES:
        return _NAMES[identifier]
    raise ValueError(
        f"{owner}: unknown activation {identifier!r}; valid: {', '.join(ACTIVATIONS)} (or None, "
        "or one of the keras.activations functions)"
    )
