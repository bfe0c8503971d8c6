"""Global average and max pooling: one value per channel from the whole NHWC image.

A global pool is a reduction over the H and W axes, not a sliding window, so it needs
no window view: ``mean``/``max`` over axes 1 and 2 read each pixel once.
"""

from __future__ import annotations

from ..backend import get_array_module


def _flat_gradient(dy, x_shape):
    """``dy`` of shape ``(N, C)`` or ``(N, 1, 1, C)`` as ``(N, C)`` (a view, never written to)."""
    return dy.reshape(x_shape[0], x_shape[3])


def global_avg_pool_forward(x, keepdims=False):
    """Mean of every channel over all pixels.

    Args:
        x: ``(N, H, W, C)``.
        keepdims: keep the pooled axes with length 1, as Keras's ``keepdims=True``.

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, C)``, or ``(N, 1, 1, C)`` with ``keepdims``.
    """
    y = x.mean(axis=(1, 2), keepdims=keepdims)
    return y, x.shape


def global_avg_pool_backward(dy, cache):
    """Each pixel gets ``1 / (H * W)`` of its channel's gradient.

    Args:
        dy: ``(N, C)`` or ``(N, 1, 1, C)``; never written to.
        cache: from :func:`global_avg_pool_forward`.

    Returns:
        ``dx`` of shape ``(N, H, W, C)``, a new C-contiguous array.
    """
    x_shape = cache
    n, h, w, c = x_shape
    share = _flat_gradient(dy, x_shape) / dy.dtype.type(h * w)
    dx = get_array_module(dy).empty(x_shape, dtype=dy.dtype)
    dx[...] = share[:, None, None, :]
    return dx


def global_max_pool_forward(x, keepdims=False):
    """Maximum of every channel over all pixels.

    Args:
        x: ``(N, H, W, C)``.
        keepdims: keep the pooled axes with length 1.

    Returns:
        ``(y, cache)``; the cache holds the flat index ``h * W + w`` of the first maximum of
        each channel (row-major order, the tie rule of :func:`max_pool_forward`).

    Shape:
        y: ``(N, C)``, or ``(N, 1, 1, C)`` with ``keepdims``.
    """
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    arg = flat.argmax(axis=1)  # (N, C)
    y = get_array_module(flat).take_along_axis(flat, arg[:, None, :], axis=1)[:, 0, :]
    if keepdims:
        y = y.reshape(n, 1, 1, c)
    return y, (arg, x.shape)


def global_max_pool_backward(dy, cache):
    """Route each channel's gradient to the (first) maximum pixel of that channel.

    Args:
        dy: ``(N, C)`` or ``(N, 1, 1, C)``; never written to.

    Returns:
        ``dx`` of shape ``(N, H, W, C)``, zero except at each channel's maximum.
    """
    arg, x_shape = cache
    n, h, w, c = x_shape
    xp = get_array_module(dy)
    dx = xp.zeros((n, h * w, c), dtype=dy.dtype)
    xp.put_along_axis(dx, arg[:, None, :], _flat_gradient(dy, x_shape)[:, None, :], axis=1)
    return dx.reshape(x_shape)
