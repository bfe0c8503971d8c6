"""im2col and col2im for NHWC images: the lesson's trick that turns convolution into a GEMM.

Layout. For input ``x`` of shape ``(N, H, W, C)`` and a ``(kh, kw)`` window, ``im2col``
returns a matrix of shape ``(N * Ho * Wo, kh * kw * C)``: one row per output pixel, the
row holding that pixel's window flattened in ``(kh, kw, C)`` order. A kernel stored as
``(kh, kw, C, F)`` reshapes for free to ``(kh * kw * C, F)``, and ``cols @ kernel`` is
``(N * Ho * Wo, F)``: already the NHWC output, with no transpose. (The lesson writes the
same product as ``W x im2col(x)``; ours is its transpose, chosen so no transpose is needed.)

The window matrix is built with one copy out of a strided view of the (padded) input,
and ``col2im`` adds it back with ``kh * kw`` strided adds: no Python loop over samples
or output pixels.

Dilation ``(dh, dw)`` spaces the taps of a window ``dh`` rows and ``dw`` columns apart (a
kernel spanning ``(kh - 1) * dh + 1`` rows); the matrix keeps the same layout. The compiled
kernels know no dilation, so a dilated window always takes the NumPy path.

On the GPU (CuPy inputs) both directions are CUDA kernels (``kernels/cuda``), dilation
included; ``col2im`` there is a gather: each pixel sums the entries that read it.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import kernels
from ..backend import get_array_module
from ..kernels import cuda
from ..utils.conv_utils import conv_output_size, padding_amounts


def pad_nhwc(x, pads, value=0.0):
    """Pad the H and W axes of an NHWC array by ``((top, bottom), (left, right))``."""
    (t, b), (l, r) = pads
    if t == b == l == r == 0:
        return x
    n, h, w, c = x.shape
    out = get_array_module(x).empty((n, h + t + b, w + l + r, c), dtype=x.dtype)
    # the border only, then the image: every element written once (a full fill first wrote the
    # interior twice, 8% of a ResNet-20 step in its 'same' convolutions)
    out[:, :t] = value
    out[:, t + h :] = value
    out[:, t : t + h, :l] = value
    out[:, t : t + h, l + w :] = value
    out[:, t : t + h, l : l + w, :] = x
    return out


def window_view(xp_, kernel_size, strides, out_hw, dilation=(1, 1)):
    """Read-only strided view ``(N, Ho, Wo, kh, kw, C)`` of every window of padded ``xp_``."""
    n, _, _, c = xp_.shape
    kh, kw = kernel_size
    sh, sw = strides
    dh, dw = dilation
    s0, s1, s2, s3 = xp_.strides
    return as_strided(
        xp_,
        shape=(n, out_hw[0], out_hw[1], kh, kw, c),
        strides=(s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3),
        writeable=False,
    )


def output_hw(hw, kernel_size, strides, padding, dilation=(1, 1)):
    """``(Ho, Wo)`` for an ``(H, W)`` input: the single formula in ``conv_utils``; ``padding`` a
    string or explicit ``((top, bottom), (left, right))``."""
    ph, pw = (padding, padding) if isinstance(padding, str) else padding
    return (
        conv_output_size(hw[0], kernel_size[0], strides[0], ph, dilation[0]),
        conv_output_size(hw[1], kernel_size[1], strides[1], pw, dilation[1]),
    )


def use_ckernels(x) -> bool:
    """The compiled kernels serve C-contiguous float32 arrays; everything else takes NumPy."""
    return kernels.lib is not None and x.dtype == np.float32 and x.flags.c_contiguous


def kernel_args(x_shape, kernel_size, strides, padding):
    """The 12 integer arguments the compiled kernels take, and ``(Ho, Wo)``."""
    n, h, w, c = x_shape
    out_hw = output_hw((h, w), kernel_size, strides, padding)
    (t, _), (l, _) = padding_amounts((h, w), kernel_size, strides, padding)
    return (n, h, w, c, kernel_size[0], kernel_size[1], strides[0], strides[1], t, l) + out_hw, out_hw


def gpu_window_args(x_shape, kernel_size, strides, padding, dilation):
    """The 14 integer arguments of the GPU window kernels (the C ones plus the dilation), and ``(Ho, Wo)``."""
    n, h, w, c = x_shape
    out_hw = output_hw((h, w), kernel_size, strides, padding, dilation)
    (t, _), (l, _) = padding_amounts((h, w), kernel_size, strides, padding, dilation)
    return (
        (n, h, w, c, kernel_size[0], kernel_size[1], strides[0], strides[1], dilation[0], dilation[1], t, l) + out_hw
    ), out_hw


def im2col(x, kernel_size, strides=(1, 1), padding="valid", ones_column=False, dilation=(1, 1)):
    """Gather every window of ``x`` into the rows of a matrix.

    Args:
        x: images, shape ``(N, H, W, C)``.
        kernel_size: ``(kh, kw)``.
        strides: ``(sh, sw)``.
        padding: ``'valid'``, ``'same'`` (zeros, TensorFlow's split) or explicit pads
            ``((top, bottom), (left, right))`` (what a built layer passes).
        ones_column: append a column of ones, so that a bias stacked under the kernel is
            added by the same GEMM and its gradient falls out of the weight-gradient GEMM
            (cs231n's "bias trick"; a broadcast add over 9 channels costs more than the GEMM).
        dilation: ``(dh, dw)``, the spacing of the taps (default ``(1, 1)``: adjacent).

    Returns:
        ``(cols, (Ho, Wo))``.

    Shape:
        cols: ``(N * Ho * Wo, kh * kw * C [+ 1])`` with
        ``Ho = conv_output_size(H, kh, sh, padding, dh)``.
    """
    n, h, w, c = x.shape
    kh, kw = kernel_size
    dilation = tuple(dilation)
    k = kh * kw * c
    ld = k + 1 if ones_column else k
    xp = get_array_module(x)
    if xp is not np:
        args, out_hw = gpu_window_args(x.shape, kernel_size, strides, padding, dilation)
        cols = xp.empty((n * out_hw[0] * out_hw[1], ld), dtype=x.dtype)
        cuda.im2col(xp.ascontiguousarray(x), cols, *args, ld)  # fills the ones column too
        return cols, out_hw
    out_hw = output_hw((h, w), kernel_size, strides, padding, dilation)
    cols = xp.empty((n * out_hw[0] * out_hw[1], ld), dtype=x.dtype)
    if use_ckernels(x) and dilation == (1, 1):  # fills the ones column too
        args, _ = kernel_args(x.shape, kernel_size, strides, padding)
        kernels.im2col_f32(x, cols, *args, ld)
        return cols, out_hw
    xp_ = pad_nhwc(x, padding_amounts((h, w), kernel_size, strides, padding, dilation))
    view = window_view(xp_, kernel_size, strides, out_hw, dilation)
    # Write the windows straight into the first k columns: one copy, no temporary.
    dst = as_strided(
        cols,
        shape=view.shape,
        strides=(
            out_hw[0] * out_hw[1] * ld * cols.itemsize,
            out_hw[1] * ld * cols.itemsize,
            ld * cols.itemsize,
            kw * c * cols.itemsize,
            c * cols.itemsize,
            cols.itemsize,
        ),
    )
    dst[...] = view
    if ones_column:
        cols[:, k] = 1
    return cols, out_hw


def col2im(cols, x_shape, kernel_size, strides=(1, 1), padding="valid", dilation=(1, 1), out=None, threads=1):
    """Adjoint of :func:`im2col`: add every window row back onto the image it came from.

    Args:
        cols: ``(N * Ho * Wo, kh * kw * C)``.
        x_shape: ``(N, H, W, C)`` of the original (unpadded) input.
        dilation: ``(dh, dw)``, as given to :func:`im2col`.
        out: optional C-contiguous array of ``x_shape`` to write ``dx`` into.
        threads: images split over this many of the C kernel's threads (where it runs).

    Returns:
        ``dx`` of shape ``x_shape``: pixels covered by several windows get the sum.
    """
    n, h, w, c = x_shape
    kh, kw = kernel_size
    dh, dw = dilation = tuple(dilation)
    xp = get_array_module(cols)
    if xp is not np:
        args, _ = gpu_window_args(x_shape, kernel_size, strides, padding, dilation)
        dx = xp.empty(tuple(x_shape), dtype=cols.dtype) if out is None else out
        cuda.col2im(xp.ascontiguousarray(cols), dx, *args, cols.shape[1])
        return dx
    if use_ckernels(cols) and dilation == (1, 1):
        args, _ = kernel_args(x_shape, kernel_size, strides, padding)
        dx = xp.empty(x_shape, dtype=cols.dtype) if out is None else out
        kernels.col2im_f32(cols, dx, *args, cols.shape[1], threads)
        return dx
    sh, sw = strides
    (t, b), (l, r) = padding_amounts((h, w), kernel_size, strides, padding, dilation)
    ho, wo = output_hw((h, w), kernel_size, strides, padding, dilation)
    dxp = xp.zeros((n, h + t + b, w + l + r, c), dtype=cols.dtype)
    d6 = cols.reshape(n, ho, wo, kh, kw, c)
    for i in range(kh):
        for j in range(kw):
            dxp[:, i * dh : i * dh + sh * ho : sh, j * dw : j * dw + sw * wo : sw, :] += d6[:, :, :, i, j, :]
    if out is not None:
        out[...] = dxp[:, t : t + h, l : l + w, :]
        return out
    return dxp[:, t : t + h, l : l + w, :]
