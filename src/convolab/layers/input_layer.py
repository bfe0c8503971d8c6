"""Input / InputLayer: declare the input shape at the head of a Sequential model."""
from __future__ import annotations

from .base import Layer


class InputLayer(Layer):
    """Placeholder carrying ``shape`` (without the batch axis); holds no weights and does no math."""

    def __init__(self, shape=None, batch_size=None, name=None, input_shape=None, dtype=None,
                 batch_shape=None, **kwargs):
        if batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("InputLayer: pass `shape`, e.g. keras.Input(shape=(28, 28, 1))")
        if isinstance(shape, int):
            shape = (shape,)
        super().__init__(name=name, input_shape=shape, dtype=dtype, **kwargs)
        self.shape = self._input_shape_arg
        self.batch_size = batch_size

    def call(self, x, training=False):
        return x

    def backward(self, dy):
        return dy
