"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate.

Each takes a list of tensors and is written with ``keras.ops``: inside a training step the
tape records those ops, so a merge needs no backward of its own.
"""

from __future__ import annotations

from ..autodiff import functions as ops
from .base import Layer, shape_str


class _Merge(Layer):
    """Elementwise merge of two or more inputs of one shape (NumPy broadcasting allowed)."""

    min_inputs = 2

    def _check(self, shapes):
        if not isinstance(shapes, list) or len(shapes) < self.min_inputs:
            got = "one input" if not isinstance(shapes, list) else f"{len(shapes)} inputs"
            raise ValueError(f"{self.describe()} expects a list of at least {self.min_inputs} inputs; got {got}")

    def build(self, input_shape):
        self._check(input_shape)
        self.input_shape = input_shape
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        rank = max(len(s) for s in input_shape)
        out = []
        for dims in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in input_shape]):
            known = {d for d in dims if d not in (None, 1)}
            if len(known) > 1:
                raise ValueError(
                    f"{self.describe()}: inputs of shapes "
                    f"{', '.join(shape_str(s) for s in input_shape)} cannot be merged"
                )
            out.append(known.pop() if known else (None if None in dims else 1))
        return tuple(out)

    def call(self, inputs, training=False):
        self._check(list(inputs))
        out = inputs[0]
        for x in inputs[1:]:
            out = self._merge(out, x)
        return self._finish(out, len(inputs))

    def _finish(self, out, n):
        return out


class Add(_Merge):
    """``inputs[0] + inputs[1] + ...``."""

    _merge = staticmethod(ops.add)


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs)."""

    def _check(self, shapes):
        if not isinstance(shapes, list) or len(shapes) != 2:
            raise ValueError(f"{self.describe()} expects a list of exactly 2 inputs")

    _merge = staticmethod(ops.subtract)


class Multiply(_Merge):
    """Elementwise product of the inputs."""

    _merge = staticmethod(ops.multiply)


class Average(_Merge):
    """Elementwise mean of the inputs."""

    _merge = staticmethod(ops.add)

    def _finish(self, out, n):
        return ops.divide(out, float(n))


class Maximum(_Merge):
    _merge = staticmethod(ops.maximum)


class Minimum(_Merge):
    _merge = staticmethod(ops.minimum)


class Concatenate(Layer):
    """Join the inputs along ``axis`` (default -1, the channels)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"{self.describe()}: `axis` must be an int; got {axis!r}")
        self.axis = axis

    def build(self, input_shape):
        self.input_shape = input_shape
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{self.describe()} expects a list of at least 2 inputs")
        rank = len(input_shape[0])
        if any(len(s) != rank for s in input_shape):
            raise ValueError(
                f"{self.describe()}: inputs of different ranks {', '.join(shape_str(s) for s in input_shape)}"
            )
        axis = self.axis % rank
        if axis == 0:
            raise ValueError(f"{self.describe()}: cannot concatenate along the batch axis")
        out = list(input_shape[0])
        for s in input_shape[1:]:
            for i, (a, b) in enumerate(zip(out, s)):
                if i != axis and a is not None and b is not None and a != b:
                    raise ValueError(
                        f"{self.describe()}: inputs of shapes "
                        f"{', '.join(shape_str(t) for t in input_shape)} differ off axis {self.axis}"
                    )
        sizes = [s[axis] for s in input_shape]
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def call(self, inputs, training=False):
        return ops.concatenate(list(inputs), axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)
