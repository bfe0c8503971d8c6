"""Depthwise 2-D convolution: each input channel convolved with its own ``depth_multiplier`` filters.

Two code paths compute the same sums:

- the reference, in NumPy: Keras's kernel ``(kh, kw, C, depth_multiplier)`` reshapes for free to
  the grouped kernel ``(kh, kw, 1, C * depth_multiplier)`` with ``groups = C`` (output channel
  ``c * dm + m`` is channel ``c`` convolved with filter ``m``, TensorFlow's order), so the math is
  :func:`convolab.nn.conv.conv2d_forward` with ``groups = C``: an im2col matrix ``kh * kw``
  times the image, regrouped, and a batched product of ``C`` one-column matrices;
- for C-contiguous float32 NumPy arrays, when the optional C kernels are built, ``depthwise_fwd_f32``,
  ``depthwise_dx_f32`` and ``depthwise_dw_f32`` (``convolab/kernels/_ckernels.c``): per pixel a
  sum over the window's taps of rows of channels, which in NHWC are contiguous and vectorise,
  with no window matrix. Any window, strides, padding, dilation and depth multiplier.

``convolab.kernels.lib = None`` (or ``CONVOLAB_NO_CKERNELS=1``) forces the reference, which the
tests hold the kernels to; float64 always takes it, and so do CuPy arrays (on the GPU the
grouped path's im2col and products run there).
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from . import threads
from ..utils.conv_utils import padding_amounts
from .conv import conv2d_backward, conv2d_forward
from .im2col import output_hw


def _use_c(*arrays):
    """The C kernels take C-contiguous float32 NumPy arrays (not CuPy's, which look alike)."""
    arrays = [a for a in arrays if a is not None]
    return all(type(a) is np.ndarray for a in arrays) and kernels.usable(*arrays)


def _kernel_ints(x_shape, w_shape, strides, padding, dilation_rate):
    """The 15 integers of the depthwise kernels: N H W C kh kw sh sw pt pl rh rw Ho Wo dm."""
    n, h, w, c = x_shape
    kh, kw, _, dm = w_shape
    (pt, _), (pl, _) = padding_amounts((h, w), (kh, kw), strides, padding, dilation_rate)
    ho, wo = output_hw((h, w), (kh, kw), strides, padding, dilation_rate)
    return (n, h, w, c, kh, kw, strides[0], strides[1], pt, pl, dilation_rate[0], dilation_rate[1], ho, wo, dm)


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
        y: ``(N, Ho, Wo, C * dm)``, ``Ho`` as for :func:`convolab.nn.conv.conv2d_forward`.
    """
    kh, kw, c, dm = w.shape
    strides, dilation_rate = tuple(strides), tuple(dilation_rate)
    if _use_c(x, w, b):
        return _forward_c(x, w, b, strides, padding, dilation_rate)
    return _reference_forward(x, w, b, strides, padding, dilation_rate)


def _threads(ints):
    """How many of the kernels' threads to split the batch over (:mod:`convolab.nn.threads`).
    The kernels read about 4 bytes a tap and output, so a tap counts as 20 GEMM FLOPs of work."""
    n, _, _, c, kh, kw = ints[:6]
    return threads.kernel_threads(n, 20.0 * n * ints[12] * ints[13] * c * ints[14] * kh * kw)


def _forward_c(x, w, b, strides, padding, dilation_rate):
    ints = _kernel_ints(x.shape, w.shape, strides, padding, dilation_rate)
    y = np.empty((x.shape[0], ints[12], ints[13], w.shape[2] * w.shape[3]), dtype=np.float32)
    kernels.depthwise_fwd_f32(x, w, b, y, *ints, threads=_threads(ints))
    # x and w themselves, not copies: the backward kernels read the windows from x
    return y, ("c", x, w, strides, padding, dilation_rate, ints)


def _reference_forward(x, w, b, strides, padding, dilation_rate):
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
    if cache[0] != "c":
        inner, w_shape = cache
        dx, dw, db = conv2d_backward(dy, inner, need_dx)
        return dx, dw.reshape(w_shape), db
    return _backward_c(dy, cache, need_dx)


def _backward_c(dy, cache, need_dx):
    _, x, w, strides, padding, dilation_rate, ints = cache
    if not _use_c(dy):
        if kernels.lib is None or type(dy) is not np.ndarray or dy.dtype != np.float32:
            # the kernels were switched off since the forward call, or dy is not float32
            # NumPy: the reference, from its own forward
            _, ref = _reference_forward(x, w, None, strides, padding, dilation_rate)
            return depthwise_conv2d_backward(dy, ref, need_dx)
        dy = np.ascontiguousarray(dy)
    nt = _threads(ints)
    dw = np.empty(w.shape, dtype=np.float32)
    db = np.empty(w.shape[2] * w.shape[3], dtype=np.float32)
    kernels.depthwise_dw_f32(x, dy, dw, db, *ints, threads=nt)  # the parts' shares added in part order
    dx = None
    if need_dx:
        dx = np.empty(x.shape, dtype=np.float32)
        kernels.depthwise_dx_f32(dy, w, dx, *ints, threads=nt)
    return dx, dw, db
