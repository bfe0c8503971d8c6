"""Helpers shared by the op tests: central-difference gradients and the TF padding rule.

Written independently of ``convolab`` so that the tests check the package against
something it did not compute itself.
"""

from __future__ import annotations

import numpy as np


def numerical_gradient(f, x, dy, h=1e-6):
    """Central-difference gradient of ``sum(f(x) * dy)`` with respect to ``x``, in float64.

    Args:
        f: function of one array returning an array (or a scalar) shaped like ``dy``.
        x: float64 array; perturbed in place one element at a time and restored.
        dy: upstream gradient, the weights of the scalar ``sum(f(x) * dy)``.
        h: step.

    Returns:
        float64 array shaped like ``x``.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 x; got {x.dtype}")
    dy = np.asarray(dy, dtype=np.float64)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = np.sum(np.asarray(f(x), dtype=np.float64) * dy)
        x[i] = old - h
        fm = np.sum(np.asarray(f(x), dtype=np.float64) * dy)
        x[i] = old
        grad[i] = (fp - fm) / (2.0 * h)
    return grad


def rel_error(a, b):
    """Norm-wise relative error ``max|a - b| / max(max|a|, max|b|)``; 0 when both are zero.

    Norm-wise rather than element-wise, so entries that are legitimately near zero do
    not turn round-off into a huge ratio; a wrong entry of the size of the gradient
    still gives an error of order one.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b)) / scale)


def explicit_padding(size, kernel, stride, padding):
    """``(out, before, after)`` along one axis, TensorFlow's rule, written out longhand.

    'valid': no padding, ``out = floor((size - kernel) / stride) + 1``.
    'same': ``out = ceil(size / stride)``, total padding ``max((out-1)*stride + kernel - size, 0)``,
    the odd pixel after (bottom/right).
    """
    if padding == "valid":
        return (size - kernel) // stride + 1, 0, 0
    if padding == "same":
        out = (size + stride - 1) // stride
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2, total - total // 2
    raise ValueError(padding)


def pair(v):
    """``3 -> (3, 3)``; tuples pass through."""
    return (v, v) if isinstance(v, int) else tuple(v)
