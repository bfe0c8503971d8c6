"""Argument normalisation and the one output-size formula for conv and pooling.

Every place that needs a convolution or pooling output size (the ops, im2col,
``compute_output_shape``) calls :func:`conv_output_size` or :func:`same_padding`,
so the formula exists once.
"""
from __future__ import annotations

import numbers


def normalize_tuple(value, n: int, arg_name: str, owner: str = "layer") -> tuple:
    """Turn an int or an iterable of ``n`` ints into a tuple of ``n`` positive ints.

    Raises ``TypeError``/``ValueError`` naming ``owner`` and ``arg_name``.
    """
    if isinstance(value, bool):
        raise TypeError(f"{owner}: `{arg_name}` must be an int or a tuple of {n} ints; got {value!r}")
    if isinstance(value, numbers.Integral):
        out = (int(value),) * n
    else:
        try:
            out = tuple(value)
        except TypeError:
            raise TypeError(
                f"{owner}: `{arg_name}` must be an int or a tuple of {n} ints; got {value!r}"
            ) from None
        if len(out) != n or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in out
        ):
            raise ValueError(
                f"{owner}: `{arg_name}` must be an int or a tuple of {n} ints; got {value!r}"
            )
        out = tuple(int(v) for v in out)
    if any(v < 1 for v in out):
        raise ValueError(f"{owner}: every value of `{arg_name}` must be >= 1; got {value!r}")
    return out


def normalize_padding(value, owner: str = "layer") -> str:
    """Return ``'valid'`` or ``'same'`` (case-insensitive input), else raise ``ValueError``."""
    if not isinstance(value, str) or value.lower() not in ("valid", "same"):
        raise ValueError(f"{owner}: `padding` must be 'valid' or 'same'; got {value!r}")
    return value.lower()


def effective_kernel_size(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel along one axis: ``(kernel - 1) * dilation + 1``."""
    return (kernel - 1) * dilation + 1


def conv_output_size(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Output length of a convolution or pooling window along one axis.

    With ``k = (kernel - 1) * dilation + 1`` (the span of a dilated kernel):
    ``'valid'``: ``floor((size - k) / stride) + 1`` (0 if the kernel does not fit);
    ``'same'``: ``ceil(size / stride)``, as TensorFlow/Keras define them.
    """
    if padding == "same":
        return -(-size // stride)
    k = effective_kernel_size(kernel, dilation)
    if size < k:
        return 0
    return (size - k) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Zero padding ``(before, after)`` that ``'same'`` adds along one axis.

    TensorFlow's rule: total ``max((out - 1) * stride + k - size, 0)`` with ``k`` the dilated
    kernel's span, the odd pixel going after.
    """
    out = conv_output_size(size, kernel, stride, "same")
    total = max((out - 1) * stride + effective_kernel_size(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def padding_amounts(hw, kernel, strides, padding, dilation=(1, 1)):
    """``((top, bottom), (left, right))`` for an ``(H, W)`` input; zeros for ``'valid'``."""
    if padding == "valid":
        return (0, 0), (0, 0)
    return (same_padding(hw[0], kernel[0], strides[0], dilation[0]),
            same_padding(hw[1], kernel[1], strides[1], dilation[1]))
