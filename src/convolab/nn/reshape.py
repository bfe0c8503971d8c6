"""Reshape and rescale: the two weight-free maps Keras's ``Reshape`` and ``Rescaling`` compute."""

from __future__ import annotations

import math


def resolve_target_shape(in_shape, target_shape):
    """The output shape (batch axis excluded) of reshaping ``in_shape`` to ``target_shape``.

    The one place the ``-1`` rule lives (Keras's ``compute_reshape_output_shape``): at most one
    ``-1``, inferred from the other sizes; ``None`` where an input size is unknown.

    Args:
        in_shape: input sizes without the batch axis; ``None`` for unknown.
        target_shape: positive ints and at most one ``-1``.

    Returns:
        a tuple of ints (``None`` in place of ``-1`` when some input size is unknown).

    Raises:
        ValueError: more than one ``-1``, or the total sizes cannot match.
    """
    target_shape = tuple(target_shape)
    if target_shape.count(-1) > 1:
        raise ValueError(f"at most one -1 is allowed in target_shape; got {target_shape}")
    if any(d is None for d in in_shape):
        return tuple(None if d == -1 else d for d in target_shape)
    size = math.prod(in_shape)
    known = math.prod(d for d in target_shape if d != -1)
    if -1 not in target_shape:
        if size != known:
            raise ValueError(
                f"the total size must be unchanged: {size} values in, {known} in target_shape {target_shape}"
            )
        return target_shape
    if known == 0 or size % known:
        raise ValueError(f"{size} values cannot fill target_shape {target_shape}: {size} is not a multiple of {known}")
    return tuple(size // known if d == -1 else d for d in target_shape)


def reshape_forward(x, target_shape):
    """Reshape every sample, in C order (NHWC images flatten as Keras's do).

    Args:
        x: ``(N, *in_shape)``.
        target_shape: sizes without the batch axis; at most one ``-1``.

    Returns:
        ``(y, cache)``; ``y`` is a view of ``x`` when ``x`` is contiguous.

    Shape:
        y: ``(N, *resolve_target_shape(in_shape, target_shape))``.
    """
    out = resolve_target_shape(x.shape[1:], target_shape)
    return x.reshape((x.shape[0],) + out), x.shape


def reshape_backward(dy, cache):
    """The gradient reshaped back to the input's shape (``dy`` is never written to)."""
    return dy.reshape(cache)


def rescale_forward(x, scale, offset=0.0):
    """``x * scale + offset``, with both numbers cast to ``x``'s dtype first (as Keras does).

    Args:
        x: any shape, floating point.
        scale, offset: Python numbers.

    Returns:
        ``(y, cache)``, ``y`` shaped like ``x``.
    """
    s = x.dtype.type(scale)
    y = x * s
    if offset != 0:
        y += x.dtype.type(offset)
    return y, s


def rescale_backward(dy, cache):
    """``dy * scale``: the offset has no gradient (``dy`` is never written to)."""
    return dy * cache
