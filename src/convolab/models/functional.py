"""The functional API: symbolic tensors, graph nodes, and a ``Model`` that runs the graph.

    inputs = keras.Input(shape=(32, 32, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    y = keras.layers.Conv2D(16, 3, padding="same")(x)
    x = keras.layers.Add()([x, y])                        # a branch merges
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)

Calling a layer on a :class:`KerasTensor` does no math: it builds the layer for the input
shapes, works out the output shape, and records a :class:`GraphNode` (layer, input tensors,
output tensors). ``Model(inputs, outputs)`` walks the nodes back from the outputs and runs
them in order; inside a ``GradientTape`` every layer call is recorded on the tape, so a layer
used twice (shared weights), branches and merges all get their gradients.
"""
from __future__ import annotations

import numpy as np

from ..layers.keras_tensor import GraphNode, Input, KerasTensor, is_symbolic  # noqa: F401 (the functional API's names)


def _shape_of(t):
    return t.shape if isinstance(t, KerasTensor) else [x.shape for x in t]


def infer_output_shape(layer, inputs, args, kwargs):
    """The output shape(s) of ``layer`` for symbolic ``inputs``.

    A layer that knows its shape rule (``compute_output_shape``) is asked; a user's layer
    that does not is run once on zeros (batch 1) and measured, as Keras traces it.
    """
    from ..layers.base import Layer as Base

    shapes = _shape_of(inputs)
    if layer.has_backward():
        return layer.output_shape
    if type(layer).compute_output_shape is not Base.compute_output_shape:
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
    if layer.output_shape is None:
        layer.output_shape = out_shape
    dtype = in_list[0].dtype if in_list else layer.dtype
    multi_out = isinstance(out_shape, list)
    outs = [KerasTensor(s, dtype=dtype) for s in (out_shape if multi_out else [out_shape])]
    node = GraphNode(layer, in_list, outs, args, kwargs)
    node.multi = not isinstance(inputs, KerasTensor)
    for i, t in enumerate(outs):
        t.node, t.index, t.name = node, i, layer.name
    layer._inbound_nodes.append(node)
    return outs if multi_out else outs[0]


def _flatten(struct):
    if isinstance(struct, KerasTensor):
        return [struct]
    if isinstance(struct, dict):
        return [t for v in struct.values() for t in _flatten(v)]
    return [t for v in struct for t in _flatten(v)]


def _nodes_between(inputs, outputs):
    """The graph's nodes in an order that runs each after its inputs (DFS from the outputs)."""
    input_ids = {id(t) for t in inputs}
    order, done, on_path = [], set(), set()

    def visit(t):
        node = t.node
        if node is None:
            raise ValueError(f"{t} does not come from keras.Input or a layer call")
        if id(node) in done:
            return
        if id(node) in on_path:
            raise ValueError("the functional graph has a cycle")
        on_path.add(id(node))
        if id(t) not in input_ids:
            if not node.inputs:
                raise ValueError(f"the outputs depend on the input '{t.name}', which is not among the model's inputs")
            for parent in node.inputs:
                visit(parent)
        on_path.discard(id(node))
        done.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t)
    return order
