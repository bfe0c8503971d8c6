"""Loss objects and functions with Keras's names: by string, class, instance, or Keras's function.

A loss validates targets against the model's output (the errors name the loss, the
expected form and what came), and computes ``(loss, gradient)`` through the pure
functions in :mod:`convolab.nn.losses`, with optional per-sample weights reduced as
Keras 3's ``'sum_over_batch_size'``: ``sum(w_i * loss_i) / N``, or by the loss's ``reduction``:
``'sum'``, ``'mean'`` (the same as the default), ``'mean_with_sample_weight'`` (divided by the
sum of the weights), ``'none'``/``None`` (the weighted per-sample values; trained on their sum,
the gradient TensorFlow takes of a vector).

The functions ``categorical_crossentropy(y_true, y_pred)`` etc. return per-sample values, as
Keras's do; ``compile(loss=keras.losses.mean_squared_error)`` maps each to its class.
"""

from __future__ import annotations

import functools

import numpy as np

from .autodiff import record
from .autodiff.tensor import Tensor, unwrap
from .backend import get_array_module, is_device_array
from .nn import losses as ops
from .nn.kl_divergence import kl_divergence as _kl_divergence
from .nn.kl_divergence import kl_divergence_values as _kl_divergence_values
from .nn.activations import softmax

_REDUCTIONS = ("sum_over_batch_size", "auto", "sum", "mean", "mean_with_sample_weight", "none", None)


def _reduction_factor(reduction, pred, sample_weight):
    """What turns ``sum(w * values) / values.size`` into ``reduction``'s value (one number)."""
    if reduction in ("sum_over_batch_size", "mean"):
        return 1.0
    n = pred.shape[0] if pred.ndim else 1
    size = pred.size // pred.shape[-1] if pred.ndim > 1 else max(n, 1)  # per-sample values: the last axis reduced
    if reduction in ("sum", "none"):
        return float(size)
    # mean_with_sample_weight: the weighted sum over the sum of the weights (broadcast over the
    # values); 0 when the weights sum to 0, as Keras's divide_no_nan
    if sample_weight is None:
        return 1.0
    total = float(get_array_module(sample_weight).sum(sample_weight)) * (size / max(n, 1))
    return size / total if total else 0.0


def _reduced(compute):
    """Wrap a subclass's ``compute``/``compute_from_logits`` (which give ``'sum_over_batch_size'``)
    so that they give the loss's own ``reduction``."""

    @functools.wraps(compute)
    def wrapper(self, pred, y, sample_weight=None):
        out = compute(self, pred, y) if sample_weight is None else compute(self, pred, y, sample_weight=sample_weight)
        f = _reduction_factor(getattr(self, "reduction", "sum_over_batch_size"), pred, sample_weight)
        if f == 1.0:
            return out
        loss, grad = out
        return loss * f, grad * grad.dtype.type(f)

    wrapper._reduced = True
    return wrapper


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Keras's rule: when the ranks differ by exactly one and the longer array's last axis is 1,
    squeeze that axis (or, when the shorter array has rank 1, expand it instead)."""
    r1, r2 = np.ndim(x1), np.ndim(x2)
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and np.shape(x1)[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = np.expand_dims(x2, -1)
        else:
            x1 = np.squeeze(x1, -1)
    if r2 == r1 + 1 and np.shape(x2)[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = np.expand_dims(x1, -1)
        else:
            x2 = np.squeeze(x2, -1)
    return x1, x2


def _float(y):
    return y.astype(np.float64 if y.dtype == np.float64 else np.float32)


def match_targets(name, y, output_shape):
    """Targets of the output's shape, after Keras's ``squeeze_or_expand_to_same_rank``.

    ``(N,)`` targets for an output ``(None, 1)`` become ``(N, 1)``; ``(N, ..., 1)`` targets for an
    output ``(None, ...)`` lose their last axis; anything else must match exactly (Keras would
    broadcast some mismatches silently, e.g. ``(N,)`` labels against ``(N, N)`` outputs).
    """
    want = tuple(output_shape[1:])
    if y.dtype.kind not in "iufb":
        raise TypeError(f"{name} expects numeric targets; got dtype {y.dtype}")
    rank = 1 + len(want)  # the output's rank
    y2 = y
    if y.ndim == rank + 1 and y.shape[-1] == 1:
        y2 = y[..., 0]
    elif y.ndim == rank - 1 and want[-1] == 1:
        y2 = y[..., None]  # Keras expands rank-1 targets, or squeezes the output: the same values
    if tuple(y2.shape[1:]) != want:
        dims = ", ".join(map(str, want))
        hint = ""
        if y.ndim == 1 and len(want) == 1 and want[0] > 1:
            hint = " (these look like class indices: use keras.utils.to_categorical, or a sparse loss)"
        raise ValueError(
            f"{name} expects targets of shape (N, {dims}) for a model whose output is (None, {dims}) "
            f"(or a shape Keras squeezes or expands to it by one trailing axis of 1); got shape {y.shape}{hint}"
        )
    return _float(y2)


class Loss:
    """Base class: ``loss(y_true, y_pred, sample_weight=None)`` returns the reduced loss as a float.

    A subclass implements ``compute(pred, y, sample_weight=None) -> (loss, d loss / d pred)`` on
    targets already passed through ``prepare_targets`` (by default: numeric, the output's shape
    after Keras's squeeze-or-expand rule), and may implement ``call(y_true, y_pred)`` returning
    the per-sample losses as Keras's ``Loss.call`` does.
    """

    name = "loss"
    #: True when a final softmax and this loss can be fused into one stable op on the logits.
    fuses_softmax = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for key in ("compute", "compute_from_logits"):
            fn = cls.__dict__.get(key)
            if fn is not None and not getattr(fn, "_reduced", False):
                setattr(cls, key, _reduced(fn))

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: `reduction` must be one of 'sum_over_batch_size', 'sum', "
                f"'mean', 'mean_with_sample_weight', 'none' or None; got {reduction!r}"
            )
        self.reduction = {"auto": "sum_over_batch_size", None: "none"}.get(reduction, reduction)
        if name is not None:
            self.name = name

    def prepare_targets(self, y, output_shape):
        """Validate and convert targets ``y`` for a model whose output is ``(N, *output_shape[1:])``."""
        return match_targets(self.name, y, output_shape)

    def compute(self, pred, y, sample_weight=None):
        """``(loss, d loss / d pred)``: ``sum(w_i * loss_i) / N``, ``w`` all ones when ``None``."""
        raise NotImplementedError

    def compute_from_logits(self, logits, y, sample_weight=None):
        """``(loss, d loss / d logits)`` for softmax(logits); only when ``fuses_softmax``."""
        raise NotImplementedError

    def values(self, pred, y):
        """Per-sample losses on prepared targets (Keras's unreduced values)."""
        raise NotImplementedError(f"{type(self).__name__} does not give per-sample values")

    def has_gradient(self) -> bool:
        """True for losses with a hand-written gradient (``compute``); a subclass that only
        defines ``call(y_true, y_pred)`` with ``keras.ops`` is differentiated on the tape."""
        return type(self).compute is not Loss.compute

    def call(self, y_true, y_pred):
        """Per-sample losses, as Keras's ``Loss.call``: a custom loss overrides it (written with
        ``keras.ops``); a built-in one computes them from :meth:`values` (recorded when ``y_pred``
        is a tape tensor, so ``keras.losses.mean_squared_error(y, model(x))`` has its gradient)."""
        if type(self).values is Loss.values:
            raise NotImplementedError(f"{type(self).__name__}: define call(y_true, y_pred)")
        pred = _as_prediction(_untaped(y_pred))
        y = self.prepare_targets(_like(pred, _untaped(y_true)), (None,) + pred.shape[1:])
        if _is_tape_tensor(y_pred):
            return self._recorded_values(y_pred, pred, y, None)
        return self.values(pred, y)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if not self.has_gradient():
            return self._call_on_tape(y_true, y_pred, sample_weight)
        pred = _as_prediction(_untaped(y_pred))
        y = self.prepare_targets(_like(pred, _untaped(y_true)), (None,) + pred.shape[1:])
        w = None if sample_weight is None else check_sample_weight(sample_weight, len(pred), self.name)
        if _is_tape_tensor(y_pred):  # inside a GradientTape: a tape tensor whose gradient flows
            if self.reduction == "none":
                return self._recorded_values(y_pred, pred, y, w)
            return self.recorded(y_pred, y, w)
        if self.reduction == "none":  # Keras's unreduced, weighted per-sample values
            values = self.values(pred, y)
            if w is None:
                return values
            return values * get_array_module(values).asarray(w, dtype=values.dtype).reshape(
                (-1,) + (1,) * (values.ndim - 1)
            )
        if w is None:
            return self.compute(pred, y)[0]
        return self.compute(pred, y, sample_weight=w)[0]

    def recorded(self, y_pred, y, sample_weight=None):
        """The reduced loss as one recorded op: its hand-written gradient replays on the tape.

        ``y`` has been through :meth:`prepare_targets`. When ``y_pred`` is a final softmax that
        kept its logits (``_keras_logits``) and this loss fuses with it, the loss is computed
        from the logits, as Keras and the Sequential engine do (stable where log(p) underflows).
        Outside a tape (or on a plain array) the value comes back as an array.
        """
        logits = getattr(y_pred, "_keras_logits", None)
        if self.fuses_softmax and logits is not None:
            z = unwrap(logits)
            value, dz = (
                self.compute_from_logits(z, y)
                if sample_weight is None
                else self.compute_from_logits(z, y, sample_weight=sample_weight)
            )
            value = get_array_module(z).asarray(value, dtype=z.dtype)  # lives where the logits do
            return record(value, (logits,), lambda g: (g * dz,), self.name)
        pred = _as_prediction(unwrap(y_pred))
        value, dpred = (
            self.compute(pred, y) if sample_weight is None else self.compute(pred, y, sample_weight=sample_weight)
        )
        value = get_array_module(pred).asarray(value, dtype=pred.dtype)
        return record(value, (y_pred,), lambda g: (g * dpred,), self.name)

    def _recorded_values(self, y_pred, pred, y, sample_weight):
        """The (weighted) per-sample values as one recorded op.

        Each value depends on its own sample's predictions alone (the last axis is reduced), so
        the gradient of ``sum(g * values)`` is ``g`` (broadcast over the reduced axis) times
        ``values.size`` times the gradient of the mean loss, which ``compute`` gives.
        """
        values = self.values(pred, y)
        base = type(self).compute
        base = getattr(base, "__wrapped__", base)  # the 'sum_over_batch_size' gradient, whatever the reduction
        _, dmean = base(self, pred, y) if sample_weight is None else base(self, pred, y, sample_weight=sample_weight)
        xp = get_array_module(values)
        if sample_weight is not None:
            values = values * xp.asarray(sample_weight, dtype=values.dtype).reshape((-1,) + (1,) * (values.ndim - 1))
        scale = dmean.dtype.type(values.size)

        def backward(g):
            g = xp.asarray(g, dtype=dmean.dtype).reshape(g.shape + (1,) * (dmean.ndim - g.ndim))
            return (g * scale * dmean,)

        return record(values, (y_pred,), backward, self.name)

    def _call_on_tape(self, y_true, y_pred, sample_weight):
        """A ``call``-only loss, recorded op by op: ``sum(w_i * loss_i) / N`` as the built-ins."""
        from .autodiff import functions as ops
        from .autodiff.tensor import unwrap

        values = self.call(y_true, y_pred)
        shape = np.shape(unwrap(values))
        if sample_weight is not None:
            w = check_sample_weight(sample_weight, shape[0], self.name).reshape((-1,) + (1,) * (len(shape) - 1))
            values = ops.multiply(values, w)
        if self.reduction == "none":
            return values
        total = ops.sum(values)
        if self.reduction == "sum":
            return total
        divisor = float(np.prod(shape))
        if self.reduction == "mean_with_sample_weight" and sample_weight is not None:
            divisor = float(np.sum(w)) * divisor / max(shape[0], 1)
            if not divisor:
                return ops.multiply(total, 0.0)
        return ops.divide(total, divisor)

    def get_config(self):
        return self._with_reduction({"name": self.name})

    @classmethod
    def from_config(cls, config):
        """``cls(**config)``: a loss from its :meth:`get_config` (Keras's ``Loss.from_config``)."""
        return cls(**config)

    def _with_reduction(self, cfg):
        """``cfg`` with ``reduction`` when it is not the default (files stay as they were otherwise)."""
        if getattr(self, "reduction", "sum_over_batch_size") != "sum_over_batch_size":
            cfg["reduction"] = self.reduction
        return cfg


def _like(y_pred, y_true):
    """``y_true`` as an array where ``y_pred`` lives (host or GPU)."""
    return get_array_module(y_pred).asarray(y_true)


def _is_tape_tensor(x):
    return isinstance(x, Tensor)


def _untaped(x):
    """The array inside a tape tensor (targets get no gradient, as Keras's losses treat them)."""
    return unwrap(x)


def _as_prediction(y_pred):
    y_pred = y_pred if is_device_array(y_pred) else np.asarray(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(np.float32)
    return y_pred


def check_sample_weight(sample_weight, n, who):
    """Per-sample weights as a float64 ``(n,)`` array; ``(n, 1)`` is accepted, as Keras squeezes it."""
    w = np.asarray(sample_weight)
    if w.dtype == object or w.dtype.kind not in "biuf":
        raise TypeError(f"{who}: `sample_weight` must be a numeric array of shape ({n},); got dtype {w.dtype}")
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(f"{who}: `sample_weight` must have shape ({n},) (one weight per sample); got shape {w.shape}")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{who}: `sample_weight` must be finite; got {w[~np.isfinite(w)][:5].tolist()}")
    return w


def _check_probability_output(loss, output_shape):
    if len(output_shape) != 2:
        raise ValueError(
            f"{loss}: expects model output of shape (batch, classes); the model outputs (None, "
            f"{', '.join(str(d) for d in output_shape[1:])}). Add Flatten() and Dense(classes)"
        )


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer class labels ``(N,)`` or ``(N, 1)``.

    Args:
        from_logits: the model outputs unnormalised scores (no final softmax).
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, ignore_class=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if ignore_class is not None:
            raise ValueError("SparseCategoricalCrossentropy: ignore_class is not supported")
        self.from_logits = bool(from_logits)
        self.fuses_softmax = not self.from_logits

    def prepare_targets(self, y, output_shape):
        _check_probability_output(self.name, output_shape)
        k = output_shape[-1]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            hint = " (these look one-hot: use 'categorical_crossentropy')" if y.ndim == 2 and y.shape[1] == k else ""
            raise ValueError(
                f"{self.name} expects integer class labels of shape (N,) or (N, 1); got shape {y.shape}{hint}"
            )
        if y.dtype.kind not in "iuf" and y.dtype.kind != "b":
            raise TypeError(f"{self.name} expects integer class labels; got dtype {y.dtype}")
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                bad = y[~np.isfinite(y) | (y != np.round(y))][:5]
                raise ValueError(
                    f"{self.name} expects integer class labels; got non-integer values such as {bad.tolist()}"
                )
        yi = y.astype(np.intp)
        if yi.size and (yi.min() < 0 or yi.max() >= k):
            raise ValueError(
                f"{self.name}: labels must be in [0, {k - 1}] for a model with {k} outputs; "
                f"got labels from {int(yi.min())} to {int(yi.max())}"
            )
        return yi

    def values(self, pred, y):
        if self.from_logits:
            return ops.softmax_crossentropy_values(pred, y, sparse=True)[0]
        return ops.sparse_categorical_crossentropy_values(pred, y)[0]

    def compute(self, pred, y, sample_weight=None):
        if self.from_logits:
            return ops.softmax_crossentropy_with_logits(pred, y, sparse=True, sample_weight=sample_weight)
        return ops.sparse_categorical_crossentropy(pred, y, sample_weight)

    def compute_from_logits(self, logits, y, sample_weight=None):
        return ops.softmax_crossentropy_with_logits(logits, y, sparse=True, sample_weight=sample_weight)

    def get_config(self):
        return self._with_reduction({"name": self.name, "from_logits": self.from_logits})


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot (or probability) targets ``(N, K)``."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if label_smoothing:
            raise ValueError("CategoricalCrossentropy: label_smoothing is not supported")
        self.from_logits = bool(from_logits)
        self.fuses_softmax = not self.from_logits

    def prepare_targets(self, y, output_shape):
        _check_probability_output(self.name, output_shape)
        k = output_shape[-1]
        if y.ndim != 2 or y.shape[1] != k:
            hint = (
                " (these look like class indices: use 'sparse_categorical_crossentropy' or keras.utils.to_categorical)"
                if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)
                else ""
            )
            raise ValueError(
                f"{self.name} expects one-hot targets of shape (N, {k}) for a model with {k} outputs; "
                f"got shape {y.shape}{hint}"
            )
        if y.dtype.kind not in "iufb":
            raise TypeError(f"{self.name} expects numeric one-hot targets; got dtype {y.dtype}")
        return _float(y)

    def values(self, pred, y):
        if self.from_logits:
            return ops.softmax_crossentropy_values(pred, y.astype(pred.dtype), sparse=False)[0]
        return ops.categorical_crossentropy_values(pred, y.astype(pred.dtype))[0]

    def compute(self, pred, y, sample_weight=None):
        if self.from_logits:
            return ops.softmax_crossentropy_with_logits(
                pred, y.astype(pred.dtype), sparse=False, sample_weight=sample_weight
            )
        return ops.categorical_crossentropy(pred, y.astype(pred.dtype), sample_weight)

    def compute_from_logits(self, logits, y, sample_weight=None):
        return ops.softmax_crossentropy_with_logits(
            logits, y.astype(logits.dtype), sparse=False, sample_weight=sample_weight
        )

    def get_config(self):
        return self._with_reduction({"name": self.name, "from_logits": self.from_logits})


class BinaryCrossentropy(Loss):
    """Binary cross-entropy: targets in [0, 1] of the output's shape, the mean over the last axis.

    Args:
        from_logits: the model outputs logits (no final sigmoid); computed stably from them.
        label_smoothing: targets become ``t * (1 - label_smoothing) + 0.5 * label_smoothing``.
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if axis != -1:
            raise ValueError(f"BinaryCrossentropy: only axis=-1 is supported; got axis={axis!r}")
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, (int, float))
            or not 0.0 <= label_smoothing <= 1.0
        ):
            raise ValueError(f"BinaryCrossentropy: label_smoothing must be a float in [0, 1]; got {label_smoothing!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def _targets(self, pred, y):
        t = y.astype(pred.dtype)
        if self.label_smoothing:
            t = t * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return t

    def values(self, pred, y):
        fn = ops.sigmoid_binary_crossentropy_values if self.from_logits else ops.binary_crossentropy_values
        return fn(pred, self._targets(pred, y))[0]

    def compute(self, pred, y, sample_weight=None):
        fn = ops.sigmoid_binary_crossentropy_with_logits if self.from_logits else ops.binary_crossentropy
        return fn(pred, self._targets(pred, y), sample_weight)

    def get_config(self):
        return self._with_reduction(
            {"name": self.name, "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}
        )


class MeanSquaredError(Loss):
    """Mean of squared differences over the last axis; targets have the output's shape."""

    name = "mean_squared_error"

    def values(self, pred, y):
        return ops.mean_squared_error_values(pred, y.astype(pred.dtype))[0]

    def compute(self, pred, y, sample_weight=None):
        return ops.mean_squared_error(pred, y.astype(pred.dtype), sample_weight)


class MeanAbsoluteError(Loss):
    """Mean of absolute differences over the last axis; targets have the output's shape."""

    name = "mean_absolute_error"

    def values(self, pred, y):
        return ops.mean_absolute_error_values(pred, y.astype(pred.dtype))[0]

    def compute(self, pred, y, sample_weight=None):
        return ops.mean_absolute_error(pred, y.astype(pred.dtype), sample_weight)


class KLDivergence(Loss):
    """Kullback-Leibler divergence, Keras's formula: ``sum(t * log(t / p), axis=-1)`` with ``t`` and ``p``
    clipped to ``[epsilon, 1]`` (``epsilon = 1e-7``); targets have the output's shape."""

    name = "kl_divergence"

    def values(self, pred, y):
        return _kl_divergence_values(pred, y.astype(pred.dtype))[0]

    def compute(self, pred, y, sample_weight=None):
        return _kl_divergence(pred, y.astype(pred.dtype), sample_weight)


# -- Keras's loss functions: per-sample values ------------------------------------------
def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Per-sample cross-entropy of ``y_pred`` ``(N, K)`` against integer labels; shape ``(N,)``."""
    _check_axis("sparse_categorical_crossentropy", axis)
    return SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=ignore_class).call(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample cross-entropy of ``y_pred`` ``(N, K)`` against one-hot targets; shape ``(N,)``."""
    _check_axis("categorical_crossentropy", axis)
    return CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing).call(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample binary cross-entropy, the mean over the last axis."""
    return BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing, axis=axis).call(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Per-sample ``mean((y_true - y_pred) ** 2, axis=-1)``."""
    return MeanSquaredError().call(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """Per-sample ``mean(|y_true - y_pred|, axis=-1)``."""
    return MeanAbsoluteError().call(y_true, y_pred)


def kl_divergence(y_true, y_pred):
    """Per-sample ``sum(t * log(t / p), axis=-1)``, ``t``, ``p`` clipped to ``[1e-7, 1]``."""
    return KLDivergence().call(y_true, y_pred)


def _check_axis(name, axis):
    if axis != -1:
        raise ValueError(f"{name}: only axis=-1 is supported; got axis={axis!r}")


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
kld = KLD = kullback_leibler_divergence = kl_divergence

_REGISTRY = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
}

#: Keras's loss functions, passed as objects to compile(loss=...), and the class each means
_FUNCTIONS = {
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    kl_divergence: KLDivergence,
}


class LossFunctionWrapper(Loss):
    """A loss from any function ``f(y_true, y_pred)`` returning per-sample losses (Keras's name).

    Written with ``keras.ops``, it is differentiated on the tape; no gradient to write.
    """

    def __init__(self, fn, name=None, reduction="sum_over_batch_size"):
        super().__init__(name=name or getattr(fn, "__name__", type(fn).__name__), reduction=reduction)
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)

    def get_config(self):
        return {"name": self.name}


def get(identifier) -> Loss:
    """A :class:`Loss` from a name, a class, an instance or one of Keras's loss functions."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()]()
    if callable(identifier) and not isinstance(identifier, type):
        cls = _FUNCTIONS.get(identifier)
        if cls is not None:
            return cls()
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Unknown loss {identifier!r}; valid: {', '.join(_REGISTRY)} or a convolab.losses.Loss")


__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "KLD",
    "KLDivergence",
    "Loss",
    "kl_divergence",
    "kld",
    "kullback_leibler_divergence",
    "LossFunctionWrapper",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "categorical_crossentropy",
    "get",
    "mae",
    "mean_absolute_error",
    "mean_squared_error",
    "mse",
    "softmax",
    "sparse_categorical_crossentropy",
    "squeeze_or_expand_to_same_rank",
]
