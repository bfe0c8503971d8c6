"""2-D convolution (cross-correlation, as Keras computes it) through im2col and one GEMM.

Two code paths compute the same product ``im2col(x) @ W``:

- the reference, in NumPy: im2col writes the window matrix, one BLAS GEMM multiplies it;
- for float32 'valid' convolutions with at most 32 filters and 200 taps, when the optional C
  kernels are built and the CPU has AVX2, ``conv_fwd_f32``/``conv_dw_f32`` read each window row
  straight from the image into
  registers. The window matrix (25 to 75 times the image) is never written out, and the
  skinny product (6 to 20 filters) avoids a BLAS call that packs that whole matrix first.
  The tests hold the two paths to the same answers.

Dilation goes through the same im2col (the NumPy path: the C kernels know no dilation);
``groups > 1`` is :mod:`convolab.ops.grouped_conv`, one GEMM per group. On the GPU (CuPy
inputs) im2col and col2im are CUDA kernels and the GEMMs are cuBLAS (``@`` on CuPy arrays).
"""
from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..utils.conv_utils import padding_amounts
from .grouped_conv import grouped_conv2d_backward, grouped_conv2d_forward
from .im2col import col2im, im2col

#: the fused kernels hold up to 32 filters in registers
_MAX_FUSED_FILTERS = kernels.MAX_FUSED_FILTERS
#: above this many taps (kh * kw * C) the packed BLAS GEMM wins: measured on the lesson's
#: layers, fused was faster for K = 25, 75, 150 and slower for K = 250 (10 channels, 5x5)
_MAX_FUSED_TAPS = 200


def _fused_ok(x, w, padding, strides):
    f = w.shape[3]
    return (type(x) is np.ndarray and kernels.usable(x, w) and kernels.lib.fused_conv and f <= _MAX_FUSED_FILTERS
            and w.shape[0] * w.shape[1] * w.shape[2] <= _MAX_FUSED_TAPS
            and padding_amounts(x.shape[1:3], w.shape[:2], strides, padding) == ((0, 0), (0, 0)))


def _padded_columns(mat, fp):
    """``mat`` (rows, F) as a C-contiguous float32 (rows, fp) array, zeros after column F."""
    out = np.zeros((mat.shape[0], fp), dtype=np.float32)
    out[:, : mat.shape[1]] = mat
    return out


def _int_args(x_shape, w_shape, strides, out_hw):
    n, h, w, c = x_shape
    kh, kw, _, f = w_shape
    return (n, h, w, c, kh, kw, strides[0], strides[1], f) + tuple(out_hw)


def conv2d_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1), groups=1):
    """Convolve NHWC images with a ``(kh, kw, C // groups, F)`` kernel.

    Args:
        x: ``(N, H, W, C)``.
        w: ``(kh, kw, C // groups, F)`` kernel, Keras's layout.
        b: ``(F,)`` bias or ``None``.
        strides: ``(sh, sw)``.
        padding: ``'valid'`` or ``'same'``.
        dilation_rate: ``(dh, dw)``, the spacing of the kernel's taps.
        groups: split the channels into this many groups, each convolved with its own
            ``F // groups`` filters (Keras's ``groups``).

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, Ho, Wo, F)``, ``Ho = floor((H - k) / sh) + 1`` for ``'valid'`` with
        ``k = (kh - 1) * dh + 1``, ``ceil(H / sh)`` for ``'same'``.
    """
    dilation_rate = tuple(dilation_rate)
    if groups > 1:
        return grouped_conv2d_forward(x, w, b, strides, padding, dilation_rate, groups)
    kh, kw, c, f = w.shape
    n = x.shape[0]
    k = kh * kw * c
    if dilation_rate == (1, 1) and _fused_ok(x, w, padding, strides):
        return _conv2d_forward_fused(x, w, b, strides, padding)
    cols, (ho, wo) = im2col(x, (kh, kw), strides, padding, ones_column=b is not None, dilation=dilation_rate)
    # With a bias, cols ends in a column of ones and the bias is the last row of the weight
    # matrix: one GEMM computes x * w + b (the bias trick).
    wmat = w.reshape(k, f) if b is None else get_array_module(w).concatenate([w.reshape(k, f), b.reshape(1, f)])
    y = cols @ wmat
    cache = (cols, x.shape, wmat, w.shape, strides, padding, dilation_rate)
    return y.reshape(n, ho, wo, f), cache


def conv2d_backward(dy, cache, need_dx=True):
    """Gradients of :func:`conv2d_forward`.

    Args:
        dy: upstream gradient ``(N, Ho, Wo, F)``; never written to.
        cache: from the forward call.
        need_dx: skip the input gradient (the first layer needs none).

    Returns:
        ``(dx, dw, db)``: ``dx`` ``(N, H, W, C)`` or ``None``, ``dw`` ``(kh, kw, C // groups, F)``,
        ``db`` ``(F,)``.
    """
    if isinstance(cache[0], str):  # ("grouped", ...) or ("fused", ...)
        backward = grouped_conv2d_backward if cache[0] == "grouped" else _conv2d_backward_fused
        return backward(dy, cache, need_dx)
    cols, x_shape, wmat, w_shape, strides, padding, dilation_rate = cache
    kh, kw, c, f = w_shape
    k = kh * kw * c
    dy2 = dy.reshape(-1, f)
    dwmat = cols.T @ dy2  # with the bias trick, its last row is db
    dw = dwmat[:k].reshape(w_shape)
    db = dwmat[k] if len(dwmat) > k else dy2.sum(axis=0)
    dx = None
    if need_dx:
        dcols = dy2 @ wmat[:k].T
        dx = col2im(dcols, x_shape, (kh, kw), strides, padding, dilation_rate)
    return dx, dw, db


def _conv2d_forward_fused(x, w, b, strides, padding):
    from .im2col import output_hw

    kh, kw, c, f = w.shape
    n = x.shape[0]
    ho, wo = output_hw(x.shape[1:3], (kh, kw), strides, padding)
    fp = 8 * math.ceil(f / 8)
    wp = _padded_columns(w.reshape(kh * kw * c, f), fp)
    bp = None if b is None else _padded_columns(b.reshape(1, f), fp)
    y = np.empty((n, ho, wo, f), dtype=np.float32)
    kernels.conv_fwd_f32(x, wp, bp, y, *_int_args(x.shape, w.shape, strides, (ho, wo)))
    return y, ("fused", x, w, b is not None, strides, padding)


def _conv2d_backward_fused(dy, cache, need_dx):
    _, x, w, has_bias, strides, padding = cache
    kh, kw, c, f = w.shape
    k = kh * kw * c
    fp = 8 * math.ceil(f / 8)
    dy2 = np.ascontiguousarray(dy.reshape(-1, f), dtype=np.float32)
    dwp = np.zeros((k, fp), dtype=np.float32)
    dbp = np.zeros(fp, dtype=np.float32) if has_bias else None
    kernels.conv_dw_f32(x, dy2, dwp, dbp, *_int_args(x.shape, w.shape, strides, dy.shape[1:3]))
    dw = np.ascontiguousarray(dwp[:, :f]).reshape(w.shape)
    db = dbp[:f] if has_bias else dy2.sum(axis=0)
    dx = None
    if need_dx:
        dx = col2im(dy2 @ w.reshape(k, f).T, x.shape, (kh, kw), strides, padding)
    return dx, dw, db
