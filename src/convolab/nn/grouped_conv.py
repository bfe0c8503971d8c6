"""Grouped 2-D convolution (Keras's ``groups``), the NumPy reference: one batched matmul over the groups.

``Conv2D(groups=...)`` runs :mod:`convolab.nn.grouped_conv_fast` instead wherever it serves (the
depthwise kernels, or one ordinary convolution per group); this module is what it falls back to
(CuPy arrays, one-channel groups without the C kernels) and what its tests hold it to.

The window matrix is :func:`~convolab.nn.im2col.im2col`'s, ``(M, kh * kw * C)`` in
``(kh, kw, C)`` order with ``M = N * Ho * Wo``. Group ``g`` reads channels
``g * Cg ... (g + 1) * Cg - 1`` (``Cg = C // groups``) and writes filters
``g * Fg ... (g + 1) * Fg - 1`` (``Fg = F // groups``), as TensorFlow and Keras do. The matrix is
regrouped once to ``(groups, M, kh * kw * Cg)`` and the kernel ``(kh, kw, Cg, F)`` to
``(groups, kh * kw * Cg, Fg)``, and one batched matmul computes every group.

A depthwise convolution is the case ``Cg = 1``, ``groups = C``.
"""

from __future__ import annotations

from .im2col import col2im, im2col


def grouped_conv2d_forward(x, w, b, strides, padding, dilation_rate, groups):
    """Convolve NHWC images with a grouped ``(kh, kw, C // groups, F)`` kernel.

    Args:
        x: ``(N, H, W, C)``, ``C`` divisible by ``groups``.
        w: ``(kh, kw, C // groups, F)``, ``F`` divisible by ``groups``.
        b: ``(F,)`` or ``None``.
        strides, padding, dilation_rate: as :func:`convolab.nn.conv.conv2d_forward`.
        groups: number of groups.

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, Ho, Wo, F)``, the output size of :func:`convolab.utils.conv_utils.conv_output_size`.
    """
    kh, kw, cg, f = w.shape
    n = x.shape[0]
    taps, fg = kh * kw, f // groups
    cols, (ho, wo) = im2col(x, (kh, kw), strides, padding, dilation=dilation_rate)
    m = cols.shape[0]
    colsg = cols.reshape(m, taps, groups, cg).transpose(2, 0, 1, 3).reshape(groups, m, taps * cg)
    wg = w.reshape(taps, cg, groups, fg).transpose(2, 0, 1, 3).reshape(groups, taps * cg, fg)
    y = (colsg @ wg).transpose(1, 0, 2).reshape(n, ho, wo, f)
    if b is not None:
        y = y + b  # a new array: y must be the caller's to rectify in place
    cache = ("grouped", colsg, wg, x.shape, w.shape, strides, padding, dilation_rate)
    return y, cache


def grouped_conv2d_backward(dy, cache, need_dx=True):
    """Gradients of :func:`grouped_conv2d_forward`.

    Args:
        dy: ``(N, Ho, Wo, F)``; never written to.
        cache: from the forward call.
        need_dx: skip the input gradient.

    Returns:
        ``(dx, dw, db)``: ``(N, H, W, C)`` or ``None``, ``(kh, kw, C // groups, F)``, ``(F,)``.
    """
    _, colsg, wg, x_shape, w_shape, strides, padding, dilation_rate = cache
    kh, kw, cg, f = w_shape
    groups, m, _ = colsg.shape
    taps, fg = kh * kw, f // groups
    dy2 = dy.reshape(m, f)
    dyg = dy2.reshape(m, groups, fg).transpose(1, 0, 2)  # (groups, M, Fg), a view
    dwg = colsg.transpose(0, 2, 1) @ dyg
    dw = dwg.reshape(groups, taps, cg, fg).transpose(1, 2, 0, 3).reshape(w_shape)
    db = dy2.sum(axis=0)
    dx = None
    if need_dx:
        dcols = (dyg @ wg.transpose(0, 2, 1)).reshape(groups, m, taps, cg).transpose(1, 2, 0, 3)
        dx = col2im(dcols.reshape(m, taps * groups * cg), x_shape, (kh, kw), strides, padding, dilation_rate)
    return dx, dw, db
