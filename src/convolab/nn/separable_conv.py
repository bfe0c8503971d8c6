"""Depthwise-separable 2-D convolution: a depthwise convolution, then a 1x1 (pointwise) one.

The bias belongs to the pointwise step, as in Keras's ``SeparableConv2D``.
"""

from __future__ import annotations

from .conv import conv2d_backward, conv2d_forward
from .depthwise_conv import depthwise_conv2d_backward, depthwise_conv2d_forward


def separable_conv2d_forward(
    x, depthwise_kernel, pointwise_kernel, b=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1)
):
    """Depthwise then pointwise convolution of NHWC images.

    Args:
        x: ``(N, H, W, C)``.
        depthwise_kernel: ``(kh, kw, C, dm)``.
        pointwise_kernel: ``(1, 1, C * dm, F)``.
        b: ``(F,)`` or ``None``.
        strides, padding, dilation_rate: of the depthwise step (the pointwise one has none).

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, Ho, Wo, F)``, ``Ho`` as for :func:`convolab.nn.conv.conv2d_forward`.
    """
    z, depthwise_cache = depthwise_conv2d_forward(x, depthwise_kernel, None, strides, padding, dilation_rate)
    y, pointwise_cache = conv2d_forward(z, pointwise_kernel, b)
    return y, (depthwise_cache, pointwise_cache)


def separable_conv2d_backward(dy, cache, need_dx=True):
    """Gradients of :func:`separable_conv2d_forward`.

    Args:
        dy: ``(N, Ho, Wo, F)``; never written to.
        cache: from the forward call.
        need_dx: skip the input gradient.

    Returns:
        ``(dx, d_depthwise, d_pointwise, db)``: ``(N, H, W, C)`` or ``None``, ``(kh, kw, C, dm)``,
        ``(1, 1, C * dm, F)``, ``(F,)``.
    """
    depthwise_cache, pointwise_cache = cache
    dz, d_pointwise, db = conv2d_backward(dy, pointwise_cache)
    dx, d_depthwise, _ = depthwise_conv2d_backward(dz, depthwise_cache, need_dx)
    return dx, d_depthwise, d_pointwise, db
