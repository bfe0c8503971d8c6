"""A model compiled for running: one flat plan of steps and the rewrites decided once.

Every model, Sequential or functional, is a graph of layer calls (a Sequential is a chain-shaped
one, as in Keras 3). :func:`compile_plan` reads that graph once per ``fit``/``evaluate``/
``predict`` pass (and once per direct call) and decides everything a batch would otherwise ask
again: which engine runs it, which rewrites apply, whether its batches may be cut into shards.

Engines:

``"stack"``
    The graph is a chain (each layer reads the output of the one before, one input, one output,
    every layer once) and every layer is one of convolab's own with a hand-written ``backward``.
    Training runs each layer's backward in turn (``stack_step.py``), with no tape. A Sequential of
    built-in layers and a functional model written as a chain both run here.
``"tape"``
    Anything else (branches and merges, a user's layer, a nested model, a subclassed model): the
    forward pass is recorded on a :class:`~convolab.autodiff.GradientTape` (``tape_step.py``).

Rewrites, each with its differential test against the layers run one by one:

* ``fused_softmax``: the last layer's softmax and a cross-entropy loss computed as one op from the
  logits (``stack_step.fused_softmax``).
* ``relu_pool``: a ReLU layer feeding max pooling skips its own backward; the pooled gradient is
  masked instead (``stack_step._relu_before_max_pool``).
* ``folds``: a BatchNormalization folded into the Conv2D/DepthwiseConv2D/Dense before it at
  inference (``folding.folds``).
* conv+ReLU: a Conv2D's ReLU is applied inside its kernels' store (the layer's own ``call``).

The plan holds decisions, never per-call state: the caches live in the
:class:`~convolab.models.runner.Runner` that runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import folding, stack_step


@dataclass(frozen=True)
class Plan:
    """What :func:`compile_plan` decided for one model (see the module docstring)."""

    #: ``"stack"`` or ``"tape"``
    engine: str
    #: why the stack engine does not run it (``None`` when it does)
    why_tape: str | None = None
    #: the chain's layers in run order (the stack engine's steps); empty for the tape
    layers: tuple = ()
    #: the graph's input tensor, when a functional model's data must be checked against it
    input_tensor: object = None
    #: training goes on the tape all the same: the loss has no hand-written gradient (a user's
    #: function or ``Loss.call`` written with ``keras.ops``)
    loss_on_tape: bool = False
    #: the last layer's softmax is fused with the cross-entropy in training and evaluation
    fused_softmax: bool = False
    #: indices of max pooling layers whose preceding ReLU layer skips its backward
    relu_pool: frozenset = frozenset()
    #: indices ``i`` where ``layers[i + 1]`` folds into ``layers[i]`` at inference, for a pass
    #: returning probabilities and for one returning logits (the last layer never folds away then)
    folds: tuple = ()
    folds_logits: tuple = ()
    #: the first layer with weights: backward stops there
    first_trainable: int = 0
    #: indices of layers that draw random numbers in training (Dropout, augmentation)
    random_layers: tuple = ()
    #: why a batch may not be cut into shards (``None``: it may, when the work pays)
    why_whole: str | None = None
    #: multiply-adds (x2) of one sample's forward pass (``math.inf`` when the size is unknown)
    flops_per_sample: float = 0.0

    @property
    def stack(self) -> bool:
        return self.engine == "stack"


def graph_chain(model):
    """``(layers, input tensor, why not)``: the layers of the model's graph when it is one chain
    (each layer reads the output of the one before, one input, one output, every layer once),
    else ``(None, None, reason)``. A Sequential's layers are its chain; a subclassed model has no
    graph. Keras's summary asks the same question ("sequential-like", ``summary.py``)."""
    if getattr(model, "_stack_model", False):  # a Sequential: its layers are the chain
        return list(model.layers), None, None
    graph = model.graph() if hasattr(model, "graph") else None
    if graph is None:
        return None, None, "a subclassed model: its call() is Python code"
    nodes, inputs, outputs, _, _ = graph
    if len(inputs) != 1 or len(outputs) != 1:
        return None, None, "several inputs or outputs"
    layers, tensor, x = [], inputs[0], inputs[0]
    for node in nodes:
        if not node.inputs:
            continue  # the Input
        if len(node.inputs) != 1 or node.inputs[0] is not x or len(node.outputs) != 1:
            return None, None, "a graph with branches or merges"
        if node.args or node.kwargs or node.multi:
            return None, None, f"{node.layer.describe()} is called with extra arguments"
        layers.append(node.layer)
        x = node.outputs[0]
    if x is not outputs[0] or not layers:
        return None, None, "a graph that is not one chain"
    if len({id(l) for l in layers}) != len(layers):
        return None, None, "a layer called twice"
    return layers, tensor, None


def chain_layers(model):
    """``(layers, input tensor, why not)``: :func:`graph_chain`, when the stack engine can run
    every layer of it (each one of convolab's own, with a hand-written backward)."""
    layers, tensor, why = graph_chain(model)
    if layers is None:
        return None, None, why
    if not layers:
        return None, None, "no layers"
    custom = next((l for l in layers if not l.has_backward()), None)
    if custom is not None:
        return None, None, f"{custom.describe()} has no hand-written backward"
    return layers, tensor, None


def compile_plan(model) -> Plan:
    """The plan for ``model`` as it is now (its layers, loss and their settings)."""
    if getattr(model, "run_eagerly", False):
        return Plan(engine="tape", why_tape="compile(run_eagerly=True)")
    layers, tensor, why = chain_layers(model)
    if layers is None:
        return Plan(engine="tape", why_tape=why)
    from ..layers.augmentation.base import AugmentationLayer
    from ..layers.dropout import Dropout
    from . import parallel

    fused = stack_step.fused_softmax_layers(layers, model.loss)
    relu_pool = frozenset(
        i for i in range(1, len(layers)) if stack_step._relu_before_max_pool(layers[i - 1], layers[i], checked=False)
    )
    first_trainable = next((i for i, l in enumerate(layers) if l.params), len(layers))
    why_whole = None
    if any(getattr(l, "batch_statistics", False) for l in layers):
        why_whole = "a layer computes statistics over the whole batch"
    elif any(getattr(l, "activity_regularizer", None) for l in layers):
        why_whole = "an activity penalty is taken over the whole batch"
    elif getattr(model.loss, "reduction", "sum_over_batch_size") not in ("sum_over_batch_size", "mean"):
        why_whole = "the loss's reduction does not combine as shard means"
    return Plan(
        engine="stack",
        layers=tuple(layers),
        input_tensor=tensor,
        loss_on_tape=model.loss is not None and not _hand_written(model.loss),
        fused_softmax=fused,
        relu_pool=relu_pool,
        folds=tuple(folding.stack_plan(layers)) if folding.enabled else (),
        folds_logits=tuple(folding.stack_plan(layers, logits=True)) if folding.enabled else (),
        first_trainable=first_trainable,
        random_layers=tuple(i for i, l in enumerate(layers) if isinstance(l, (Dropout, AugmentationLayer))),
        why_whole=why_whole,
        flops_per_sample=parallel.flops_per_sample(layers),
    )


def worth_sharding(model, batch_size, n_threads) -> bool:
    """Shards pay for ``model`` when there are cores for them and each carries enough work.

    Measured on the lesson's models at batch 32 on 2 cores: the two-conv CNN (0.93 MFLOP a
    sample) and LeNet (1.30) ran 3-10% faster on shards, the one-conv CNN (0.36) 14% slower,
    the hand-off costing more than its shard's 5.8 MFLOP; at batch 128 all three ran faster.
    """
    return shards_pay(compile_plan(model), batch_size, n_threads)


def _hand_written(loss) -> bool:
    has = getattr(loss, "has_gradient", None)
    return bool(has and has())


def shards_pay(plan, batch_size, n_threads) -> bool:
    """Whether cutting batches of ``batch_size`` into shards on ``n_threads`` threads pays
    (``parallel.MIN_SHARD_FLOPS`` of work per shard, ``parallel.MIN_SHARD`` samples at least)."""
    from . import parallel

    min_shard = parallel.MIN_SHARD
    if not plan.stack or plan.why_whole is not None or n_threads < 2 or batch_size < 2 * min_shard:
        return False
    per_shard = plan.flops_per_sample * batch_size / min(n_threads, batch_size // min_shard)
    return per_shard >= parallel.MIN_SHARD_FLOPS or math.isinf(per_shard)
