"""Grouped 2-D convolution's fast path: depthwise kernels, or one fast convolution per group.

:mod:`convolab.nn.grouped_conv` is the NumPy reference: one im2col window matrix of all ``C``
channels, regrouped by a transposing copy into ``(groups, M, kh * kw * Cg)``, then a batched
product. For ConvMixer's layer (``groups = C = 256``, 9x9 'same', 32x32 images) that matrix is
81 times the image (2.7 GB at batch 32) and the products are ``C`` one-column GEMMs: 1 s
forward and 2 s backward for 4 images, against 10 and 20 ms on the depthwise kernels
(``python benchmarks/grouped_conv.py``). Two faster routes compute the same sums:

- ``groups == C`` (one channel a group, ``F = C * dm``): the kernel ``(kh, kw, 1, C * dm)`` is
  Keras's depthwise kernel ``(kh, kw, C, dm)`` reshaped (output channel ``c * dm + m``, the
  same order), so it runs on :func:`convolab.nn.depthwise_conv.depthwise_conv2d_forward`'s C
  kernels, with no window matrix. Only where they serve (C-contiguous float32 NumPy arrays,
  kernels built); elsewhere the reference, whose window matrix is then the only way.
- any other ``groups``: each group's channels copied out contiguous and convolved as an
  ordinary convolution (:func:`convolab.nn.conv.conv2d_forward`, ``groups = 1``): the fused
  kernels where they serve, else im2col and one GEMM of that group's window matrix. The
  copies cost one pass over ``x`` (and ``dy`` backward); the regrouping copy of a window
  matrix ``kh * kw`` times larger is gone. 3x3, 64 channels, groups 4, batch 8: 14.5 ms
  forward on the reference, 3.4 ms here.

NumPy arrays only: CuPy arrays keep the reference (im2col and a batched cuBLAS product on the
device). ``use_fast = False`` (module attribute, read at each call) forces the reference, which
the differential tests hold this path to.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..backend import get_array_module
from .conv import conv2d_backward, conv2d_forward
from .depthwise_conv import depthwise_conv2d_backward, depthwise_conv2d_forward

#: False: every grouped convolution takes the NumPy reference (:mod:`convolab.nn.grouped_conv`)
use_fast = True


def grouped_conv2d_forward_fast(x, w, b, strides, padding, dilation_rate, groups, relu=False):
    """:func:`convolab.nn.grouped_conv.grouped_conv2d_forward` on the fastest path that serves.

    Args:
        x: ``(N, H, W, C)``, ``C`` divisible by ``groups``.
        w: ``(kh, kw, C // groups, F)``, ``F`` divisible by ``groups``.
        b: ``(F,)`` or ``None``.
        strides, padding, dilation_rate: as :func:`convolab.nn.conv.conv2d_forward`.
        groups: number of groups (1 is an ordinary convolution).
        relu: return ``max(y, 0)`` (the fused kernels rectify as they store).

    Returns:
        ``(y, cache)``; ``cache`` is for :func:`grouped_conv2d_backward_fast`. With ``groups = 1``,
        and on the reference, this is :func:`convolab.nn.conv.conv2d_forward` and its cache.

    Shape:
        y: ``(N, Ho, Wo, F)``, as for :func:`convolab.nn.conv.conv2d_forward`.
    """
    strides, dilation_rate = tuple(strides), tuple(dilation_rate)
    route = _route(x, w, b, groups)
    if route == "depthwise":
        # contiguous copies where needed: the kernels then serve (depthwise_conv2d_forward's own test)
        xp = get_array_module(x)
        x, w, b = (None if a is None else xp.ascontiguousarray(a) for a in (x, w, b))
        y, inner = depthwise_conv2d_forward(x, _as_depthwise(w, groups), b, strides, padding, dilation_rate)
        if relu:
            xp.maximum(y, 0, out=y)
        return y, ("fast_depthwise", inner, w.shape)
    if route == "per_group":
        return _forward_per_group(x, w, b, strides, padding, dilation_rate, groups, relu)
    return conv2d_forward(x, w, b, strides, padding, dilation_rate, groups, relu=relu)


def grouped_conv2d_backward_fast(dy, cache, need_dx=True):
    """Gradients of :func:`grouped_conv2d_forward_fast`.

    Args:
        dy: ``(N, Ho, Wo, F)``; never written to.
        cache: from the forward call.
        need_dx: skip the input gradient.

    Returns:
        ``(dx, dw, db)``: ``(N, H, W, C)`` or ``None``, ``(kh, kw, C // groups, F)``, ``(F,)``.
    """
    tag = cache[0] if isinstance(cache[0], str) else None  # the im2col path's cache starts with an array
    if tag == "fast_depthwise":
        _, inner, w_shape = cache
        dx, dw, db = depthwise_conv2d_backward(dy, inner, need_dx)
        return dx, dw.reshape(w_shape), db
    if tag == "fast_per_group":
        return _backward_per_group(dy, cache, need_dx)
    return conv2d_backward(dy, cache, need_dx)  # the reference's (or, groups == 1, conv2d_forward's) cache


def _route(x, w, b, groups):
    """``'depthwise'``, ``'per_group'`` or ``'reference'``: which path convolves ``x`` with ``w``."""
    arrays = [a for a in (x, w, b) if a is not None]
    if groups == 1 or not use_fast or any(type(a) is not np.ndarray for a in arrays):
        return "reference"  # groups == 1: conv2d_forward's own paths; CuPy: the reference on the device
    if w.shape[2] == 1:
        if kernels.lib is not None and all(a.dtype == np.float32 for a in arrays):
            return "depthwise"
        return "reference"  # C one-channel convolutions, one at a time, would be slower still
    return "per_group"


def _as_depthwise(w, groups):
    """The grouped kernel ``(kh, kw, 1, C * dm)`` as Keras's depthwise ``(kh, kw, C, dm)``."""
    kh, kw, _, f = w.shape
    return w.reshape(kh, kw, groups, f // groups)


def _forward_per_group(x, w, b, strides, padding, dilation_rate, groups, relu):
    xp = get_array_module(x)
    cg, f = w.shape[2], w.shape[3]
    fg = f // groups
    y, caches = None, []
    for g in range(groups):
        ws = slice(g * fg, (g + 1) * fg)
        yg, cache = conv2d_forward(
            xp.ascontiguousarray(x[..., g * cg : (g + 1) * cg]),
            xp.ascontiguousarray(w[..., ws]),
            None if b is None else b[ws],
            strides,
            padding,
            dilation_rate,
            relu=relu,
        )
        if y is None:
            y = xp.empty(yg.shape[:3] + (f,), dtype=yg.dtype)
        y[..., ws] = yg
        caches.append(cache)
    return y, ("fast_per_group", caches, x.shape, w.shape)


def _backward_per_group(dy, cache, need_dx):
    _, caches, x_shape, w_shape = cache
    xp = get_array_module(dy)
    groups = len(caches)
    cg, f = w_shape[2], w_shape[3]
    fg = f // groups
    dx = dw = db = None
    for g, inner in enumerate(caches):
        ws = slice(g * fg, (g + 1) * fg)
        dxg, dwg, dbg = conv2d_backward(xp.ascontiguousarray(dy[..., ws]), inner, need_dx)
        if dw is None:  # the dtype the group's backward gives (float32 on the fused kernels)
            dw, db = xp.empty(w_shape, dtype=dwg.dtype), xp.empty(f, dtype=dbg.dtype)
            dx = xp.empty(x_shape, dtype=dxg.dtype) if need_dx else None
        dw[..., ws], db[ws] = dwg, dbg
        if need_dx:
            dx[..., g * cg : (g + 1) * cg] = dxg
    return dx, dw, db
