"""Keras's functional merge helpers (``layers.average``, ``subtract``... ``dot``) and the Dot layer.

Each helper builds the layer and calls it on ``inputs``, as Keras's do: on ``keras.Input``
tensors it adds a node to a functional graph, on arrays it computes.
"""

from __future__ import annotations

import numbers

from ..autodiff import functions as ops
from .base import Layer, shape_str
from .merge import Average, Maximum, Minimum, Subtract


def average(inputs, **kwargs):
    """``keras.layers.Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """``keras.layers.Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """``keras.layers.Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """``keras.layers.Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """``keras.layers.Dot(axes, normalize, **kwargs)(inputs)``."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


class Dot(Layer):
    """Dot product of two batches of vectors or matrices along ``axes`` (Keras's batch dot).

    Args:
        axes: an int (the same axis of both inputs) or a pair ``(axis of x, axis of y)``; the
            batch axis (0) cannot be one.
        normalize: L2-normalise both inputs along those axes first (the cosine similarity).

    Shape:
        ``(N, D)`` and ``(N, D)`` -> ``(N, 1)``; ``(N, a, b)`` and ``(N, c, d)`` with axes
        ``(2, 2)`` (``b == d``) -> ``(N, a, c)``: the other axes of x, then those of y.
        Inputs of rank 2 or 3.
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        me = self.describe()
        pair = (axes, axes) if isinstance(axes, numbers.Integral) else axes
        if (
            isinstance(axes, bool)
            or not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or any(isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in pair)
        ):
            raise TypeError(f"{me}: `axes` must be an int or a pair of ints; got {axes!r}")
        self.axes = axes if isinstance(axes, numbers.Integral) else [int(a) for a in axes]
        self._pair = (int(pair[0]), int(pair[1]))
        self.normalize = bool(normalize)

    def _resolved(self, shapes):
        me = self.describe()
        if not isinstance(shapes, list) or len(shapes) != 2:
            raise ValueError(f"{me} expects a list of exactly 2 inputs")
        ranks = [len(s) for s in shapes]
        if any(r not in (2, 3) for r in ranks):
            raise ValueError(
                f"{me} supports inputs of rank 2 or 3; got shapes {', '.join(shape_str(s) for s in shapes)}"
            )
        axes = [a % r for a, r in zip(self._pair, ranks)]
        if 0 in axes:
            raise ValueError(f"{me}: cannot take the dot product along the batch axis; got axes={self.axes!r}")
        da, db = shapes[0][axes[0]], shapes[1][axes[1]]
        if da is not None and db is not None and da != db:
            raise ValueError(
                f"{me}: the dot axes differ in size: {da} (axis {axes[0]} of "
                f"{shape_str(shapes[0])}) and {db} (axis {axes[1]} of {shape_str(shapes[1])})"
            )
        return axes

    def build(self, input_shape):
        self._resolved(input_shape)
        self.input_shape = input_shape
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        ax, ay = self._resolved(input_shape)
        rest = [d for i, d in enumerate(input_shape[0]) if i not in (0, ax)]
        rest += [d for i, d in enumerate(input_shape[1]) if i not in (0, ay)]
        return (input_shape[0][0],) + (tuple(rest) if rest else (1,))

    def call(self, inputs, training=False):
        x, y = inputs
        ax, ay = self._resolved([ops.shape(x), ops.shape(y)])
        if self.normalize:
            x = ops.divide(x, ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=ax, keepdims=True), 1e-12)))
            y = ops.divide(y, ops.sqrt(ops.maximum(ops.sum(ops.square(y), axis=ay, keepdims=True), 1e-12)))
        # x with its dot axis last (N, p, k), y with its dot axis first after the batch (N, k, q)
        if len(ops.shape(x)) == 2:
            x = ops.expand_dims(x, 1)
        elif ax == 1:
            x = ops.transpose(x, (0, 2, 1))
        if len(ops.shape(y)) == 2:
            y = ops.expand_dims(y, 2)
        elif ay == 2:
            y = ops.transpose(y, (0, 2, 1))
        out = ops.matmul(x, y)  # (N, p, q)
        n, p, q = ops.shape(out)
        return ops.reshape(out, (n, p * q) if p == 1 or q == 1 else (n, p, q))

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}
