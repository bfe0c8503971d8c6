"""Element-wise activations; each backward uses the forward *output* only.

``activation_forward(name, z) -> y`` and ``activation_backward(name, dy, y) -> dz``.
"""
from __future__ import annotations

from .. import kernels
from ..backend import xp

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


def _sigmoid(z):
    # exp of a negative number only: no overflow warning for large |z|.
    out = xp.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + xp.exp(-z[pos]))
    ez = xp.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def softmax(z, axis=-1):
    """Numerically stable softmax along ``axis``."""
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def activation_forward(name, z):
    """Apply activation ``name`` to ``z`` (any shape); ``linear`` returns ``z`` itself."""
    if name == "linear":
        return z
    if name == "relu":
        return xp.maximum(z, 0)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return xp.tanh(z)
    if name == "softmax":
        return softmax(z)
    raise ValueError(f"Unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")


def activation_backward(name, dy, y):
    """Gradient with respect to the pre-activation, from the upstream ``dy`` and output ``y``."""
    if name == "linear":
        return dy
    if name == "relu":
        if kernels.usable(dy, y):
            dz = xp.empty_like(y)
            kernels.relu_bwd_f32(dy, y, dz)
            return dz
        return dy * (y > 0)
    if name == "sigmoid":
        return dy * y * (1 - y)
    if name == "tanh":
        return dy * (1 - y * y)
    if name == "softmax":
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    raise ValueError(f"Unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
