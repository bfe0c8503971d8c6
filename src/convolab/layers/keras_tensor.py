"""Symbolic tensors for the functional API: what ``keras.Input`` returns and layers pass on.

Calling a layer on a :class:`KerasTensor` records a :class:`GraphNode` (see
:mod:`convolab.models.functional`); no array math happens until a ``keras.Model`` runs the graph.
"""
from __future__ import annotations

import numpy as np

from .base import shape_str


class KerasTensor:
    """A symbolic tensor: a shape (``None`` for the batch axis), a dtype and where it came from."""

    def __init__(self, shape, dtype="float32", node=None, index=0, name=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype).name
        self.node = node  # the GraphNode that outputs it
        self.index = index
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def _keras_history(self):
        return (self.node.layer, 0, self.index)

    def __repr__(self):
        return f"<KerasTensor shape={shape_str(self.shape)}, dtype={self.dtype}, name={self.name}>"

    def _refuse(self, *args):
        raise TypeError("convolab's functional API does not trace arithmetic on symbolic tensors yet: use layers "
                        "(keras.layers.Add, Subtract, Multiply, Concatenate, Rescaling, Activation) or a custom "
                        "layer whose call uses keras.ops")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __matmul__ = __getitem__ = _refuse


class GraphNode:
    """One layer call in a functional graph."""

    def __init__(self, layer, inputs, outputs, args=(), kwargs=None):
        self.layer = layer
        self.inputs = inputs      # list of KerasTensors (a single input: a list of one)
        self.outputs = outputs    # list of KerasTensors
        self.multi = False        # the layer was called with a list
        self.args = args
        self.kwargs = kwargs or {}


def is_symbolic(x) -> bool:
    if isinstance(x, KerasTensor):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(t, KerasTensor) for t in x)


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None, sparse=None, tensor=None,
          optional=False):
    """Keras's ``keras.Input``: a symbolic input tensor of ``shape`` (without the batch axis).

    It also starts a Sequential model: ``Sequential([keras.Input(shape=(28, 28, 1)), ...])``.
    """
    from .input_layer import InputLayer

    if sparse or tensor is not None or optional:
        raise ValueError("keras.Input: sparse, tensor= and optional= are not supported")
    layer = InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype, batch_shape=batch_shape)
    kt = KerasTensor((batch_size,) + tuple(layer.shape), dtype=layer.dtype, name=layer.name)
    node = GraphNode(layer, [], [kt])
    kt.node = node
    layer._inbound_nodes.append(node)
    layer.build((None,) + tuple(layer.shape))
    return kt
