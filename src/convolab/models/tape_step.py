"""One training step on the tape, for any model: forward, loss, gradients, optimizer step.

A chain of built-in layers runs on the stack engine (``plan.py``, ``stack_step.py``); everything
else (graphs with branches, subclassed models, user layers, custom losses, ``run_eagerly=True``)
trains here, called by the runner (``runner.py``): the forward pass runs under a :class:`~convolab.autodiff.GradientTape`, the loss is one
more recorded op, and the tape replays every op's hand-written backward.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

from ..autodiff import GradientTape
from ..backend import get_array_module
from ..autodiff import functions as ops
from ..autodiff.tensor import Tensor, unwrap


def loss_on_tape(loss, y_true, y_pred, sample_weight=None):
    """The mean loss as a recorded scalar.

    A built-in loss computes ``(value, d value / d pred)`` with its own hand-written
    gradient (one recorded op, :meth:`~convolab.losses.Loss.recorded`); any other callable
    ``f(y_true, y_pred)`` (a ``Loss`` subclass's ``call``, a plain function) is written with
    ``keras.ops`` and recorded op by op, per-sample values averaged over the batch as Keras's
    ``sum_over_batch_size`` does.
    """
    from .. import losses as losses_mod

    if isinstance(loss, losses_mod.Loss) and loss.has_gradient():
        return loss.recorded(y_pred, y_true, sample_weight)
    pred = unwrap(y_pred)
    fn = loss.call if isinstance(loss, losses_mod.Loss) else loss
    per_sample = fn(y_true, y_pred)
    if sample_weight is not None:
        w = (
            get_array_module(pred)
            .asarray(sample_weight, dtype=pred.dtype)
            .reshape((-1,) + (1,) * (np.ndim(unwrap(per_sample)) - 1))
        )
        return ops.divide(ops.sum(ops.multiply(per_sample, w)), float(np.size(unwrap(per_sample))))
    return ops.mean(per_sample)


def compiled_loss(model, y, y_pred, sample_weight=None):
    """``(total, per-output values)``: the losses given to ``compile`` (``sum(w_i * loss_i)``
    over the outputs), recorded; ``(None, None)`` when ``compile`` was given no loss."""
    from .multi_output import OutputLosses

    if model.loss is None:
        return None, None
    if isinstance(y_pred, dict):  # dict outputs (a train_step of the user's own): in output order
        y_pred = [y_pred[n] for n in model.output_names]
        y = [y[n] for n in model.output_names] if isinstance(y, dict) else y
    if not isinstance(model.loss, OutputLosses):
        return loss_on_tape(model.loss, y, y_pred, sample_weight), None
    terms = [
        None if l is None else loss_on_tape(l, t, o, sample_weight) for l, t, o in zip(model.loss.losses, y, y_pred)
    ]
    total = None
    for w, t in zip(model.loss.weights, terms):
        if t is not None:
            t = ops.multiply(t, w) if w != 1.0 else t
            total = t if total is None else ops.add(total, t)
    return total, [None if t is None else float(unwrap(t)) for t in terms]


def default_compute_loss(model, y, y_pred, sample_weight=None):
    """Keras 3's ``Model.compute_loss``: the compiled loss plus ``model.losses`` (``add_loss`` in
    ``call``, weight penalties). Returns ``(total, per-output values or None)``."""
    total, per_output = compiled_loss(model, y, y_pred, sample_weight)
    for extra in model.losses:
        total = extra if total is None else ops.add(total, extra)
    if total is None:
        raise ValueError(
            f"{model.describe()}: no loss to compute: compile() was given no `loss`, the model "
            "added none with self.add_loss(...) in call(), and it does not override "
            "compute_loss(x, y, y_pred, sample_weight). Pass loss=... to compile()"
        )
    return total, per_output


def default_hook(fn):
    """Mark one of the Trainer's own ``compute_loss``/``train_step``/``test_step``: a model whose
    class replaces it gets its own called instead (see :func:`overrides`)."""
    fn._trainer_default = True
    return fn


def overrides(model, name):
    """True when the model's class replaces the Trainer's ``name`` (``compute_loss``, ``train_step``...)."""
    return not getattr(getattr(type(model), name, None), "_trainer_default", False)


def _accepts_training(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "training" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def model_loss(model, x, y, y_pred, sample_weight=None, training=True):
    """The loss of one batch: the model's own ``compute_loss`` when its class overrides it (Keras 3's
    signature ``compute_loss(x, y, y_pred, sample_weight[, training])``), else the compiled loss plus
    ``model.losses``. Returns ``(total, per-output values or None)``."""
    if not overrides(model, "compute_loss"):
        return default_compute_loss(model, y, y_pred, sample_weight)
    if isinstance(y_pred, list) and isinstance(getattr(model, "output", None), dict):
        y_pred = dict(zip(model.output_names, y_pred))  # the user's compute_loss sees the dict, as in Keras
    kwargs = {"x": x, "y": y, "y_pred": y_pred, "sample_weight": sample_weight}
    if _accepts_training(model.compute_loss):
        kwargs["training"] = training
    total = model.compute_loss(**kwargs)
    if total is None:
        raise ValueError(
            f"{model.describe()}.compute_loss returned None; it must return the loss (a scalar computed with keras.ops)"
        )
    return total, None


def loss_value(loss, y_true, y_pred, sample_weight=None):
    """The mean loss as a float, outside any tape (evaluation)."""
    return float(unwrap(loss_on_tape(loss, y_true, y_pred, sample_weight)))


def _warned(model, names):
    seen = model.__dict__.setdefault("_warned_no_gradient", set())
    new = [n for n in names if n not in seen]
    seen.update(new)
    return new


def tape_train_step(model, x, y, sample_weight=None):
    """One optimizer step on one batch; returns ``(output, loss float, per-output losses or None)``.

    ``y`` has been through ``loss.prepare_targets`` (or is as given, when ``compile`` had no
    loss). A trainable weight the loss does not depend on gets no update and a warning naming
    it, as Keras warns; a model with no trainable weight reports its loss and updates nothing.
    """
    variables = model.trainable_variables
    with GradientTape() as tape:
        out = model(x, training=True)
        total, per_output = model_loss(model, x, y, out, sample_weight, training=True)
    value = float(np.sum(unwrap(total)))  # a loss with reduction='none' is trained on its sum
    out = [unwrap(o) for o in out] if isinstance(out, (list, tuple)) else unwrap(out)
    if not np.isfinite(value) or not variables:
        return out, value, per_output
    if not isinstance(total, Tensor):
        raise ValueError(
            f"{model.describe()}: the loss does not depend on any trainable weight "
            "(was the output computed with NumPy instead of keras.ops?)"
        )
    if np.ndim(unwrap(total)):
        total = ops.sum(total)
    grads = tape.gradient(total, variables)
    missing = [v.path for v, g in zip(variables, grads) if g is None]
    if missing and _warned(model, missing):
        warnings.warn(
            f"{model.describe()}: gradients do not exist for {', '.join(missing)}; they are not "
            "updated (a layer computed with NumPy functions instead of keras.ops loses its gradient)",
            UserWarning,
            stacklevel=3,
        )
    pairs = [(v.value, g) for v, g in zip(variables, grads) if g is not None]
    if pairs:
        model.optimizer.apply([g.astype(p.dtype, copy=False) for p, g in pairs], [p for p, _ in pairs])
        model.apply_constraints()
    return out, value, per_output
