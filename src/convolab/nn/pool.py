"""Max and average pooling over NHWC windows, built on the same window view as im2col.

On the GPU (CuPy inputs) each direction is one CUDA kernel (``kernels/cuda``); the backward
kernels are gathers (each input pixel sums the windows that cover it), so no atomics.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..kernels import cuda
from ..utils.conv_utils import padding_amounts
from .. import kernels
from . import threads
from .im2col import col2im, kernel_args, output_hw, pad_nhwc, use_ckernels, window_view

#: the C pooling loops cost about what this many GEMM multiply-adds cost per value they read
#: and the window taps they visit (nn/threads.py weighs work in GEMM FLOPs)
_WORK_PER_TAP = 20.0


def _windows(x, pool_size, strides, padding, fill):
    """Copy every window into ``(N, Ho, Wo, C, ph * pw)`` (window last, for a reduction)."""
    n, h, w, c = x.shape
    out_hw = output_hw((h, w), pool_size, strides, padding)
    xp_ = pad_nhwc(x, padding_amounts((h, w), pool_size, strides, padding), value=fill)
    view = window_view(xp_, pool_size, strides, out_hw)  # (N, Ho, Wo, ph, pw, C)
    win = np.ascontiguousarray(view.transpose(0, 1, 2, 5, 3, 4))
    return win.reshape(n, out_hw[0], out_hw[1], c, pool_size[0] * pool_size[1]), out_hw


def _scatter_windows(dwin, x_shape, pool_size, strides, padding):
    """Adjoint of :func:`_windows`: add ``(N, Ho, Wo, C, ph * pw)`` back onto ``x_shape``."""
    n, ho, wo, c, _ = dwin.shape
    ph, pw = pool_size
    d6 = dwin.reshape(n, ho, wo, c, ph, pw).transpose(0, 1, 2, 4, 5, 3)
    # col2im takes im2col's 2-D layout: one row of (ph, pw, C) values per output pixel.
    cols = np.ascontiguousarray(d6).reshape(n * ho * wo, ph * pw * c)
    return col2im(cols, x_shape, pool_size, strides, padding)


def max_pool_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """Maximum of each window; ``'same'`` pads with ``-inf`` so padding never wins.

    Args:
        x: ``(N, H, W, C)``.

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, Ho, Wo, C)``, ``Ho = floor((H - ph) / sh) + 1`` (valid) or ``ceil(H / sh)`` (same).
    """
    xp = get_array_module(x)
    if xp is not np or use_ckernels(x):
        args, (ho, wo) = kernel_args(x.shape, pool_size, strides, padding)
        y = xp.empty((x.shape[0], ho, wo, x.shape[3]), dtype=x.dtype)
        arg = xp.empty(y.shape, dtype=np.int32)
        if xp is np:
            # slices of the batch on the kernel's threads inside fit/evaluate/predict (threads.batch_threads)
            nt = threads.kernel_threads(x.shape[0], _WORK_PER_TAP * y.size * pool_size[0] * pool_size[1])
            kernels.maxpool_fwd_f32(x, y, arg, *args, threads=nt)
        else:
            cuda.maxpool_fwd(xp.ascontiguousarray(x), y, arg, *args)
        return y, (arg, x.shape, pool_size, strides, padding)
    win, _ = _windows(x, pool_size, strides, padding, fill=-np.inf)
    # arg: flat index i * pw + j of the first maximum in each window, shape (N, Ho, Wo, C)
    arg = win.argmax(axis=-1)
    y = xp.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    return y, (arg, x.shape, pool_size, strides, padding)


def max_pool_backward(dy, cache):
    """Route each output gradient to the (first) maximum of its window."""
    arg, x_shape, pool_size, strides, padding = cache
    xp = get_array_module(dy)
    if xp is not np:
        args, _ = kernel_args(x_shape, pool_size, strides, padding)
        dx = xp.empty(tuple(x_shape), dtype=dy.dtype)
        cuda.maxpool_bwd(xp.ascontiguousarray(dy), arg, dx, *args)
        return dx
    if use_ckernels(dy) and arg.dtype == np.int32:
        args, _ = kernel_args(x_shape, pool_size, strides, padding)
        dx = np.empty(x_shape, dtype=dy.dtype)
        nt = threads.kernel_threads(dy.shape[0], _WORK_PER_TAP * dx.size * pool_size[0] * pool_size[1])
        kernels.maxpool_bwd_f32(dy, arg, dx, *args, threads=nt)
        return dx
    dwin = np.zeros(arg.shape + (pool_size[0] * pool_size[1],), dtype=dy.dtype)
    np.put_along_axis(dwin, arg[..., None], dy[..., None], axis=-1)
    return _scatter_windows(dwin, x_shape, pool_size, strides, padding)


def _window_counts(x_shape, pool_size, strides, padding, dtype):
    """How many real (unpadded) pixels each output window covers: ``(1, Ho, Wo, 1)``."""
    _, h, w, _ = x_shape
    ones = np.ones((1, h, w, 1), dtype=dtype)
    win, _ = _windows(ones, pool_size, strides, padding, fill=0.0)
    return win.sum(axis=-1)


def avg_pool_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """Mean of each window; with ``'same'`` the padding is left out of the mean (TensorFlow's rule).

    Returns:
        ``(y, cache)`` with ``y`` of shape ``(N, Ho, Wo, C)``.
    """
    xp = get_array_module(x)
    if xp is not np:
        args, (ho, wo) = kernel_args(x.shape, pool_size, strides, padding)
        y = xp.empty((x.shape[0], ho, wo, x.shape[3]), dtype=x.dtype)
        cuda.avgpool_fwd(xp.ascontiguousarray(x), y, *args)
        return y, (None, x.shape, pool_size, strides, padding)
    win, _ = _windows(x, pool_size, strides, padding, fill=0.0)
    counts = _window_counts(x.shape, pool_size, strides, padding, x.dtype)
    y = win.sum(axis=-1) / counts
    return y, (counts, x.shape, pool_size, strides, padding)


def avg_pool_backward(dy, cache):
    """Spread each output gradient evenly over the real pixels of its window."""
    counts, x_shape, pool_size, strides, padding = cache
    xp = get_array_module(dy)
    if xp is not np:
        args, _ = kernel_args(x_shape, pool_size, strides, padding)
        dx = xp.empty(tuple(x_shape), dtype=dy.dtype)
        cuda.avgpool_bwd(xp.ascontiguousarray(dy), dx, *args)
        return dx
    share = (dy / counts)[..., None]
    dwin = np.broadcast_to(share, dy.shape + (pool_size[0] * pool_size[1],))
    return _scatter_windows(dwin, x_shape, pool_size, strides, padding)
