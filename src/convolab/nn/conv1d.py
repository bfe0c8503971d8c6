"""1-D convolution and pooling over ``(N, L, C)`` sequences, as their 2-D twins on a height-1 image.

A sequence ``(N, L, C)`` is the image ``(N, 1, L, C)`` and a ``(k, C, F)`` kernel is ``(1, k, C, F)``,
so the 2-D ops (:mod:`convolab.nn.conv`, :mod:`convolab.nn.pool`, :mod:`convolab.nn.global_pool`)
compute every value and gradient; this module only reshapes. ``'causal'`` padding (Keras's
Conv1D) is the explicit pads ``((k - 1) * dilation, 0)``: zeros on the left only.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..utils.conv_utils import resolve_padding
from .global_pool import (
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
)
from .grouped_conv_fast import grouped_conv2d_backward_fast, grouped_conv2d_forward_fast
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward


def conv1d_forward(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1):
    """Convolve sequences with a ``(k, C // groups, F)`` kernel.

    Args:
        x: ``(N, L, C)``.
        w: ``(k, C // groups, F)``, Keras's Conv1D layout.
        b: ``(F,)`` or ``None``.
        stride, dilation: ints.
        padding: ``'valid'``, ``'same'``, ``'causal'`` or explicit pads ``(before, after)``.
        groups: as Conv2D's, on its fast path (:mod:`convolab.nn.grouped_conv_fast`: the depthwise
            kernels for ``groups = C``, one ordinary convolution per group otherwise).

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, Lo, F)``, ``Lo = floor((L - k') / stride) + 1`` ('valid'), ``ceil(L / stride)``
        ('same'), ``floor((L - 1) / stride) + 1`` ('causal'), ``k' = (k - 1) * dilation + 1``.
    """
    y, cache = grouped_conv2d_forward_fast(
        x[:, None], w[None], b, (1, stride), _as_2d(x, w.shape[0], stride, padding, dilation), (1, dilation), groups
    )
    return y[:, 0], cache


def _as_2d(x, kernel, stride, padding, dilation):
    """``padding`` of the steps axis as the 2-D ops take it: a string they know, or explicit pads
    ``((0, 0), (before, after))`` ('causal' and pairs)."""
    if padding == "valid" or padding == "same":
        return padding
    if padding == "causal":
        padding = resolve_padding((x.shape[1],), (kernel,), (stride,), "causal", (dilation,))[0]
    return (0, 0), tuple(padding)


def conv1d_backward(dy, cache, need_dx=True):
    """Gradients of :func:`conv1d_forward`: ``(dx (N, L, C) or None, dw (k, C // groups, F), db (F,))``."""
    dx, dw, db = grouped_conv2d_backward_fast(
        get_array_module(dy).ascontiguousarray(dy[:, None]), cache, need_dx=need_dx
    )
    return (None if dx is None else dx[:, 0]), dw[0], db


def pool1d_forward(x, pool_size=2, stride=2, padding="valid", mode="max"):
    """Max (``mode='max'``) or average pooling of ``(N, L, C)`` over windows of ``pool_size``.

    Returns ``(y, cache)``; y ``(N, Lo, C)`` with ``Lo`` as for a convolution of that window.
    Average pooling with ``'same'`` leaves the padding out of each mean, as Keras does.
    ``padding``: ``'valid'``, ``'same'`` or explicit pads ``(before, after)``.
    """
    fwd = max_pool_forward if mode == "max" else avg_pool_forward
    padding = padding if isinstance(padding, str) else ((0, 0), tuple(padding))
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
