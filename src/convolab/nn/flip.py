"""Per-image flips of the spatial axes (RandomFlip's math)."""

from __future__ import annotations

import numpy as np


def flip_forward(x, flip_h, flip_w):
    """Flip chosen images upside down (``flip_h``) and/or left-right (``flip_w``).

    Args:
        x: ``(N, H, W, C)``.
        flip_h, flip_w: boolean arrays ``(N,)``: which images to flip along H, along W.

    Returns:
        ``(y, cache)``, ``y`` shaped like ``x`` (a new array); ``cache`` is ``(flip_h, flip_w)``.
    """
    y = np.array(x, copy=True)
    y[flip_h] = y[flip_h, ::-1]
    y[flip_w] = y[flip_w, :, ::-1]
    return y, (flip_h, flip_w)


def flip_backward(dy, cache):
    """A flip is its own inverse and its own transpose: the same flips applied to ``dy``."""
    return flip_forward(dy, *cache)[0]
