"""Export a functional model to ONNX: its graph node by node, nested models inlined.

Each tensor of the graph keeps its own layout (see :mod:`convolab.saving.onnx_export`); a
layer is emitted as in a Sequential export. Merge layers become ONNX ops: Add, Sub, Mul, Max,
Min (folded left to right, as the layers compute), Average as Adds then a Div by the count,
Concatenate as Concat. Their inputs are brought to one layout first: kept NCHW when all are,
otherwise all NHWC (Concatenate's axis is then moved to where that axis is in NCHW).

Inputs are named ``input`` (one input) or ``input_0``, ``input_1``... in ``model.inputs``
order, outputs ``output`` or ``output_0``...; all NHWC, the batch axis symbolic.
"""

from __future__ import annotations

from ._common import LAYER_CLASSES
from .graph_io import MERGE_CLASSES, refuse_layer

_ELEMENTWISE = {
    "Add": "Add",
    "Subtract": "Sub",
    "Multiply": "Mul",
    "Maximum": "Max",
    "Minimum": "Min",
    "Average": "Add",
}
#: an NHWC axis's position in the NCHW layout
_NCHW_AXIS = [0, 2, 3, 1]


def _copy(t):
    out = type(t)(t.name, t.rank)
    out.nchw = t.nchw
    return out


class _Walk:
    """One export of a graph: the ONNX graph ``g`` and the layer exporter's ``emit`` and ``to_nhwc``."""

    def __init__(self, g, emit, to_nhwc):
        self.g, self.emit, self.to_nhwc = g, emit, to_nhwc

    def merge(self, layer, ins):
        g = self.g
        ts = [_copy(t) for t in ins]
        nchw = all(t.nchw for t in ts)
        if not nchw:
            for t in ts:
                self.to_nhwc(g, t)
        rank, kind, base = max(t.rank for t in ts), type(layer).__name__, layer.name
        if kind == "Concatenate":
            axis = layer.axis % rank
            name = g.op("Concat", [t.name for t in ts], base, axis=_NCHW_AXIS[axis] if nchw else axis)
        else:
            name = ts[0].name
            for t in ts[1:]:
                name = g.op(_ELEMENTWISE[kind], [name, t.name], base)
            if kind == "Average":
                name = g.op("Div", [name, g.const(base + "_count", float(len(ts)))], base + "_mean")
        out = type(ts[0])(name, rank)
        out.nchw = nchw
        return out

    def layer(self, layer, ins):
        """Emit ``layer`` on the running tensors ``ins``; returns its output tensors."""
        from ..models.model import Model
        from ..models.sequential import Sequential

        kind = type(layer).__name__
        if type(layer) is Sequential:
            t = ins[0]
            for inner in layer.layers:
                (t,) = self.layer(inner, [t])
            return [t]
        if type(layer) is Model and layer.graph() is not None:
            return self.graph(layer, ins)
        if isinstance(layer, Model):
            raise ValueError(
                f"export_model: {layer.describe()} is a subclassed model ({kind}); its forward pass is "
                "Python code, which ONNX export cannot translate"
            )
        if MERGE_CLASSES.get(kind) is type(layer):
            return [self.merge(layer, ins)]
        if LAYER_CLASSES.get(kind) is not type(layer):
            refuse_layer(layer, "export_model")
        t = _copy(ins[0])
        self.emit(self.g, t, layer)
        return [t]

    def graph(self, model, ins):
        nodes, inputs, outputs, _, _ = model.graph()
        values = {id(t): v for t, v in zip(inputs, ins)}
        for node in nodes:
            if not node.inputs:
                continue  # an Input: its value is given
            if node.args or node.kwargs:
                raise ValueError(f"export_model: {node.layer.describe()} is called with arguments besides its inputs")
            outs = self.layer(node.layer, [values[id(t)] for t in node.inputs])
            for t, v in zip(node.outputs, outs):
                values[id(t)] = v
        return [values[id(t)] for t in outputs]


def emit_graph(g, model, ins, emit, to_nhwc):
    """Emit a functional model's nodes on the tensors ``ins`` (one per model input).

    ``emit(g, t, layer)`` emits one layer on the running tensor ``t`` and ``to_nhwc(g, t)`` brings
    a tensor back to NHWC: the layer translations of :mod:`.onnx_export`, which calls this and
    passes them in, so this module need not import the module that imports it.
    """
    return _Walk(g, emit, to_nhwc).graph(model, ins)


def io_names(base, n):
    return [base] if n == 1 else [f"{base}_{i}" for i in range(n)]
