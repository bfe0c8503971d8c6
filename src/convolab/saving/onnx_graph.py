"""Export a functional model to ONNX: its graph node by node, nested models inlined.

Each tensor of the graph keeps its own layout (see :mod:`convolab.saving.onnx_export`); each
layer emits itself (its ``to_onnx``). A BatchNormalization folds into the Conv2D,
DepthwiseConv2D or Dense before it exactly where ``predict`` folds it:
:func:`convolab.models.folding.plan` for a graph's nodes, :func:`~convolab.models.folding.stack_plan`
for a nested Sequential's layers. Merge layers become ONNX ops: Add, Sub, Mul, Max,
Min (folded left to right, as the layers compute), Average as Adds then a Div by the count,
Concatenate as Concat. Their inputs are brought to one layout first: kept NCHW when all are,
otherwise all NHWC (Concatenate's axis is then moved to where that axis is in NCHW).

Inputs are named ``input`` (one input) or ``input_0``, ``input_1``... in ``model.inputs``
order, outputs ``output`` or ``output_0``...; all NHWC, the batch axis symbolic.
"""

from __future__ import annotations

from ..models import folding
from ._common import LAYER_CLASSES
from .graph_io import MERGE_CLASSES, refuse_layer
from .onnx_ops import to_nhwc

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


class _Walk:
    """One export of a graph: the ONNX graph ``g`` and the layer exporter's ``emit``."""

    def __init__(self, g, emit):
        self.g, self.emit = g, emit

    def merge(self, layer, ins):
        g = self.g
        ts = [t.copy() for t in ins]
        nchw = all(t.nchw for t in ts)
        if not nchw:
            for t in ts:
                to_nhwc(g, t)
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

    def layer(self, layer, ins, folded=None):
        """Emit ``layer`` on the running tensors ``ins``; returns its output tensors. ``folded``: a
        BatchNormalization layer to fold into it."""
        from ..models.model import Model
        from ..models.sequential import Sequential

        kind = type(layer).__name__
        if type(layer) is Sequential:
            t, inner = ins[0], layer.layers
            pairs, i = set(folding.stack_plan(inner)), 0  # the pairs the stack's predict folds
            while i < len(inner):
                (t,) = self.layer(inner[i], [t], inner[i + 1] if i in pairs else None)
                i += 2 if i in pairs else 1
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
        t = ins[0].copy()
        self.emit(self.g, t, layer, None if folded is None else folding.folded_kernel_and_bias(layer, folded))
        return [t]

    def graph(self, model, ins):
        nodes, inputs, outputs, _, _ = model.graph()
        values = {id(t): v for t, v in zip(inputs, ins)}
        pairs = folding.plan(nodes, outputs)  # {id(node): the BatchNormalization node folded into it}
        folded_away = {id(bn) for bn in pairs.values()}
        for node in nodes:
            if not node.inputs or id(node) in folded_away:
                continue  # an Input (its value is given), or a BatchNormalization its input node computed
            if node.args or node.kwargs:
                raise ValueError(f"export_model: {node.layer.describe()} is called with arguments besides its inputs")
            bn = pairs.get(id(node))
            outs = self.layer(node.layer, [values[id(t)] for t in node.inputs], None if bn is None else bn.layer)
            for t, v in zip(node.outputs if bn is None else bn.outputs, outs):
                values[id(t)] = v
        return [values[id(t)] for t in outputs]


def emit_graph(g, model, ins, emit):
    """Emit a functional model's nodes on the tensors ``ins`` (one per model input).

    ``emit(g, t, layer, folded)`` emits one layer on the running tensor ``t`` (``folded``: ``(kernel,
    bias)`` with a following BatchNormalization folded in, or None): :mod:`.onnx_export`'s, which
    calls this and passes it in, so this module need not import the module that imports it.
    """
    return _Walk(g, emit).graph(model, ins)


def io_names(base, n):
    """``[base]`` for one tensor (``"input"``, ``"output"``), else ``base_0``, ``base_1``..."""
    return [base] if n == 1 else [f"{base}_{i}" for i in range(n)]
