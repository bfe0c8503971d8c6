"""2-D convolution (cross-correlation, as Keras computes it) through im2col and one GEMM."""
from __future__ import annotations

from ..backend import xp
from .im2col import col2im, im2col


def conv2d_forward(x, w, b=None, strides=(1, 1), padding="valid"):
    """Convolve NHWC images with a ``(kh, kw, C, F)`` kernel.

    Args:
        x: ``(N, H, W, C)``.
        w: ``(kh, kw, C, F)`` kernel, Keras's layout.
        b: ``(F,)`` bias or ``None``.
        strides: ``(sh, sw)``.
        padding: ``'valid'`` or ``'same'``.

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, Ho, Wo, F)``, ``Ho = floor((H - kh) / sh) + 1`` for ``'valid'``,
        ``ceil(H / sh)`` for ``'same'``.
    """
    kh, kw, c, f = w.shape
    n = x.shape[0]
    k = kh * kw * c
    cols, (ho, wo) = im2col(x, (kh, kw), strides, padding, ones_column=b is not None)
    # With a bias, cols ends in a column of ones and the bias is the last row of the weight
    # matrix: one GEMM computes x * w + b (the bias trick).
    wmat = w.reshape(k, f) if b is None else xp.concatenate([w.reshape(k, f), b.reshape(1, f)])
    y = cols @ wmat
    cache = (cols, x.shape, wmat, w.shape, strides, padding)
    return y.reshape(n, ho, wo, f), cache


def conv2d_backward(dy, cache, need_dx=True):
    """Gradients of :func:`conv2d_forward`.

    Args:
        dy: upstream gradient ``(N, Ho, Wo, F)``; never written to.
        cache: from the forward call.
        need_dx: skip the input gradient (the first layer needs none).

    Returns:
        ``(dx, dw, db)``: ``dx`` ``(N, H, W, C)`` or ``None``, ``dw`` ``(kh, kw, C, F)``, ``db`` ``(F,)``.
    """
    cols, x_shape, wmat, w_shape, strides, padding = cache
    kh, kw, c, f = w_shape
    k = kh * kw * c
    dy2 = dy.reshape(-1, f)
    dwmat = cols.T @ dy2  # with the bias trick, its last row is db
    dw = dwmat[:k].reshape(w_shape)
    db = dwmat[k] if len(dwmat) > k else dy2.sum(axis=0)
    dx = None
    if need_dx:
        dcols = dy2 @ wmat[:k].T
        dx = col2im(dcols, x_shape, (kh, kw), strides, padding)
    return dx, dw, db
