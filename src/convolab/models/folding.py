"""BatchNormalization folded into the linear layer before it, for inference.

At inference a BatchNormalization is a per-channel affine map, ``y = x * scale + shift``
(:func:`convolab.nn.batchnorm.batchnorm_scale_shift`). After a Conv2D, DepthwiseConv2D or
Dense with no activation, whose output nothing else reads, that map folds into the layer's
kernel and bias (``kernel * scale``, ``bias * scale + shift``): one pass over the output
instead of two, as inference engines do.

:func:`folds` is the one rule for which pairs fold, and :func:`folded_kernel_and_bias` the one
formula; every place that folds asks them: the plan of a chain run by the stack engine
(``plan.py``, then :func:`stack_forward` from ``stack_step.forward``), a graph's inference pass on
the tape (:func:`plan`) and the ONNX export of every model (``saving/onnx_graph.py``, which walks
a Sequential's graph too). Inference means not training and no GradientTape
recording; training and recorded passes run each layer.

The folded weights are computed on each pass from the current weights (a few thousand
multiplies), so there is nothing to keep in step after ``fit`` or ``set_weights``. The result
differs from the two layers run one after the other by float rounding only.
"""

from __future__ import annotations

import copy

from ..layers.conv import Conv2D
from ..layers.dense import Dense
from ..layers.depthwise_conv import DepthwiseConv2D
from ..layers.normalization import BatchNormalization
from ..nn.batchnorm import batchnorm_scale_shift

#: the layers a following BatchNormalization folds into (exactly these classes: a subclass
#: may compute something else)
FOLDABLE = (Conv2D, DepthwiseConv2D, Dense)

#: switch folding off (the tests compare the two)
enabled = True


def folds(layer, bn) -> bool:
    """Whether ``bn``, run on ``layer``'s output alone, folds into ``layer`` at inference.

    The one rule: ``layer`` is exactly a Conv2D, DepthwiseConv2D or Dense with no activation
    and ``bn`` exactly a BatchNormalization (a subclass may compute something else).
    """
    return (
        type(layer) in FOLDABLE
        and getattr(layer, "activation", "linear") == "linear"
        and type(bn) is BatchNormalization
    )


def plan(nodes, outputs):
    """``{id(node): bn_node}``: each node whose one output only a BatchNormalization node reads
    (and that is not a model output), where :func:`folds` allows the pair."""
    readers = {}
    for node in nodes:
        for t in node.inputs:
            readers.setdefault(id(t), []).append(node)
    out_ids = {id(t) for t in outputs}
    pairs = {}
    for node in nodes:
        if len(node.outputs) != 1 or node.args or node.kwargs or node.multi:
            continue
        t = node.outputs[0]
        users = readers.get(id(t), [])
        if id(t) in out_ids or len(users) != 1:
            continue
        bn = users[0]
        if (
            len(bn.inputs) == 1
            and len(bn.outputs) == 1
            and not bn.args
            and not bn.kwargs
            and not bn.multi
            and folds(node.layer, bn.layer)
        ):
            pairs[id(node)] = bn
    return pairs


def stack_plan(layers, logits=False):
    """The indices ``i`` of a stack whose ``layers[i + 1]`` folds into ``layers[i]``.

    In a stack each output is read by the next layer alone. With ``logits`` the last layer
    must run its own ``call_logits``, so it is never folded away.
    """
    last = len(layers) - 1 - (1 if logits else 0)
    return [i for i in range(last) if folds(layers[i], layers[i + 1])]


def stack_forward(layers, x, logits=False, pairs=None):
    """``stack_step.forward(layers, x, training=False, logits)`` with each foldable pair as one
    layer; ``pairs`` as :func:`stack_plan` gives them (``None``: found here). ``None`` when no
    pair folds."""
    if pairs is None:
        pairs = stack_plan(layers, logits)
    if not pairs:
        return None
    start = set(pairs)
    i, last = 0, len(layers) - 1
    while i <= last:
        layer = layers[i]
        if i in start:
            x = folded_call(layer, layers[i + 1], x)
            i += 2
            continue
        x = layer.call_logits(x, training=False) if logits and i == last else layer.call(x, training=False)
        i += 1
    return x


def folded_kernel_and_bias(layer, bn):
    """``bn(layer(x))`` at inference as one layer's ``(kernel, bias)``."""
    p = bn.params
    scale, shift = batchnorm_scale_shift(
        p["moving_mean"], p["moving_variance"], p.get("gamma"), p.get("beta"), bn.epsilon
    )
    kernel, bias = layer.params["kernel"], layer.params.get("bias")
    if type(layer) is DepthwiseConv2D:  # output channel c * dm + m comes from kernel[..., c, m]
        kernel = kernel * scale.reshape(kernel.shape[-2:])
    else:
        kernel = kernel * scale
    bias = shift if bias is None else bias * scale + shift
    return kernel.astype(layer.params["kernel"].dtype, copy=False), bias.astype(kernel.dtype, copy=False)


def folded_call(layer, bn, x):
    """``bn(layer(x), training=False)`` through one layer with the folded weights."""
    kernel, bias = folded_kernel_and_bias(layer, bn)
    twin = copy.copy(layer)  # shares nothing it writes: its own params dict and cache
    twin.params = {**layer.params, "kernel": kernel, "bias": bias}
    return twin.linear_forward(x, training=False)
