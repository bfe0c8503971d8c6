"""Element-wise activations; each backward uses the forward *output* only.

``activation_forward(name, z) -> y`` and ``activation_backward(name, dy, y) -> dz``, for any
rank (softmax needs at least one axis: it normalises the last). Keras's parametrised ReLU
(``relu_forward``/``relu_backward``) needs its input, not its output, and has its own pair.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..kernels import cuda
from . import threads

#: a ReLU pass costs about what this many GEMM multiply-adds cost per value (memory-bound:
#: about 0.2 ns a value); ops/threads.py splits the batch where a slice carries enough of it
_WORK_PER_VALUE = 20.0

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


def _sigmoid(z):
    xp = get_array_module(z)
    if xp is not np:
        # one fused element-wise pass, no boolean masks (a masked write waits for the GPU)
        return xp.tanh(z * z.dtype.type(0.5)) * z.dtype.type(0.5) + z.dtype.type(0.5)
    # exp of a negative number only: no overflow warning for large |z|.
    out = xp.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + xp.exp(-z[pos]))
    ez = xp.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def softmax(z, axis=-1):
    """Numerically stable softmax along ``axis``."""
    xp = get_array_module(z)
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def activation_forward(name, z):
    """Apply activation ``name`` to ``z`` (any shape); ``linear`` returns ``z`` itself."""
    if name == "linear":
        return z
    if name == "relu":
        if type(z) is np.ndarray and kernels.usable(z):
            return _relu_kernel(z)
        xp = get_array_module(z)
        parts = threads.spans(z.shape[0], _WORK_PER_VALUE * z.size) if z.ndim > 1 else None
        if parts is None:
            return xp.maximum(z, 0)
        y = xp.empty_like(z)  # one slice of the batch per thread inside fit/evaluate/predict
        threads.run(lambda lo, hi: xp.maximum(z[lo:hi], 0, out=y[lo:hi]), parts)
        return y
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return get_array_module(z).tanh(z)
    if name == "softmax":
        return softmax(z)
    raise ValueError(f"Unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")


def activation_backward(name, dy, y):
    """Gradient with respect to the pre-activation, from the upstream ``dy`` and output ``y``."""
    if name == "linear":
        return dy
    if name == "relu":
        xp = get_array_module(dy, y)
        if xp is not np:
            dz = xp.empty(y.shape, dtype=y.dtype)
            cuda.relu_bwd(xp.ascontiguousarray(dy, dtype=y.dtype), xp.ascontiguousarray(y), dz)
            return dz
        if kernels.usable(dy, y):
            dz = xp.empty_like(y)
            nt = threads.kernel_threads(y.shape[0], _WORK_PER_VALUE * y.size) if y.ndim > 1 else 1
            kernels.relu_bwd_f32(dy, y, dz, threads=nt)
            return dz
        return dy * (y > 0)
    if name == "sigmoid":
        return dy * y * (1 - y)
    if name == "tanh":
        return dy * (1 - y * y)
    if name == "softmax":
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    raise ValueError(f"Unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")


def _relu_kernel(x, cap=float("inf")):
    """``min(max(x, 0), cap)`` of a C-contiguous float32 NumPy array on the compiled kernel,
    split over its threads inside ``batch_threads``."""
    y = np.empty_like(x)
    nt = threads.kernel_threads(x.shape[0], _WORK_PER_VALUE * x.size) if x.ndim > 1 else 1
    kernels.relu_fwd_f32(x, y, cap, nt)
    return y


def relu_forward(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's ReLU: ``min(x, max_value)`` above ``threshold`` (strictly), else
    ``negative_slope * (x - threshold)``.

    Args:
        x: any shape.
        negative_slope: slope below the threshold (>= 0).
        max_value: cap, ``None`` for none (>= 0).
        threshold: where the slope changes (>= 0).

    Returns:
        ``(y, cache)``, ``y`` shaped like ``x`` and of its dtype.
    """
    if not negative_slope and not threshold:
        # the plain ReLU (Keras's defaults) and the capped one (ReLU6): no select, and the
        # backward needs only the output (0 < y < cap exactly where 0 < x < cap)
        if max_value is None:
            y = activation_forward("relu", x)
            return y, (None, y, max_value)
        if type(x) is np.ndarray and kernels.usable(x):
            y = _relu_kernel(x, float(max_value))
            return y, (None, y, max_value)
        xp = get_array_module(x)
        cap = x.dtype.type(max_value)
        y = xp.empty(x.shape, dtype=x.dtype)  # C-contiguous, so y2 below is a view of it
        x2, y2 = x.reshape(len(x), -1) if x.ndim else x.reshape(1, 1), y.reshape(len(y), -1) if y.ndim else y.reshape(1, 1)

        def capped(lo, hi):  # both passes over one slice while it is in the cache
            xp.maximum(x2[lo:hi], 0, out=y2[lo:hi])
            xp.minimum(y2[lo:hi], cap, out=y2[lo:hi])

        parts = threads.spans(len(x2), 2 * _WORK_PER_VALUE * x.size) if x.ndim > 1 else None
        if parts:
            threads.run(capped, parts)
        else:
            capped(0, len(x2))
        return y, (None, y, max_value)
    # slope 0 gives +0.0 below the threshold, not 0.0 * negative = -0.0
    xp = get_array_module(x)
    below = negative_slope * (x - threshold) if negative_slope else 0
    y = xp.where(x > threshold, x, below).astype(x.dtype, copy=False)
    if max_value is not None:
        y = xp.minimum(y, x.dtype.type(max_value))
    return y, (x, negative_slope, max_value, threshold)


def relu_backward(dy, cache):
    """Gradient of :func:`relu_forward`: 1 above the threshold and below the cap,
    ``negative_slope`` at or below the threshold, 0 at the cap (``dy`` is never written to)."""
    if cache[0] is None:  # the plain or capped ReLU: 1 where the output is positive (and below the cap)
        _, y, max_value = cache
        if max_value is None:
            return activation_backward("relu", dy, y)
        if type(y) is np.ndarray and kernels.usable(dy, y) and dy.shape == y.shape and max_value > 0:
            dz = np.empty_like(y)
            nt = threads.kernel_threads(y.shape[0], _WORK_PER_VALUE * y.size) if y.ndim > 1 else 1
            kernels.relu_bwd_f32(dy, y, dz, float(max_value), nt)
            return dz
        return dy * ((y > 0) & (y < y.dtype.type(max_value)))
    x, negative_slope, max_value, threshold = cache
    xp = get_array_module(x)
    above = x > threshold
    # Below the threshold y <= 0 <= max_value: the cap only ever bites above the threshold.
    slope_above = 1.0 if max_value is None else (x < max_value)
    slope = xp.where(above, slope_above, negative_slope).astype(dy.dtype, copy=False)
    return dy * slope
