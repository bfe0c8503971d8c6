"""``keras.Input`` and ``InputLayer``: the symbolic input of a functional model, or the input shape at the head of a
Sequential model (Keras keeps ``Input`` here too)."""

from __future__ import annotations

from .base import Layer
from .keras_tensor import GraphNode, KerasTensor


class InputLayer(Layer):
    """Placeholder carrying ``shape`` (without the batch axis); holds no weights and does no math."""

    def __init__(
        self, shape=None, batch_size=None, name=None, input_shape=None, dtype=None, batch_shape=None, **kwargs
    ):
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


def Input(
    shape=None, batch_size=None, name=None, dtype=None, batch_shape=None, sparse=None, tensor=None, optional=False
):
    """Keras's ``keras.Input``: a symbolic input tensor of ``shape`` (without the batch axis).

    It also starts a Sequential model: ``Sequential([keras.Input(shape=(28, 28, 1)), ...])``.
    """
    if sparse or tensor is not None or optional:
        raise ValueError("keras.Input: sparse, tensor= and optional= are not supported")
    layer = InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype, batch_shape=batch_shape)
    kt = KerasTensor((batch_size,) + tuple(layer.shape), dtype=layer.dtype, name=layer.name)
    node = GraphNode(layer, [], [kt])
    kt.node = node
    layer._inbound_nodes.append(node)
    layer.build((None,) + tuple(layer.shape))
    return kt
