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

# The functional API's names. Recording a layer call on symbolic tensors (Layer.__call__'s
# dispatch) lives with the tensors, in layers.keras_tensor, which sits below the layers.
from ..layers.input_layer import Input  # noqa: F401
from ..layers.keras_tensor import GraphNode, KerasTensor, is_symbolic  # noqa: F401


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
