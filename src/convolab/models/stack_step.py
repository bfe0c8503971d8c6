"""Forward, backward and loss over a chain of layers: the stack engine's math for one step.

Pure functions over whatever list of layers they are given: the runner (``runner.py``) passes
each shard's replicas and the decisions its plan (``plan.py``) made once; called without them
(tests, a user's loop) they decide for themselves.
"""

from __future__ import annotations

from ..nn.activations import activation_backward as relu_backward_f
from ..nn.activations import softmax
from . import folding


def fused_softmax(model) -> bool:
    """True when the last layer's softmax and the cross-entropy loss are computed as one op
    (:func:`fused_softmax_layers` on the model's layers and loss)."""
    return fused_softmax_layers(model.layers, model.loss)


def fused_softmax_layers(layers, loss) -> bool:
    """True when ``layers[-1]``'s softmax and ``loss`` are computed as one op.

    The fused form takes the gradient ``softmax(z) - onehot`` straight from the logits ``z``:
    stable where ``log(softmax(z))`` would underflow, and what Keras's TensorFlow backend does.
    """
    last = layers[-1]
    # an activity penalty is on the softmax's output, which the fused form never computes
    return (
        loss is not None
        and getattr(loss, "fuses_softmax", False)
        and getattr(last, "activity_regularizer", None) is None
        and getattr(last, "activation", None) == "softmax"
        and hasattr(last, "call_logits")
    )


def forward(layers, x, training, logits=False, folds=None):
    """Run ``x`` through ``layers``; with ``logits`` the last layer skips its softmax.

    At inference a BatchNormalization after a Conv2D/Dense runs folded into it (folding.py):
    ``folds`` are the pairs' first indices as a plan found them (``None``: found here).
    """
    if not training and folding.enabled:
        if folds is None:
            folds = folding.stack_plan(layers, logits)
        if folds:
            return folding.stack_forward(layers, x, logits, folds)
    for layer in layers[:-1]:
        x = layer.call(x, training=training)
    last = layers[-1]
    return last.call_logits(x, training=training) if logits else last.call(x, training=training)


def backward(layers, dout, stop, logits=False, relu_pool=None):
    """Backpropagate ``dout`` from the last layer down to layer ``stop`` (the first with weights).

    A ReLU layer followed by max pooling (the lesson's ``Conv2D(activation='relu')`` then
    ``MaxPooling2D``) skips the ReLU's own backward pass: see :func:`_relu_before_max_pool`.
    ``relu_pool``: the pooling layers' indices where a plan found that pair (``None``: asked here).
    """
    last = len(layers) - 1
    d = dout
    i = last
    while i >= stop:
        layer = layers[i]
        if getattr(layer, "activity_regularizer", None) is not None:
            d = d + layer.activity_gradient()  # the penalty on this layer's output joins the loss
        if i == last and logits:
            d = layer.backward_logits(d)
        elif (
            i - 1 >= stop
            and i != last
            and (i in relu_pool if relu_pool is not None else _relu_before_max_pool(layers[i - 1], layer))
        ):
            # the pooled gradient masked where the pooled output is not positive, then the
            # layer below without its ReLU backward
            d = layers[i - 1].backward_logits(layer.backward(relu_backward_f("relu", d, layer.last_output)))
            i -= 1
        else:
            d = layer.backward(d)
        i -= 1


def _relu_before_max_pool(below, pool, checked=True) -> bool:
    """Whether ``below`` is a layer with a ReLU activation whose output went straight into the max
    pooling layer ``pool``: then its ReLU backward (a pass over its whole output) can be applied
    to the pooled gradient instead, a quarter of the size for 2x2 windows.

    Exact: a max pool sends each window's gradient to the window's (first) maximum, and a ReLU
    passes a gradient where its output is positive; the maximum of a window of ReLU outputs is
    positive exactly where the output at the maximum's position is. So masking the gradient of
    each window by ``pooled > 0`` gives every input position the same sum of the same terms.
    Not taken with an activity regularizer on ``below`` (its gradient joins at the ReLU's
    output) or with either layer's backward replaced by a subclass. ``checked``: also require
    that the pool has run (a plan asks before any batch, for a pair run in that order).
    """
    from ..layers.base_activated import ActivatedLayer
    from ..layers.pooling import MaxPooling2D

    return (
        isinstance(below, ActivatedLayer)
        and below.activation == "relu"
        and _builtin_backward(type(below))
        and hasattr(below, "backward_logits")
        and getattr(below, "activity_regularizer", None) is None
        and type(pool) is MaxPooling2D
        and (not checked or pool.last_output is not None)
    )


def _builtin_backward(cls) -> bool:
    """``cls``'s backward is convolab's own (a user's subclass may replace it, or bring a
    ``convolution_op`` that makes the layer differentiate through the tape instead)."""
    owner = next(c for c in cls.__mro__ if "backward" in c.__dict__)
    return owner.__module__.startswith("convolab.") and cls.has_backward()


def activity_penalty(layers) -> float:
    """The sum of the layers' activity penalties on their last forward outputs."""
    return sum(layer.activity_penalty() for layer in layers if getattr(layer, "activity_regularizer", None))


def weight_penalty(layers) -> float:
    """The sum of the weight regularizers' penalties (Keras's regularization losses)."""
    return sum(reg(layer.params[key]) for layer in layers for key, reg in layer.weight_regularizers())


def add_weight_penalty_grads(layers) -> None:
    """Add each penalty's gradient to its weight's gradient (new arrays: a grad may be a view)."""
    for layer in layers:
        for key, reg in layer.weight_regularizers():
            layer.grads[key] = layer.grads[key] + reg.gradient(layer.params[key])


def apply_constraints(layers) -> None:
    """Project the constrained weights after an optimizer step (Keras applies them in ``apply``).

    The stack engine's layers are built-in ones, with no sublayers: a layer without constraints
    is skipped at the cost of one dict check (the recursive walk cost 90 us a step on the
    one-conv model, 5% of its epoch).
    """
    for layer in layers:
        if layer._constraints:
            layer.apply_constraints()


def metric_output(out, fused):
    """What metrics see: probabilities, also when training ran on fused logits."""
    return softmax(out) if fused else out


def loss_and_grad(layers, loss, x, y, training, fused, sample_weight=None):
    """``(output, loss, d loss / d output)``; output and gradient are logits when ``fused``.

    The loss is ``sum(w_i * loss_i) / N`` with the per-sample weights ``sample_weight``
    (``None``: the plain mean; then ``compute`` is called without weights, so a user's Loss
    subclass written for unweighted data keeps working).
    """
    out = forward(layers, x, training=training, logits=fused)
    return (out,) + loss_value_and_grad(loss, out, y, fused, sample_weight)


def loss_value_and_grad(loss, out, y, fused, sample_weight=None):
    """``(loss, gradient)`` of ``loss`` on the output ``out`` (logits when ``fused``)."""
    compute = loss.compute_from_logits if fused else loss.compute
    if sample_weight is None:
        return compute(out, y)
    return compute(out, y, sample_weight=sample_weight)
