"""2-D convolution (cross-correlation, as Keras computes it) through im2col and one GEMM.

Two code paths compute the same product ``im2col(x) @ W``:

- the reference, in NumPy: im2col writes the window matrix, one BLAS GEMM multiplies it;
- for float32 convolutions (any padding: the image is padded first), when the optional C
  kernels are built, ``conv_fwd_f32``/``conv_dw_f32`` read each window row straight from the
  image into registers. The window matrix (9 to 75 times the image) is never written out,
  and the skinny product (6 to 20 filters) avoids a BLAS call that packs that whole matrix
  first. On a CPU with AVX-512 they take any number of filters (in blocks of 64) and run at
  about twice the speed of im2col + OpenBLAS on the zoo's layers; with AVX2 only, at most 32
  filters and 200 taps (``python benchmarks/conv_kernels.py``). The tests hold every path to
  the same answers, on both instruction sets.

Dilation goes through the same im2col (the NumPy path: the C kernels know no dilation);
``groups > 1`` is :mod:`convolab.nn.grouped_conv`, one GEMM per group. On the GPU (CuPy
inputs) im2col and col2im are CUDA kernels and the GEMMs are cuBLAS (``@`` on CuPy arrays).
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..utils.conv_utils import padding_amounts
from .grouped_conv import grouped_conv2d_backward, grouped_conv2d_forward
from . import threads
from .im2col import col2im, im2col, output_hw

#: above this many taps (kh * kw * C) the packed BLAS GEMM wins over the AVX2 kernels: measured
#: on the lesson's layers, fused was faster for K = 25, 75, 150 and slower for K = 250 (10
#: channels, 5x5). The AVX-512 kernels keep a block of 64 filters' weights in the L2 cache and
#: have no such limit: at K = 250 they ran the forward at 160 GFLOP/s against BLAS's 80, at
#: K = 1,152 (VGG, 128 filters) at 176 against 124 (``benchmarks/conv_kernels.py``).
_MAX_FUSED_TAPS = {"avx2": 200, "avx512": 1 << 30}


def _fused_ok(x, w):
    """The fused kernels serve float32 with at most ``kernels.fused_isa()[1]`` filters (AVX2:
    32, and at most 200 taps; AVX-512: 4096), any padding (the image is padded first)."""
    lib = kernels.lib
    return (
        type(x) is np.ndarray
        and kernels.usable(x, w)
        and lib.fused_conv
        and w.shape[3] <= lib.fused_max_filters
        and w.shape[0] * w.shape[1] * w.shape[2] <= _MAX_FUSED_TAPS[lib.fused_name]
    )


def _padded_columns(mat, fp):
    """``mat`` (rows, F) as a C-contiguous float32 (rows, fp) array, zeros after column F."""
    out = np.zeros((mat.shape[0], fp), dtype=np.float32)
    out[:, : mat.shape[1]] = mat
    return out


def _int_args(x_shape, w_shape, strides, out_hw):
    n, h, w, c = x_shape
    kh, kw, _, f = w_shape
    return (n, h, w, c, kh, kw, strides[0], strides[1], f) + tuple(out_hw)


def conv2d_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1), groups=1, out=None, relu=False):
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
        out: optional C-contiguous ``(N, Ho, Wo, F)`` array of ``x``'s dtype to write ``y`` into.
        relu: return ``max(y, 0)`` instead (Conv2D's ``activation='relu'``): the fused kernels
            rectify as they store, with no pass of its own.

    Returns:
        ``(y, cache)``.

    Inside :func:`convolab.nn.threads.batch_threads` a large enough convolution runs on
    slices of the batch, one thread each (the same arithmetic per image): the fused kernels
    on their own threads, the im2col path on Python threads.

    Shape:
        y: ``(N, Ho, Wo, F)``, ``Ho = floor((H - k) / sh) + 1`` for ``'valid'`` with
        ``k = (kh - 1) * dh + 1``, ``ceil(H / sh)`` for ``'same'``.
    """
    dilation_rate = tuple(dilation_rate)
    if groups > 1:
        y, cache = grouped_conv2d_forward(x, w, b, strides, padding, dilation_rate, groups)
        return (get_array_module(y).maximum(y, 0, out=y) if relu else y), cache
    kh, kw, c, f = w.shape
    n = x.shape[0]
    ho, wo = output_hw(x.shape[1:3], (kh, kw), strides, padding, dilation_rate)
    flops = 2.0 * n * ho * wo * kh * kw * c * f
    if dilation_rate == (1, 1) and _fused_ok(x, w):  # one kernel call, split over the kernel's own threads
        return _conv2d_forward_fused(x, w, b, strides, padding, out, relu, threads.kernel_threads(n, flops))
    cols_bytes = x.dtype.itemsize * ho * wo * (kh * kw * c + 1)
    parts = threads.spans(n, flops, cols_bytes)
    if parts is None:
        return _conv2d_forward_one(x, w, b, strides, padding, dilation_rate, out, relu=relu)
    y = get_array_module(x).empty((n, ho, wo, f), dtype=x.dtype) if out is None else out
    # Chunks (more parts than threads): each chunk's window matrix is multiplied while still in
    # the cache and dropped; the backward builds it again, chunk by chunk, instead of reading
    # a batch's worth (38 MB for 128 images of ResNet-20's second stage) back from memory.
    keep = len(parts) <= threads.spans_threads()
    caches = threads.run(
        lambda lo, hi: _conv2d_forward_one(x[lo:hi], w, b, strides, padding, dilation_rate, y[lo:hi], keep, relu)[1],
        parts,
    )
    return y, ("split", parts, caches, x.shape)


def _conv2d_forward_one(x, w, b, strides, padding, dilation_rate, out, keep_cols=True, relu=False):
    """:func:`conv2d_forward` of the whole of ``x`` on the calling thread; without ``keep_cols``
    the cache holds ``x`` instead of its window matrix, which the backward builds again."""
    kh, kw, c, f = w.shape
    n = x.shape[0]
    k = kh * kw * c
    if dilation_rate == (1, 1) and _fused_ok(x, w):
        return _conv2d_forward_fused(x, w, b, strides, padding, out, relu)
    cols, (ho, wo) = im2col(x, (kh, kw), strides, padding, ones_column=b is not None, dilation=dilation_rate)
    # With a bias, cols ends in a column of ones and the bias is the last row of the weight
    # matrix: one GEMM computes x * w + b (the bias trick).
    xp = get_array_module(w)
    wmat = w.reshape(k, f) if b is None else xp.concatenate([w.reshape(k, f), b.reshape(1, f)])
    if out is None:
        y = cols @ wmat
    else:
        y = out.reshape(-1, f)
        xp.matmul(cols, wmat, out=y)
    if relu:
        xp.maximum(y, 0, out=y)
    if not keep_cols:
        return y.reshape(n, ho, wo, f), ("recompute", x, w, b, strides, padding, dilation_rate)
    cache = (cols, x.shape, wmat, w.shape, strides, padding, dilation_rate)
    return y.reshape(n, ho, wo, f), cache


def _conv2d_forward_cache(x, w, b, strides, padding, dilation_rate):
    """The im2col path's cache for ``x``, without the product (for the recomputing backward)."""
    kh, kw, c, f = w.shape
    cols, _ = im2col(x, (kh, kw), strides, padding, ones_column=b is not None, dilation=dilation_rate)
    wmat = (
        w.reshape(kh * kw * c, f)
        if b is None
        else get_array_module(w).concatenate([w.reshape(kh * kw * c, f), b.reshape(1, f)])
    )
    return (cols, x.shape, wmat, w.shape, strides, padding, dilation_rate)


def conv2d_backward(dy, cache, need_dx=True, dx_out=None):
    """Gradients of :func:`conv2d_forward`.

    Args:
        dy: upstream gradient ``(N, Ho, Wo, F)``; never written to.
        cache: from the forward call.
        need_dx: skip the input gradient (the first layer needs none).
        dx_out: optional C-contiguous ``(N, H, W, C)`` array to write ``dx`` into.

    Returns:
        ``(dx, dw, db)``: ``dx`` ``(N, H, W, C)`` or ``None``, ``dw`` ``(kh, kw, C // groups, F)``,
        ``db`` ``(F,)``.
    """
    if isinstance(cache[0], str):  # ("grouped", ...), ("fused", ...) or ("split", ...)
        if cache[0] == "split":
            return _conv2d_backward_split(dy, cache, need_dx, dx_out)
        if cache[0] == "fused":
            return _conv2d_backward_fused(dy, cache, need_dx, dx_out)
        if cache[0] == "recompute":  # the window matrix again, then the usual backward
            _, x, w, b, strides, padding, dilation_rate = cache
            return conv2d_backward(dy, _conv2d_forward_cache(x, w, b, strides, padding, dilation_rate), need_dx, dx_out)
        return _copy_into(grouped_conv2d_backward(dy, cache, need_dx), dx_out)
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
        dx = col2im(dcols, x_shape, (kh, kw), strides, padding, dilation_rate, out=dx_out)
    return dx, dw, db


def _copy_into(grads, dx_out):
    dx, dw, db = grads
    if dx_out is not None and dx is not None:
        dx_out[...] = dx
        dx = dx_out
    return dx, dw, db


def _conv2d_backward_split(dy, cache, need_dx, dx_out):
    """The backward of a split forward: each slice's input gradient in place, the kernel and
    bias gradients summed over the slices in slice order."""
    _, parts, caches, x_shape = cache
    dx = None
    if need_dx:
        dx = get_array_module(dy).empty(x_shape, dtype=dy.dtype) if dx_out is None else dx_out
    grads = threads.run(
        lambda lo, hi: conv2d_backward(
            dy[lo:hi], caches[parts.index((lo, hi))], need_dx, None if dx is None else dx[lo:hi]
        )[1:],
        parts,
    )
    dw, db = grads[0]
    dw, db = dw.copy(), None if db is None else db.copy()
    for gw, gb in grads[1:]:
        dw += gw
        if db is not None:
            db += gb
    return dx, dw, db


def _conv2d_forward_fused(x, w, b, strides, padding, out=None, relu=False, n_threads=1):
    kh, kw = w.shape[:2]
    ho, wo = output_hw(x.shape[1:3], (kh, kw), strides, padding)
    pads = padding_amounts(x.shape[1:3], (kh, kw), strides, padding)
    y = _fused_forward(x, w, b, strides, pads, (ho, wo), out, relu, n_threads)
    return y, ("fused", x, w, b is not None, strides, pads, x.shape, padding)


def _fused_forward(x, w, b, strides, pads, out_hw, out=None, relu=False, n_threads=1):
    """The fused forward of ``x`` zero-padded by ``pads`` (the kernel pads each image itself),
    rectified as it is stored with ``relu``, on ``n_threads`` of the kernel's threads."""
    kh, kw, c, f = w.shape
    fp = kernels.fused_width(f)
    wp = _padded_columns(w.reshape(kh * kw * c, f), fp)
    bp = None if b is None else _padded_columns(b.reshape(1, f), fp)
    y = np.empty((x.shape[0],) + tuple(out_hw) + (f,), dtype=np.float32) if out is None else out
    kernels.conv_fwd_f32(
        x, wp, bp, y, *_int_args(x.shape, w.shape, strides, out_hw), pads[0][0], pads[1][0], relu, n_threads
    )
    return y


def _conv2d_backward_fused(dy, cache, need_dx, dx_out=None):
    _, x, w, _has_bias, strides, pads, x_shape, padding = cache  # db comes from the dW pass either way
    kh, kw, c, f = w.shape
    k = kh * kw * c
    fp = kernels.fused_width(f)
    dy2 = np.ascontiguousarray(dy.reshape(-1, f), dtype=np.float32)
    dwp = np.zeros((k, fp), dtype=np.float32)
    # the bias gradient comes from the same pass over dy, bias or not (the op returns it either
    # way): a separate dy.sum(axis=0) was a whole pass of its own for every bias-free
    # convolution before a BatchNormalization
    dbp = np.zeros(fp, dtype=np.float32)
    n, ho, wo = dy.shape[:3]
    nt = threads.kernel_threads(n, 2.0 * n * ho * wo * k * f)
    kernels.conv_dw_f32(
        x, dy2, dwp, dbp, *_int_args(x.shape, w.shape, strides, dy.shape[1:3]), pads[0][0], pads[1][0], nt
    )
    dw = np.ascontiguousarray(dwp[:, :f]).reshape(w.shape)
    db = dbp[:f]
    dx = None
    as_conv = need_dx and strides == (1, 1) and not _mostly_padding(x_shape, (ho, wo))
    wt = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2)) if as_conv else None
    if wt is not None and _fused_ok(dy2, wt):
        dx = _input_gradient_stride1(dy, wt, pads, dx_out, nt)
    elif need_dx:
        # the gradient window matrix dy @ w.T is itself a 1x1 convolution of dy, with the kernel
        # transposed (F in, kh*kw*C out): on the fused kernel where it serves (AVX-512: 2.5x the
        # BLAS product here), then col2im adds it back, padding included (no padded copy)
        wk = np.ascontiguousarray(w.reshape(k, f).T).reshape(1, 1, f, k)
        if _fused_ok(dy2, wk):  # each image's Ho*Wo pixels as one row of a 1x1 convolution
            dcols = _fused_forward(
                dy2.reshape(n, 1, ho * wo, f), wk, None, (1, 1), ((0, 0), (0, 0)), (1, ho * wo), n_threads=nt
            ).reshape(-1, k)
        else:
            dcols = dy2 @ wk.reshape(f, k)
        dx = col2im(dcols, x_shape, (kh, kw), strides, padding, out=dx_out, threads=nt)
    return dx, dw, db


def _mostly_padding(x_shape, out_hw):
    """Whether the input gradient as a convolution (:func:`_input_gradient_stride1`) would spend a
    third or more of its taps on the zeros around ``dy``: true for 'valid' convolutions whose
    kernel is large against the image, where the 1x1 product and col2im win. One thread, 128
    images (``python benchmarks/conv_kernels.py``, second table): LeNet's second convolution
    (14x14x6 -> 10x10x16, 5x5) 1.06 ms as a convolution against 0.53 ms; the two-convolution
    model's second (12x12x10 -> 8x8x20) 1.49 against 0.60; at a third more area (LeNet's first
    layer, 3x3 'valid' on 16x16) the convolution is as fast or faster, and with 'same' padding
    nothing is wasted."""
    return x_shape[1] * x_shape[2] >= 1.5 * out_hw[0] * out_hw[1]


def _input_gradient_stride1(dy, wt, pads, out=None, n_threads=1):
    """``dx`` of a stride-1 convolution as a convolution itself, on the fused kernel.

    ``dx[i] = sum_a w[a] dy[i + pt - a]``: the 'valid' correlation of ``dy``, padded by
    ``kh - 1 - pt`` rows on top (and so on for each side), with the kernel flipped in space
    and its channel axes swapped (``(kh, kw, F, C)``). It replaces the GEMM that writes the
    ``(N*Ho*Wo, kh*kw*C)`` gradient window matrix and the col2im that adds it back (30% faster
    on ResNet-20's 16-channel stage). Shapes: ``dy (N, Ho, Wo, F)``; ``wt (kh, kw, F, C)``, the
    flipped kernel, C-contiguous.
    """
    kh, kw = wt.shape[:2]
    (pt, pb), (pl, pr) = pads
    dy = np.ascontiguousarray(dy, dtype=np.float32)
    out_hw = (dy.shape[1] + kh - 1 - pt - pb, dy.shape[2] + kw - 1 - pl - pr)  # the input's height and width
    return _fused_forward(
        dy, wt, None, (1, 1), ((kh - 1 - pt, kh - 1 - pb), (kw - 1 - pl, kw - 1 - pr)), out_hw, out, n_threads=n_threads
    )
