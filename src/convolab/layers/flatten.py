"""Flatten: every axis but the batch axis into one (a free reshape for contiguous NHWC)."""

from __future__ import annotations

import math

from ..utils.layer_schema import layer_schema
from .base import Layer
from .unsupported import reject_unsupported


class Flatten(Layer):
    """Shape: ``(N, d1, d2, ...)`` -> ``(N, d1 * d2 * ...)`` in C order (NHWC, like Keras)."""

    config_schema = layer_schema()

    def to_onnx(self, g, t, folded=None):
        """ONNX Flatten in NHWC order, as convolab and Keras flatten."""
        from ..saving.onnx_ops import to_nhwc

        to_nhwc(g, t)
        t.name = g.op("Flatten", [t.name], self.name, axis=1)
        t.rank = 2

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
