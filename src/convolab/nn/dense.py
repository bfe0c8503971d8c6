"""Fully connected layer math: ``y = x @ w + b`` over the last axis."""

from __future__ import annotations


def dense_forward(x, w, b=None):
    """Affine map of the last axis.

    Args:
        x: ``(..., in)``.
        w: ``(in, units)``.
        b: ``(units,)`` or ``None``.

    Returns:
        ``(y, cache)`` with ``y`` of shape ``(..., units)``.
    """
    y = x @ w
    if b is not None:
        y += b
    return y, (x, w)


def dense_backward(dy, cache, need_dx=True):
    """Gradients of :func:`dense_forward`: ``(dx, dw, db)``; ``dx`` is ``None`` if not needed."""
    x, w = cache
    units = w.shape[1]
    x2 = x.reshape(-1, w.shape[0])
    dy2 = dy.reshape(-1, units)
    dw = x2.T @ dy2
    db = dy2.sum(axis=0)
    dx = (dy @ w.T) if need_dx else None
    return dx, dw, db
