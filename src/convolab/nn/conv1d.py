"""1-D convolution and pooling over ``(N, L, C)`` sequences, as their 2-D twins on a height-1 image.

A sequence ``(N, L, C)`` is the image ``(N, 1, L, C)`` and a ``(k, C, F)`` kernel is ``(1, k, C, F)``,
so the 2-D ops (:mod:`convolab.nn.conv`, :mod:`convolab.nn.pool`, :mod:`convolab.nn.global_pool`)
compute every value and gradient; this module only reshapes. ``'causal'`` padding (Keras's
Conv1D) pads ``(k - 1) * dilation`` zeros on the left and then convolves with ``'valid'``.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..utils.conv_utils import effective_kernel_size
from .conv import conv2d_backward, conv2d_forward
from .global_pool import global_avg_pool_backward, global_avg_pool_forward, global_max_pool_backward, global_max_pool_forward
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward


def conv1d_forward(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1):
    """Convolve sequences with a ``(k, C // groups, F)`` kernel.

    Args:
        x: ``(N, L, C)``.
        w: ``(k, C // groups, F)``, Keras's Conv1D layout.
        b: ``(F,)`` or ``None``.
        stride, dilation: ints.
        padding: ``'valid'``, ``'same'`` or ``'causal'``.
        groups: as Conv2D's.

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, Lo, F)``, ``Lo = floor((L - k') / stride) + 1`` ('valid'), ``ceil(L / stride)``
        ('same'), ``floor((L - 1) / stride) + 1`` ('causal'), ``k' = (k - 1) * dilation + 1``.
    """
    left = 0
    if padding == "causal":
        left = effective_kernel_size(w.shape[0], dilation) - 1
        if left:
            xp = get_array_module(x)
            x = xp.concatenate([xp.zeros((x.shape[0], left, x.shape[2]), dtype=x.dtype), x], axis=1)
        padding = "valid"
    y, cache = conv2d_forward(x[:, None], w[None], b, (1, stride), padding, (1, dilation), groups)
    return y[:, 0], (cache, left)


def conv1d_backward(dy, cache, need_dx=True):
    """Gradients of :func:`conv1d_forward`: ``(dx (N, L, C) or None, dw (k, C // groups, F), db (F,))``."""
    cache2d, left = cache
    dx, dw, db = conv2d_backward(get_array_module(dy).ascontiguousarray(dy[:, None]), cache2d, need_dx=need_dx)
    if dx is not None:
        dx = dx[:, 0, left:]
    return dx, dw[0], db


def pool1d_forward(x, pool_size=2, stride=2, padding="valid", mode="max"):
    """Max (``mode='max'``) or average pooling of ``(N, L, C)`` over windows of ``pool_size``.

    Returns ``(y, cache)``; y ``(N, Lo, C)`` with ``Lo`` as for a convolution of that window.
    Average pooling with ``'same'`` leaves the padding out of each mean, as Keras does.
    """
    fwd = max_pool_forward if mode == "max" else avg_pool_forward
    y, cache = fwd(get_array_module(x).ascontiguousarray(x[:, None]), (1, pool_size), (1, stride), padding)
    return y[:, 0], (cache, mode)


def pool1d_backward(dy, cache):
    """Gradient of :func:`pool1d_forward`: ``dx`` ``(N, L, C)``."""
    cache2d, mode = cache
    bwd = max_pool_backward if mode == "max" else avg_pool_backward
    return bwd(get_array_module(dy).ascontiguousarray(dy[:, None]), cache2d)[:, 0]


def global_pool1d_forward(x, keepdims=False, mode="avg"):
    """Mean (``mode='avg'``) or maximum of each channel over the steps.

    Returns ``(y, cache)``; y ``(N, C)``, or ``(N, 1, C)`` with ``keepdims``.
    """
    fwd = global_avg_pool_forward if mode == "avg" else global_max_pool_forward
    y, cache = fwd(x[:, None], keepdims=False)
    return (y[:, None] if keepdims else y), (cache, mode)


def global_pool1d_backward(dy, cache):
    """Gradient of :func:`global_pool1d_forward`: ``dx`` ``(N, L, C)``."""
    cache2d, mode = cache
    bwd = global_avg_pool_backward if mode == "avg" else global_max_pool_backward
    return bwd(dy.reshape(dy.shape[0], dy.shape[-1]), cache2d)[:, 0]
