"""Transposed 2-D convolution: the input gradient of a convolution, used as a forward pass.

``conv2d_transpose(x, w)`` is what :func:`convolab.nn.conv.conv2d_backward` computes as ``dx``
for a convolution with kernel ``w`` whose output is ``x``: every input pixel spreads
``x[n, i, j, :] @ w[a, b].T`` over the window it would have been read from. So the forward is
one product and a col2im, and the backward is the convolution itself:

- ``dx = conv2d(dy, w)`` (the convolution maps the ``(Ho, Wo)`` image back to ``(H, W)``);
- ``dw`` is that convolution's kernel gradient with ``x`` as its upstream gradient;
- ``db`` sums ``dy`` over the batch and the pixels.

Output sizes follow Keras (``compute_conv_transpose_output_shape``); the padding of the
convolution behind it follows TensorFlow's rule for that output size, as
``tf.nn.conv2d_transpose`` does, so the values match Keras's on its TensorFlow backend.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..utils.conv_utils import conv_output_size, effective_kernel_size
from .conv import conv2d_backward, conv2d_forward
from .im2col import col2im


def conv_transpose_output_size(size, kernel, stride, padding, output_padding=None, dilation=1):
    """Keras's ``deconv_output_length``: the output length along one axis.

    With ``k = (kernel - 1) * dilation + 1``: without ``output_padding``, ``'valid'`` gives
    ``size * stride + max(k - stride, 0)`` and ``'same'`` gives ``size * stride``; with it,
    ``(size - 1) * stride + k - 2 * pad + output_padding``, ``pad`` 0 ('valid') or ``k // 2`` ('same').
    """
    k = effective_kernel_size(kernel, dilation)
    if output_padding is None:
        return size * stride + max(k - stride, 0) if padding == "valid" else size * stride
    pad = 0 if padding == "valid" else k // 2
    return (size - 1) * stride + k - 2 * pad + output_padding


def conv_transpose_output_sizes(sizes, kernel, strides, padding, output_padding=None, dilation=None):
    """:func:`conv_transpose_output_size` along every axis of ``sizes``: the output's spatial sizes."""
    op = output_padding or (None,) * len(sizes)
    dilation = dilation or (1,) * len(sizes)
    return tuple(
        conv_transpose_output_size(n, k, s, padding, o, d)
        for n, k, s, o, d in zip(sizes, kernel, strides, op, dilation)
    )


def check_invertible(size, out, kernel, stride, padding, dilation=1):
    """Whether the convolution behind a transposed one maps ``out`` back to ``size`` steps: Keras's
    shape formula allows a few ``output_padding`` values (an even kernel with 'same') for which it
    does not, and TensorFlow refuses those too. Returns an error message, or ``None``."""
    back = conv_output_size(out, kernel, stride, padding, dilation)
    if back != size:
        return (
            f"an output of {out} (from an input of {size}, kernel {kernel}, stride {stride}, padding={padding!r}) "
            f"convolves back to {back}, not {size}: choose another output_padding"
        )
    return None


def conv2d_transpose_forward(
    x, w, b=None, strides=(1, 1), padding="valid", output_padding=None, dilation_rate=(1, 1), pads=None
):
    """Transposed convolution of NHWC images with Keras's ``(kh, kw, F, C)`` kernel.

    Args:
        x: ``(N, H, W, C)``.
        w: ``(kh, kw, F, C)``: ``F`` output channels, ``C`` input channels (Keras's layout).
        b: ``(F,)`` or ``None``.
        strides: ``(sh, sw)``.
        padding: ``'valid'`` or ``'same'``.
        output_padding: ``None`` or ``(oh, ow)``, each below its stride.
        dilation_rate: ``(dh, dw)``.
        pads: ``((top, bottom), (left, right))``, the padding of the convolution behind it on the
            ``(Ho, Wo)`` output, as a layer resolves it once at build; ``None`` (default) works it
            out from ``padding``.

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, Ho, Wo, F)`` with ``Ho = conv_transpose_output_size(H, kh, sh, padding, oh, dh)``.
    """
    n, h, wd, c = x.shape
    kh, kw, f, _ = w.shape
    op = (None, None) if output_padding is None else tuple(output_padding)
    ho = conv_transpose_output_size(h, kh, strides[0], padding, op[0], dilation_rate[0])
    wo = conv_transpose_output_size(wd, kw, strides[1], padding, op[1], dilation_rate[1])
    for size, out, k, st, d in ((h, ho, kh, strides[0], dilation_rate[0]), (wd, wo, kw, strides[1], dilation_rate[1])):
        problem = check_invertible(size, out, k, st, padding, d)
        if problem:
            raise ValueError(f"conv2d_transpose_forward: {problem}")
    y_shape = (n, ho, wo, f)
    window_padding = padding if pads is None else tuple(tuple(p) for p in pads)
    # the window gradient matrix of a convolution (F in, C out) whose output is x
    cols = x.reshape(-1, c) @ w.reshape(kh * kw * f, c).T
    y = col2im(cols, y_shape, (kh, kw), strides, window_padding, tuple(dilation_rate))
    if b is not None:
        y += b
    return y, (x, w, b is not None, tuple(strides), window_padding, tuple(dilation_rate))


def conv2d_transpose_backward(dy, cache, need_dx=True):
    """Gradients of :func:`conv2d_transpose_forward`.

    Args:
        dy: ``(N, Ho, Wo, F)``; never written to.
        cache: from the forward call.
        need_dx: skip the input gradient.

    Returns:
        ``(dx, dw, db)``: ``(N, H, W, C)`` (or ``None``), ``(kh, kw, F, C)``, ``(F,)`` (or ``None``).
    """
    x, w, has_bias, strides, padding, dilation_rate = cache
    xp = get_array_module(dy)
    dy = xp.ascontiguousarray(dy)
    dx, conv_cache = conv2d_forward(dy, w, None, strides, padding, dilation_rate)
    _, dw, _ = conv2d_backward(xp.ascontiguousarray(x, dtype=dy.dtype), conv_cache, need_dx=False)
    db = dy.sum(axis=(0, 1, 2)) if has_bias else None
    return (dx if need_dx else None), dw, db
