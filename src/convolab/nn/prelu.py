"""Parametric ReLU: ``x`` above 0, ``alpha * x`` at or below, with a learned ``alpha``.

``alpha`` has the input's shape without the batch axis, with length 1 on the shared axes
(Keras's ``shared_axes``); NumPy broadcasting spreads it, and its gradient is summed back
over the batch and the shared axes.
"""

from __future__ import annotations

from ..backend import get_array_module


def prelu_forward(x, alpha):
    """``where(x > 0, x, alpha * x)``.

    Args:
        x: ``(N, *S)``.
        alpha: broadcastable to ``S`` (``S`` with 1 on the shared axes).

    Returns:
        ``(y, cache)``; y ``(N, *S)``.
    """
    xp = get_array_module(x)
    return xp.where(x > 0, x, alpha * x).astype(x.dtype, copy=False), (x, alpha)


def prelu_backward(dy, cache):
    """Gradients of :func:`prelu_forward`: ``(dx (N, *S), dalpha (alpha's shape))``."""
    x, alpha = cache
    xp = get_array_module(dy)
    pos = x > 0
    dx = xp.where(pos, dy, dy * alpha).astype(dy.dtype, copy=False)
    dalpha_full = xp.where(pos, 0, dy * x)
    # sum over the batch, then over every axis alpha broadcasts along
    dalpha = dalpha_full.sum(axis=0)
    axes = tuple(i for i, n in enumerate(alpha.shape) if n == 1 and dalpha.shape[i] != 1)
    if axes:
        dalpha = dalpha.sum(axis=axes, keepdims=True)
    return dx, dalpha.reshape(alpha.shape).astype(alpha.dtype, copy=False)
