"""Batch normalization math over the channel (last) axis: training and inference forms.

Channels are the last axis (NHWC images, ``(N, units)`` after Dense); statistics are taken
over every other axis, as Keras's ``axis=-1``. In training the batch's own mean and *biased*
variance normalise it (what Keras uses, also for the moving averages); in inference the
moving statistics do, and the layer is the per-channel affine map ``x * scale + shift``
of :func:`batchnorm_scale_shift` (the same map an exporter folds into a preceding Conv/Dense).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import kernels
from . import threads
from ..backend import get_array_module


class BatchNormCache(NamedTuple):
    """What :func:`batchnorm_backward` needs, plus the batch statistics for moving averages."""

    xhat: np.ndarray | None  # (..., C): the normalised input (None on the C path, which keeps x)
    inv_std: np.ndarray  # (C,): 1 / sqrt(var + epsilon)
    gamma: np.ndarray | None  # (C,) or None (scale=False)
    mean: np.ndarray  # (C,): the batch mean
    var: np.ndarray  # (C,): the batch's biased variance
    x: np.ndarray | None = None  # (..., C): the input, kept by the C path instead of xhat


class BatchNormInferenceCache(NamedTuple):
    """What :func:`batchnorm_inference_backward` needs."""

    x: np.ndarray  # (..., C): the input
    mean: np.ndarray  # (C,): the statistics used (the moving mean)
    inv_std: np.ndarray  # (C,): 1 / sqrt(var + epsilon)
    scale: np.ndarray  # (C,): gamma * inv_std


def _reduce_axes(x):
    return tuple(range(x.ndim - 1))


def _inv_std(var, epsilon):
    return 1.0 / get_array_module(var).sqrt(var + var.dtype.type(epsilon))


def batch_moments(x):
    """Per-channel mean and biased variance of ``x`` over every axis but the last.

    Args:
        x: ``(..., C)``.

    Returns:
        ``(mean, var)``, each ``(C,)``; ``var = mean((x - mean) ** 2)`` (divides by the count,
        not count - 1, as Keras's ``ops.moments``).
    """
    axes = _reduce_axes(x)
    mean = x.mean(axis=axes)
    centred = x - mean
    var = (centred * centred).mean(axis=axes)
    return mean, var


def _affine(xhat, gamma, beta):
    y = xhat * gamma if gamma is not None else xhat.copy()
    if beta is not None:
        y += beta
    return y


#: a pass of the BN kernels costs about 0.65 ns a value, what 65 multiply-adds of a GEMM cost
#: (nn/threads.py weighs work in GEMM FLOPs)
_WORK_PER_VALUE = 65.0


def _use_kernels(x, *params):
    """The compiled kernels serve host (NumPy) float32 C-contiguous arrays."""
    return (
        type(x) is np.ndarray
        and kernels.usable(x, *(p for p in params if p is not None))
        and x.ndim >= 1
        and x.size > 0
    )


def _forward_kernels(x, gamma, beta, epsilon):
    """:func:`batchnorm_forward` on the compiled kernels (float32 NumPy arrays).

    Inside :func:`convolab.nn.threads.batch_threads` a large batch is split over the kernels'
    own threads: each part's sums in float64, added in part order, then each part normalised.
    """
    c = x.shape[-1]
    m = x.size // c
    nt = threads.kernel_threads(x.shape[0], _WORK_PER_VALUE * x.size) if x.ndim > 1 else 1
    mean = np.empty(c, np.float32)
    var = np.empty(c, np.float32)
    kernels.bn_moments_f32(x, mean, var, m, c, nt)
    inv_std = _inv_std(var, epsilon)
    scale = np.ascontiguousarray(inv_std * gamma if gamma is not None else inv_std, np.float32)
    shift = np.ascontiguousarray(beta if beta is not None else np.zeros(c, np.float32))
    y = np.empty_like(x)
    kernels.bn_affine_f32(x, mean, scale, shift, y, m, c, nt)
    return y, BatchNormCache(None, inv_std, gamma, mean, var, x)


def _backward_kernels(dy, cache, k):
    """:func:`batchnorm_backward` on the compiled kernels: ``xhat`` is recomputed from ``x``.

    Split like the forward: each part's two sums, added in part order, then each part's
    ``dx`` from the whole batch's coefficients, all inside one kernel call.
    """
    x = cache.x
    c = x.shape[-1]
    m = x.size // c
    dy = np.ascontiguousarray(dy, dtype=np.float32)
    inv_std = np.ascontiguousarray(cache.inv_std, np.float32)
    k = np.ascontiguousarray(k, np.float32)
    dx = np.empty_like(x)
    dgamma = np.empty(c, np.float32)
    dbeta = np.empty(c, np.float32)
    nt = threads.kernel_threads(x.shape[0], _WORK_PER_VALUE * x.size) if x.ndim > 1 else 1
    kernels.bn_bwd_f32(dy, x, cache.mean, inv_std, k, dx, dgamma, dbeta, m, c, nt)
    return dx, dgamma, dbeta


def _inference_kernels(x, scale, shift):
    """``x * scale + shift`` on the compiled affine kernel."""
    y = np.empty_like(x)
    nt = threads.kernel_threads(x.shape[0], _WORK_PER_VALUE * x.size) if x.ndim > 1 else 1
    kernels.bn_affine_f32(
        x,
        np.zeros(x.shape[-1], np.float32),
        np.ascontiguousarray(scale),
        np.ascontiguousarray(shift),
        y,
        x.size // x.shape[-1],
        x.shape[-1],
        nt,
    )
    return y


def batchnorm_forward(x, gamma, beta, epsilon):
    """Training-mode batch normalization: ``gamma * (x - mean) / sqrt(var + eps) + beta``.

    Args:
        x: ``(..., C)``; statistics over all axes but the last (at least 1 value per channel).
        gamma: ``(C,)`` or ``None`` (``scale=False``: 1).
        beta: ``(C,)`` or ``None`` (``center=False``: 0).
        epsilon: float added to the variance.

    Returns:
        ``(y, cache)``; ``y`` has the shape of ``x``; ``cache.mean`` / ``cache.var`` are the
        batch statistics, ``(C,)`` each.

    Float32 C-contiguous arrays take the compiled kernels (statistics summed in double,
    ``y = (x - mean) * (gamma * inv_std) + beta`` in one pass, no ``xhat`` stored); the NumPy code below is the
    reference they are tested against.

    Shape:
        ``(..., C) -> (..., C)``.
    """
    if _use_kernels(x, gamma, beta):
        return _forward_kernels(x, gamma, beta, epsilon)
    mean, var = batch_moments(x)
    inv_std = _inv_std(var, epsilon)
    xhat = (x - mean) * inv_std
    return _affine(xhat, gamma, beta), BatchNormCache(xhat, inv_std, gamma, mean, var)


def batchnorm_backward(dy, cache):
    """Gradients of :func:`batchnorm_forward`, through the batch statistics.

    With ``m`` values per channel, ``dbeta = sum(dy)``, ``dgamma = sum(dy * xhat)`` and
    ``dx = gamma * inv_std * (dy - dbeta / m - xhat * dgamma / m)``: the closed form of the
    chain rule through ``mean`` and ``var`` (sums over every axis but the last).

    Args:
        dy: ``(..., C)``; not modified.
        cache: from :func:`batchnorm_forward`.

    Returns:
        ``(dx, dgamma, dbeta)``: ``dx`` like ``dy``; ``dgamma`` and ``dbeta`` ``(C,)`` (the
        gradients a ``gamma``/``beta`` would get; a layer without one ignores it).
    """
    xhat, inv_std, gamma = cache.xhat, cache.inv_std, cache.gamma
    k = inv_std * gamma if gamma is not None else inv_std
    if xhat is None:  # the C path: xhat is recomputed from x inside the kernel
        return _backward_kernels(dy, cache, k)
    axes = _reduce_axes(dy)
    m = xhat.size // xhat.shape[-1]
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    dx = k * (dy - dbeta / m - xhat * (dgamma / m))
    return dx, dgamma, dbeta


def batchnorm_inference_forward(x, mean, var, gamma, beta, epsilon):
    """Batch normalization with given statistics (the moving ones): ``x * scale + shift``.

    Args:
        x: ``(..., C)``.
        mean, var: ``(C,)``, the moving mean and variance.
        gamma, beta: ``(C,)`` or ``None`` (1 and 0).
        epsilon: float added to the variance.

    Returns:
        ``(y, cache)``, ``y`` shaped like ``x``.

    Shape:
        ``(..., C) -> (..., C)``.
    """
    scale, shift = batchnorm_scale_shift(mean, var, gamma, beta, epsilon)
    cache = BatchNormInferenceCache(x, mean, _inv_std(var, epsilon), scale)
    if _use_kernels(x, scale, shift):
        return _inference_kernels(x, scale, shift), cache
    return x * scale + shift, cache


def batchnorm_inference_backward(dy, cache):
    """Gradients of :func:`batchnorm_inference_forward`; the statistics are constants.

    Returns:
        ``(dx, dgamma, dbeta)``: ``dx = dy * scale``; ``dgamma = sum(dy * xhat)``,
        ``dbeta = sum(dy)``, each ``(C,)``. ``dy`` is not modified.
    """
    axes = _reduce_axes(dy)
    xhat = (cache.x - cache.mean) * cache.inv_std
    return dy * cache.scale, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


def batchnorm_scale_shift(mean, var, gamma, beta, epsilon):
    """The inference map as ``y = x * scale + shift``, per channel.

    ``scale = gamma / sqrt(var + eps)``, ``shift = beta - mean * scale``: what the layer
    computes at inference and what an exporter folds into a preceding Conv2D/Dense
    (``kernel * scale``, ``bias * scale + shift``).

    Args:
        mean, var: ``(C,)`` moving statistics.
        gamma, beta: ``(C,)`` or ``None`` (1 and 0).
        epsilon: float.

    Returns:
        ``(scale, shift)``, each ``(C,)``, in the dtype of ``mean``.
    """
    inv_std = _inv_std(var, epsilon)
    scale = inv_std * gamma if gamma is not None else inv_std
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    return scale, shift
