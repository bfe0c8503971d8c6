"""One training step on the tape, for any model: forward, loss, gradients, optimizer step.

Sequential models of built-in layers keep their own fused fast path (``models/stack_step.py``);
everything else (functional graphs, subclassed models, user layers, custom losses) trains
here: the forward pass runs under a :class:`~convolab.autodiff.GradientTape`, the loss is one
more recorded op, and the tape replays every op's hand-written backward.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..autodiff import GradientTape, record
from ..backend import get_array_module
from ..autodiff import functions as ops
from ..autodiff.tensor import Tensor, unwrap


def loss_on_tape(loss, y_true, y_pred, sample_weight=None):
    """The mean loss as a recorded scalar.

    A built-in loss computes ``(value, d value / d pred)`` with its own hand-written
    gradient (one recorded op); any other callable ``f(y_true, y_pred)`` (a ``Loss``
    subclass's ``call``, a plain function) is written with ``keras.ops`` and recorded op by op,
    per-sample values averaged over the batch as Keras's ``sum_over_batch_size`` does.
    """
    from .. import losses as losses_mod

    pred = unwrap(y_pred)
    logits = getattr(y_pred, "_keras_logits", None)
    if isinstance(loss, losses_mod.Loss) and loss.fuses_softmax and logits is not None:
        # softmax + cross-entropy as one op on the logits (Keras's fusion; Sequential's too)
        z = unwrap(logits)
        if sample_weight is not None:
            value, dz = loss.compute_from_logits(z, y_true, sample_weight=sample_weight)
        else:
            value, dz = loss.compute_from_logits(z, y_true)
        # the value lives where the logits do, so its seed gradient (ones) does too
        return record(get_array_module(z).asarray(value, dtype=z.dtype), (logits,), lambda g: (g * dz,), getattr(loss, "name", "loss"))
    if isinstance(loss, losses_mod.Loss) and loss.has_gradient():
        if sample_weight is not None:
            value, dpred = loss.compute(pred, y_true, sample_weight=sample_weight)
        else:
            value, dpred = loss.compute(pred, y_true)
        value = get_array_module(pred).asarray(value, dtype=pred.dtype)
        return record(value, (y_pred,), lambda g: (g * dpred,), getattr(loss, "name", "loss"))
    fn = loss.call if isinstance(loss, losses_mod.Loss) else loss
    per_sample = fn(y_true, y_pred)
    if sample_weight is not None:
        w = get_array_module(pred).asarray(sample_weight, dtype=pred.dtype).reshape((-1,) + (1,) * (np.ndim(unwrap(per_sample)) - 1))
        return ops.divide(ops.sum(ops.multiply(per_sample, w)), float(np.size(unwrap(per_sample))))
    return ops.mean(per_sample)


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

    ``y`` has been through ``loss.prepare_targets``. A trainable weight the loss does not
    depend on gets no update and a warning naming it, as Keras warns.
    """
    from .multi_output import OutputLosses

    variables = model.trainable_variables
    per_output = None
    with GradientTape() as tape:
        out = model(x, training=True)
        if isinstance(model.loss, OutputLosses):  # sum(w_i * loss_i) over the outputs
            terms = [None if l is None else loss_on_tape(l, t, o, sample_weight)
                     for l, t, o in zip(model.loss.losses, y, out)]
            per_output = [None if t is None else float(unwrap(t)) for t in terms]
            total = None
            for w, t in zip(model.loss.weights, terms):
                if t is not None:
                    t = ops.multiply(t, w) if w != 1.0 else t
                    total = t if total is None else ops.add(total, t)
        else:
            total = loss_on_tape(model.loss, y, out, sample_weight)
        for extra in model.losses:
            total = ops.add(total, extra)
    value = float(unwrap(total))
    out = [unwrap(o) for o in out] if isinstance(out, (list, tuple)) else unwrap(out)
    if not np.isfinite(value):
        return out, value, per_output
    if not isinstance(total, Tensor):
        raise ValueError(f"{model.describe()}: the loss does not depend on any trainable weight "
                         "(was the output computed with NumPy instead of keras.ops?)")
    grads = tape.gradient(total, variables)
    missing = [v.path for v, g in zip(variables, grads) if g is None]
    if missing and _warned(model, missing):
        warnings.warn(f"{model.describe()}: gradients do not exist for {', '.join(missing)}; they are not "
                      "updated (a layer computed with NumPy functions instead of keras.ops loses its gradient)",
                      UserWarning, stacklevel=3)
    pairs = [(v.value, g) for v, g in zip(variables, grads) if g is not None]
    if pairs:
        model.optimizer.apply([p for p, _ in pairs], [g.astype(p.dtype, copy=False) for p, g in pairs])
        model.apply_constraints()
    return out, value, per_output
