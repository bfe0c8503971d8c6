"""Argument normalisation and the one output-size formula for conv and pooling.

Every place that needs a convolution or pooling output size (the ops, im2col,
``compute_output_shape``) calls :func:`conv_output_size` or :func:`same_padding`,
so the formula exists once.

Padding comes in two spellings: a string (``'valid'``, ``'same'``, Conv1D's ``'causal'``), or the
explicit pads ``((before, after), ...)`` one pair per spatial axis. :func:`resolve_padding` turns
the first into the second; layers do it once at build (:class:`PaddingCache`), so the ops they
call each step get numbers, and the ops still take a string from anyone who calls them directly.
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
            raise TypeError(f"{owner}: `{arg_name}` must be an int or a tuple of {n} ints; got {value!r}") from None
        if len(out) != n or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in out):
            raise ValueError(f"{owner}: `{arg_name}` must be an int or a tuple of {n} ints; got {value!r}")
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
    ``'same'`` and ``'causal'``: ``ceil(size / stride)``, as TensorFlow/Keras define them;
    explicit pads ``(before, after)``: ``'valid'`` on ``size + before + after``.
    """
    if padding == "same" or padding == "causal":
        return -(-size // stride)
    if not isinstance(padding, str):
        size += padding[0] + padding[1]
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


def resolve_padding(sizes, kernel, strides, padding, dilation=None):
    """Explicit pads ``((before, after), ...)``, one pair per spatial axis, for a string ``padding``.

    Args:
        sizes: the input's spatial sizes, e.g. ``(H, W)`` or ``(L,)``.
        kernel, strides, dilation: one int per axis (``dilation`` default all 1).
        padding: ``'valid'`` (zeros), ``'same'`` (:func:`same_padding`, TensorFlow's split) or
            ``'causal'`` (1-D only: ``k - 1`` zeros before, with ``k`` the dilated span).

    Returns:
        a tuple of ``(before, after)`` int pairs, ``len(sizes)`` of them.
    """
    dilation = dilation or (1,) * len(sizes)
    if padding == "valid":
        return ((0, 0),) * len(sizes)
    if padding == "causal":
        if len(sizes) != 1:
            raise ValueError(f"padding='causal' is for one spatial axis (Conv1D); got sizes {tuple(sizes)}")
        return ((effective_kernel_size(kernel[0], dilation[0]) - 1, 0),)
    if padding != "same":
        raise ValueError(
            f"`padding` must be 'valid', 'same', 'causal' or explicit ((before, after), ...) pairs; got {padding!r}"
        )
    return tuple(same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation))


def padding_amounts(hw, kernel, strides, padding, dilation=(1, 1)):
    """``((top, bottom), (left, right))`` for an ``(H, W)`` input: explicit pads as they come,
    a string through :func:`resolve_padding` (``'valid'`` is zeros, whatever the sizes)."""
    if not isinstance(padding, str):
        return padding
    if padding == "valid":
        return (0, 0), (0, 0)
    return resolve_padding(hw, kernel, strides, padding, dilation)


class PaddingCache:
    """A layer's explicit pads, computed at build and again only when the input's spatial size changes.

    Keras lets a convolution built for ``(None, None, C)`` run on any image size (a fully
    convolutional net); ``'same'`` pads depend on that size, so the last size and its pads are
    kept: a model called on one size computes them once, not once a step.

    Args:
        kernel, strides, padding, dilation: the layer's window (``padding`` a string).
        sizes_of: maps the input's spatial sizes to the sizes the pads apply to (a transposed
            convolution pads its output); default the input's own.
    """

    __slots__ = ("kernel", "strides", "padding", "dilation", "sizes_of", "sizes", "pads")

    def __init__(self, kernel, strides, padding, dilation=None, sizes_of=None):
        self.kernel, self.strides, self.padding, self.dilation = kernel, strides, padding, dilation
        self.sizes_of = sizes_of
        self.sizes = self.pads = None

    def __call__(self, sizes):
        """The pads for an input of spatial ``sizes`` (a tuple of ints)."""
        if sizes != self.sizes:
            target = sizes if self.sizes_of is None else self.sizes_of(sizes)
            self.pads = resolve_padding(target, self.kernel, self.strides, self.padding, self.dilation)
            self.sizes = sizes
        return self.pads

    def build(self, input_shape):
        """Resolve for a built ``input_shape`` (batch first, channels last) whose sizes are known."""
        sizes = tuple(input_shape[1:-1])
        if None not in sizes:
            self(sizes)
