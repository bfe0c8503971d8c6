"""``keras.ops.conv`` and ``keras.ops.conv_transpose``: the layers' convolutions as functions,
recorded on the tape (their backward is the ops' own) inside a ``GradientTape`` block.

Channels last only; 1-D inputs ``(N, L, C)`` with kernels ``(k, C, F)`` and 2-D inputs
``(N, H, W, C)`` with kernels ``(kh, kw, C, F)`` (``(kh, kw, F, C)`` for the transpose, Keras's layout).
"""

from __future__ import annotations

from ..autodiff.tape import record
from ..autodiff.tensor import unwrap
from .conv import conv2d_backward, conv2d_forward
from .conv1d import conv1d_backward, conv1d_forward
from .conv_transpose import conv2d_transpose_backward, conv2d_transpose_forward


def _window(value, n, name):
    v = (value,) * n if isinstance(value, int) else tuple(value)
    if len(v) != n:
        raise ValueError(f"keras.ops: `{name}` must be an int or {n} ints for a {n}-D convolution; got {value!r}")
    return v


def _checked(inputs, kernel, who, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"keras.ops.{who}: convolab supports data_format='channels_last' only; got {data_format!r}")
    x, w = unwrap(inputs), unwrap(kernel)
    if x.ndim not in (3, 4) or w.ndim != x.ndim:
        raise ValueError(
            f"keras.ops.{who}: expects (N, L, C) inputs with a (k, C, F) kernel or (N, H, W, C) inputs "
            f"with a 4-D kernel; got shapes {tuple(x.shape)} and {tuple(w.shape)}"
        )
    return x, w


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """N-D convolution (N = 1 or 2), as Keras's ``ops.conv``.

    Shape:
        ``(N, L, C) * (k, C, F) -> (N, Lo, F)``; ``(N, H, W, C) * (kh, kw, C, F) -> (N, Ho, Wo, F)``.
    """
    x, w = _checked(inputs, kernel, "conv", data_format)
    padding = padding.lower()
    if x.ndim == 3:
        y, cache = conv1d_forward(
            x, w, None, _window(strides, 1, "strides")[0], padding, _window(dilation_rate, 1, "dilation_rate")[0]
        )
        back = conv1d_backward
    else:
        y, cache = conv2d_forward(
            x, w, None, _window(strides, 2, "strides"), padding, _window(dilation_rate, 2, "dilation_rate")
        )
        back = conv2d_backward
    return record(y, (inputs, kernel), lambda g: back(g, cache)[:2], "conv")


def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None, dilation_rate=1):
    """2-D transposed convolution, as Keras's ``ops.conv_transpose``; kernel ``(kh, kw, F, C)``.

    Shape: ``(N, H, W, C) -> (N, Ho, Wo, F)`` (see :func:`convolab.nn.conv_transpose.conv_transpose_output_size`).
    """
    x, w = _checked(inputs, kernel, "conv_transpose", data_format)
    if x.ndim != 4:
        raise ValueError(f"keras.ops.conv_transpose: convolab computes the 2-D case only; got inputs {tuple(x.shape)}")
    op = None if output_padding is None else _window(output_padding, 2, "output_padding")
    y, cache = conv2d_transpose_forward(
        x, w, None, _window(strides, 2, "strides"), padding.lower(), op, _window(dilation_rate, 2, "dilation_rate")
    )
    return record(y, (inputs, kernel), lambda g: conv2d_transpose_backward(g, cache)[:2], "conv_transpose")
