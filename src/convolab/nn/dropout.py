"""Inverted dropout: scale kept units by ``1 / (1 - rate)`` at training time, identity otherwise."""

from __future__ import annotations


def dropout_forward(x, rate, rng, training=True):
    """Zero each element with probability ``rate``.

    Args:
        x: any shape.
        rate: drop probability in ``[0, 1)``.
        rng: a ``numpy.random.Generator``.
        training: if False, or ``rate == 0``, ``x`` is returned unchanged.

    Returns:
        ``(y, mask)``; ``mask`` is ``None`` when nothing was dropped.
    """
    if not training or rate == 0:
        return x, None
    # The uniforms are float32 whatever x's dtype: a float64 run then draws the very mask a
    # float32 run draws, so float64 stays a reference for float32 with dropout in the model.
    keep = rng.random(x.shape, dtype="float32") >= rate
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - rate))
    return x * mask, mask


def dropout_backward(dy, mask):
    """Gradient of :func:`dropout_forward`."""
    return dy if mask is None else dy * mask
