"""Flatten: every axis but the batch axis into one (a free reshape for contiguous NHWC)."""

from __future__ import annotations

import math

from .base import Layer
from .unsupported import reject_unsupported


class Flatten(Layer):
    """Shape: ``(N, d1, d2, ...)`` -> ``(N, d1 * d2 * ...)`` in C order (NHWC, like Keras)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        reject_unsupported(self.describe(), data_format=data_format)
        self._in_shape = None

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        rest = input_shape[1:]
        return (input_shape[0], None if any(d is None for d in rest) else math.prod(rest))

    def call(self, x, training=False):
        self._in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._in_shape)
