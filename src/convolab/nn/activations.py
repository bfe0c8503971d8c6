"""Element-wise activations, by Keras's names.

``activation_forward(name, z) -> y`` and ``activation_backward(name, dy, y, z=None) -> dz``, for
any rank (softmax needs at least one axis: it normalises the last). Most backwards need only the
forward *output* ``y``; the few in :data:`NEEDS_INPUT` (gelu, swish/silu, mish: not invertible
from ``y``) also need the input ``z``, which a caller keeps only for them. Keras's parametrised
ReLU (``relu_forward``/``relu_backward``) and the ELU/leaky ReLU with their own parameter
(``elu_forward``, ``leaky_relu_forward``) have their own pairs.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..kernels import cuda
from . import threads
from .erf import erf as _host_erf
from .erf import erfc as _host_erfc

#: a ReLU pass costs about what this many GEMM multiply-adds cost per value (memory-bound:
#: about 0.2 ns a value); nn/threads.py splits the batch where a slice carries enough of it
_WORK_PER_VALUE = 20.0

ACTIVATIONS = (
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "gelu",
    "elu",
    "selu",
    "swish",
    "silu",
    "leaky_relu",
    "hard_sigmoid",
    "softplus",
    "softsign",
    "exponential",
    "mish",
)
#: activations whose backward needs the input ``z`` as well as the output ``y``
NEEDS_INPUT = frozenset({"gelu", "swish", "silu", "mish"})
#: SELU's constants (Klambauer et al. 2017, as Keras writes them)
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
#: the slope below zero of ``activation='leaky_relu'`` (keras.activations.leaky_relu's default)
LEAKY_RELU_SLOPE = 0.2


def erf(z):
    """The error function, element-wise (float64 precision; returns ``z``'s dtype).

    NumPy has no erf: NumPy arrays go through :func:`convolab.nn.erf.erf` (Cody's rational
    approximations, vectorised; ``math.erf``'s values to about 1e-15 relative); CuPy arrays use
    ``cupyx.scipy.special.erf`` on the device.
    """
    xp = get_array_module(z)
    if xp is not np:
        from cupyx.scipy.special import erf as device_erf

        return device_erf(z)
    return _host_erf(z).astype(z.dtype, copy=False)


def erfc(z):
    """``1 - erf(z)``, element-wise, without the cancellation where it is small (as :func:`erf`:
    :func:`convolab.nn.erf.erfc` on the host, ``cupyx.scipy.special.erfc`` on the device)."""
    xp = get_array_module(z)
    if xp is not np:
        from cupyx.scipy.special import erfc as device_erfc

        return device_erfc(z)
    return _host_erfc(z).astype(z.dtype, copy=False)


def _softplus(z):
    xp = get_array_module(z)
    return xp.logaddexp(z.dtype.type(0), z)


def _gelu_parts(z):
    """``(Phi(z), phi(z))``: the standard normal's distribution function and density at ``z``."""
    xp = get_array_module(z)
    # Phi(z) = erfc(-z / sqrt 2) / 2: as 1 + erf(...) it would cancel to 0 for z below about -6
    # in float32 (-8 in float64), and GELU's negative tail would be lost
    cdf = z.dtype.type(0.5) * erfc(z * z.dtype.type(-1 / math.sqrt(2)))
    pdf = xp.exp(z * z * z.dtype.type(-0.5)) * z.dtype.type(1 / math.sqrt(2 * math.pi))
    return cdf, pdf


_GELU_C = math.sqrt(2 / math.pi)


def gelu_tanh_forward(z):
    """GELU's tanh approximation (``approximate=True``): ``0.5 z (1 + tanh(c (z + 0.044715 z^3)))``,
    ``c = sqrt(2 / pi)``. Returns ``(y, cache)``; shape: output = input."""
    xp = get_array_module(z)
    t = z.dtype.type
    th = xp.tanh(t(_GELU_C) * (z + t(0.044715) * z**3))
    return t(0.5) * z * (1 + th), (z, th)


def gelu_tanh_backward(dy, cache):
    """Gradient of :func:`gelu_tanh_forward`."""
    z, th = cache
    t = z.dtype.type
    inner = t(_GELU_C) * (1 + t(3 * 0.044715) * z * z)
    return dy * (t(0.5) * (1 + th) + t(0.5) * z * (1 - th * th) * inner)


def elu_forward(z, alpha=1.0):
    """``z`` above 0, ``alpha * (exp(z) - 1)`` at or below. Shape: output = input."""
    xp = get_array_module(z)
    return xp.where(z > 0, z, z.dtype.type(alpha) * xp.expm1(xp.minimum(z, 0))).astype(z.dtype, copy=False)


def elu_backward(dy, y, alpha=1.0):
    """Gradient of :func:`elu_forward` from its output: 1 where ``y > 0``, else ``y + alpha``."""
    xp = get_array_module(y)
    return dy * xp.where(y > 0, y.dtype.type(1), y + y.dtype.type(alpha))


def leaky_relu_forward(z, negative_slope=LEAKY_RELU_SLOPE):
    """``z`` above 0, ``negative_slope * z`` at or below. Shape: output = input."""
    xp = get_array_module(z)
    return xp.where(z > 0, z, z * z.dtype.type(negative_slope))


def leaky_relu_backward(dy, y, negative_slope=LEAKY_RELU_SLOPE):
    """Gradient of :func:`leaky_relu_forward` from its output (``y > 0`` exactly where ``z > 0``,
    for a slope >= 0): 1 there, ``negative_slope`` elsewhere."""
    xp = get_array_module(y)
    return dy * xp.where(y > 0, y.dtype.type(1), y.dtype.type(negative_slope))


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
    return _other_forward(name, z)


def _other_forward(name, z):
    xp = get_array_module(z)
    t = z.dtype.type
    if name == "gelu":  # Keras 3's default, approximate=False: z * Phi(z)
        return z * _gelu_parts(z)[0]
    if name == "elu":
        return elu_forward(z)
    if name == "selu":
        return t(SELU_SCALE) * elu_forward(z, SELU_ALPHA)
    if name in ("swish", "silu"):
        return z * _sigmoid(z)
    if name == "leaky_relu":
        return leaky_relu_forward(z)
    if name == "hard_sigmoid":  # Keras 3: relu6(z + 3) / 6
        return xp.clip(z * t(1 / 6) + t(0.5), t(0), t(1))
    if name == "softplus":
        return _softplus(z)
    if name == "softsign":
        return z / (1 + xp.abs(z))
    if name == "exponential":
        return xp.exp(z)
    if name == "mish":
        return z * xp.tanh(_softplus(z))
    raise ValueError(f"Unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")


def activation_backward(name, dy, y, z=None):
    """Gradient with respect to the pre-activation ``z``, from the upstream ``dy`` and output ``y``
    (and ``z`` itself for the activations in :data:`NEEDS_INPUT`). ``dy`` is never written to."""
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
    if name in NEEDS_INPUT and z is None:
        raise ValueError(f"activation_backward: {name!r} needs the forward input z as well as its output")
    return _other_backward(name, dy, y, z)


def _other_backward(name, dy, y, z):
    xp = get_array_module(y)
    t = y.dtype.type
    if name == "gelu":  # d/dz z Phi(z) = Phi(z) + z phi(z)
        cdf, pdf = _gelu_parts(z)
        return dy * (cdf + z * pdf)
    if name == "elu":
        return elu_backward(dy, y)
    if name == "selu":  # scale where z > 0, else y + scale * alpha
        return dy * xp.where(y > 0, t(SELU_SCALE), y + t(SELU_SCALE * SELU_ALPHA))
    if name in ("swish", "silu"):  # s + z s (1 - s)
        s = _sigmoid(z)
        return dy * (s * (1 + z * (1 - s)))
    if name == "leaky_relu":
        return leaky_relu_backward(dy, y)
    if name == "hard_sigmoid":
        return dy * (((y > 0) & (y < 1)) * t(1 / 6))
    if name == "softplus":  # sigmoid(z) = 1 - exp(-y)
        return dy * -xp.expm1(-y)
    if name == "softsign":  # 1 / (1 + |z|)^2 = (1 - |y|)^2
        return dy * (1 - xp.abs(y)) ** 2
    if name == "exponential":
        return dy * y
    if name == "mish":  # tanh(sp) + z sech^2(sp) sigmoid(z), sp = softplus(z)
        th = xp.tanh(_softplus(z))
        return dy * (th + z * (1 - th * th) * _sigmoid(z))
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
        x2, y2 = (
            x.reshape(len(x), -1) if x.ndim else x.reshape(1, 1),
            y.reshape(len(y), -1) if y.ndim else y.reshape(1, 1),
        )

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
