"""Depthwise 2-D convolution: each input channel convolved with its own ``depth_multiplier`` filters.

Keras's kernel ``(kh, kw, C, depth_multiplier)`` reshapes for free to the grouped kernel
``(kh, kw, 1, C * depth_multiplier)`` with ``groups = C``: output channel ``c * dm + m`` is
channel ``c`` convolved with filter ``m``, TensorFlow's order. So the math is
:func:`convolab.ops.conv.conv2d_forward` with ``groups = C``.
"""
from __future__ import annotations

from .conv import conv2d_backward, conv2d_forward


def depthwise_conv2d_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1)):
    """Depthwise-convolve NHWC images.

    Args:
        x: ``(N, H, W, C)``.
        w: ``(kh, kw, C, dm)``, Keras's depthwise kernel.
        b: ``(C * dm,)`` or ``None``.
        strides: ``(sh, sw)``; padding: ``'valid'`` or ``'same'``; dilation_rate: ``(dh, dw)``.

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, Ho, Wo, C * dm)``, ``Ho`` as for :func:`convolab.ops.conv.conv2d_forward`.
    """
    kh, kw, c, dm = w.shape
    y, inner = conv2d_forward(x, w.reshape(kh, kw, 1, c * dm), b, strides, padding, dilation_rate, groups=c)
    return y, (inner, w.shape)


def depthwise_conv2d_backward(dy, cache, need_dx=True):
    """Gradients of :func:`depthwise_conv2d_forward`.

    Args:
        dy: ``(N, Ho, Wo, C * dm)``; never written to.
        cache: from the forward call.
        need_dx: skip the input gradient.

    Returns:
        ``(dx, dw, db)``: ``(N, H, W, C)`` or ``None``, ``(kh, kw, C, dm)``, ``(C * dm,)``.
    """
    inner, w_shape = cache
    dx, dw, db = conv2d_backward(dy, inner, need_dx)
    return dx, dw.reshape(w_shape), db
