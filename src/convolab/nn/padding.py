"""Zero padding and cropping of the two spatial axes: each the other's gradient."""

from __future__ import annotations

from ..backend import get_array_module


def zero_pad2d_forward(x, padding):
    """Add rows of zeros above/below and columns left/right of every image.

    Args:
        x: ``(N, H, W, C)``.
        padding: ``((top, bottom), (left, right))``, non-negative ints.

    Returns:
        ``(y, cache)``; ``cache`` is ``padding``.

    Shape:
        y: ``(N, H + top + bottom, W + left + right, C)``.
    """
    (top, bottom), (left, right) = padding
    y = get_array_module(x).pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    return y, padding


def zero_pad2d_backward(dy, cache):
    """The gradient of the padded border is dropped: ``dy`` cropped back to the input's size."""
    return crop2d_forward(dy, cache)[0]


def crop2d_forward(x, cropping):
    """Remove rows at the top/bottom and columns at the left/right of every image.

    Args:
        x: ``(N, H, W, C)``.
        cropping: ``((top, bottom), (left, right))``, non-negative ints with
            ``top + bottom < H`` and ``left + right < W``.

    Returns:
        ``(y, cache)``; ``y`` is a view of ``x``; ``cache`` is ``cropping``.

    Shape:
        y: ``(N, H - top - bottom, W - left - right, C)``.
    """
    (top, bottom), (left, right) = cropping
    h, w = x.shape[1], x.shape[2]
    return x[:, top : h - bottom, left : w - right, :], cropping


def crop2d_backward(dy, cache):
    """Zeros where the cropped border was, ``dy`` inside (a new array; ``dy`` is not written)."""
    return zero_pad2d_forward(dy, cache)[0]
