"""2-D convolution (cross-correlation, as Keras computes it) through im2col and one GEMM."""
from __future__ import annotations

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
    cols, (ho, wo) = im2col(x, (kh, kw), strides, padding)
    y = cols @ w.reshape(kh * kw * c, f)
    if b is not None:
        y += b
    cache = (cols, x.shape, w, strides, padding)
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
    cols, x_shape, w, strides, padding = cache
    kh, kw, c, f = w.shape
    dy2 = dy.reshape(-1, f)
    dw = (cols.T @ dy2).reshape(w.shape)
    db = dy2.sum(axis=0)
    dx = None
    if need_dx:
        dcols = dy2 @ w.reshape(kh * kw * c, f).T
        dx = col2im(dcols, x_shape, (kh, kw), strides, padding)
    return dx, dw, db
