"""Contrast and brightness adjustments, clipped to the pixel value range."""

from __future__ import annotations

import numpy as np


def contrast_forward(x, factor, value_range):
    """``clip((x - mean) * factor + mean)``, the mean per image and channel over H and W.

    Args:
        x: ``(N, H, W, C)``, floating point.
        factor: ``(N,)`` contrast factors, one per image.
        value_range: ``(low, high)``: the output is clipped to it.

    Returns:
        ``(y, cache)``, ``y`` shaped like ``x``.
    """
    f = np.asarray(factor, dtype=x.dtype).reshape(-1, 1, 1, 1)
    mean = x.mean(axis=(1, 2), keepdims=True)
    z = (x - mean) * f + mean
    y = np.clip(z, value_range[0], value_range[1])
    return y, (f, (z >= value_range[0]) & (z <= value_range[1]))


def contrast_backward(dy, cache):
    """Gradient of :func:`contrast_forward`: ``f * dz + (1 - f) * mean(dz)`` inside the range."""
    f, inside = cache
    dz = dy * inside
    return dz * f + dz.mean(axis=(1, 2), keepdims=True) * (1 - f)


def brightness_forward(x, delta, value_range):
    """``clip(x + delta)``, one ``delta`` per image.

    Args:
        x: ``(N, H, W, C)``, floating point.
        delta: ``(N,)`` offsets, in pixel units.
        value_range: ``(low, high)``: the output is clipped to it.

    Returns:
        ``(y, cache)``, ``y`` shaped like ``x``.
    """
    z = x + np.asarray(delta, dtype=x.dtype).reshape(-1, 1, 1, 1)
    y = np.clip(z, value_range[0], value_range[1])
    return y, (z >= value_range[0]) & (z <= value_range[1])


def brightness_backward(dy, cache):
    """``dy`` where the output was not clipped, 0 where it was."""
    return dy * cache
