"""Symbolic tensors for the functional API: what ``keras.Input`` returns and layers pass on.

Calling a layer on a :class:`KerasTensor` records a :class:`GraphNode` (:func:`call_symbolic`,
which ``Layer.__call__`` hands symbolic inputs to); no array math happens until a ``keras.Model``
runs the graph (:mod:`convolab.models.functional`). This module sits below ``layers.base``: it
works on any layer through the layer's own methods and imports no layer.
"""

from __future__ import annotations

import numpy as np

from ..utils.naming import shape_str


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
        raise TypeError(
            "convolab's functional API does not trace arithmetic on symbolic tensors yet: use layers "
            "(keras.layers.Add, Subtract, Multiply, Concatenate, Rescaling, Activation) or a custom "
            "layer whose call uses keras.ops"
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __matmul__ = __getitem__ = _refuse


class GraphNode:
    """One layer call in a functional graph."""

    def __init__(self, layer, inputs, outputs, args=(), kwargs=None):
        self.layer = layer
        self.inputs = inputs  # list of KerasTensors (a single input: a list of one)
        self.outputs = outputs  # list of KerasTensors
        self.multi = False  # the layer was called with a list
        self.args = args
        self.kwargs = kwargs or {}


def is_symbolic(x) -> bool:
    if isinstance(x, KerasTensor):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(t, KerasTensor) for t in x)


def _shape_of(t):
    return t.shape if isinstance(t, KerasTensor) else [x.shape for x in t]


def infer_output_shape(layer, inputs, args, kwargs):
    """The output shape(s) of ``layer`` for symbolic ``inputs``.

    A layer that knows its shape rule (``compute_output_shape``) is asked; a user's layer
    that does not is run once on zeros (batch 1) and measured, as Keras traces it.
    """
    shapes = _shape_of(inputs)
    if layer.has_backward():
        if tuple(shapes) == tuple(layer.input_shape):
            return layer.output_shape
        # a layer that takes other shapes than it was built for (Embedding) says what comes out
        return layer.compute_output_shape(shapes)
    if layer.has_shape_rule():
        try:
            return layer.compute_output_shape(shapes)
        except NotImplementedError:
            pass

    def zeros(t):
        return np.zeros((1,) + tuple(1 if d is None else d for d in t.shape[1:]), dtype=t.dtype)

    sample = zeros(inputs) if isinstance(inputs, KerasTensor) else [zeros(t) for t in inputs]
    y = layer(sample, *args, **kwargs)
    if isinstance(y, (list, tuple)):
        return [(None,) + tuple(np.shape(v))[1:] for v in y]
    return (None,) + tuple(np.shape(np.asarray(y)))[1:]


def call_symbolic(layer, inputs, args, kwargs):
    """``layer(inputs)`` on symbolic tensors: build, infer shapes, record a GraphNode."""
    kwargs = dict(kwargs)
    kwargs.pop("training", None)  # decided when the graph runs
    in_list = [inputs] if isinstance(inputs, KerasTensor) else list(inputs)
    shapes = _shape_of(inputs)
    if not layer.built:
        if layer.has_backward():
            if not isinstance(inputs, KerasTensor):
                raise TypeError(f"{layer.describe()} takes one input; got a list of {len(in_list)}")
            layer.check_input_shape(shapes)
            layer.build(shapes)
        else:
            layer._build_from(shapes)
    elif layer.has_backward() and isinstance(inputs, KerasTensor):
        layer.check_call_shape(shapes)  # a built layer called again (shared weights): same shapes
    out_shape = infer_output_shape(layer, inputs, args, kwargs)
    if layer.output_shape is None or not (layer.has_backward() or layer.has_shape_rule()):
        # a user's layer without a shape rule: the traced shape, not the identity Layer.build assumed
        layer.output_shape = out_shape
    dtype = in_list[0].dtype if in_list else layer.dtype
    if layer.has_backward() and np.dtype(dtype).kind != "f":
        dtype = layer.dtype  # integers in, the layer's floats out (cast first, or looked up: Embedding)
    multi_out = isinstance(out_shape, list)
    outs = [KerasTensor(s, dtype=dtype) for s in (out_shape if multi_out else [out_shape])]
    node = GraphNode(layer, in_list, outs, args, kwargs)
    node.multi = not isinstance(inputs, KerasTensor)
    for i, t in enumerate(outs):
        t.node, t.index, t.name = node, i, layer.name
    layer._inbound_nodes.append(node)
    return outs if multi_out else outs[0]
