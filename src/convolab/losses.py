"""Loss objects with Keras's names: by string (``'sparse_categorical_crossentropy'``) or instance.

A loss validates targets against the model's output (the errors name the loss, the
expected form and what came), and computes ``(mean loss, gradient)`` through the pure
functions in :mod:`convolab.ops.losses`.
"""
from __future__ import annotations

import numpy as np

from .ops.activations import softmax
from .ops.losses import (
    categorical_crossentropy,
    mean_squared_error,
    softmax_crossentropy_with_logits,
    sparse_categorical_crossentropy,
)


class Loss:
    """Base class: ``loss(y_true, y_pred)`` returns the mean loss as a float."""

    name = "loss"
    #: True when a final softmax and this loss can be fused into one stable op on the logits.
    fuses_softmax = False

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction not in ("sum_over_batch_size", "auto"):
            raise ValueError(f"{type(self).__name__}: only reduction='sum_over_batch_size' is supported; got {reduction!r}")
        if name is not None:
            self.name = name

    def prepare_targets(self, y, output_shape):
        """Validate and convert targets ``y`` for a model whose output is ``(N, *output_shape[1:])``."""
        raise NotImplementedError

    def compute(self, pred, y):
        """``(mean loss, d loss / d pred)``."""
        raise NotImplementedError

    def compute_from_logits(self, logits, y):
        """``(mean loss, d loss / d logits)`` for softmax(logits); only when ``fuses_softmax``."""
        raise NotImplementedError

    def has_gradient(self) -> bool:
        """True for losses with a hand-written gradient (``compute``); a subclass that only
        defines ``call(y_true, y_pred)`` with ``keras.ops`` is differentiated on the tape."""
        return type(self).compute is not Loss.compute

    def call(self, y_true, y_pred):
        """Per-sample losses, written with ``keras.ops`` (override in a custom loss)."""
        raise NotImplementedError(f"{type(self).__name__}: define call(y_true, y_pred)")

    def __call__(self, y_true, y_pred, sample_weight=None):
        if not self.has_gradient():
            from .autodiff import functions as ops

            return ops.mean(self.call(y_true, y_pred))
        y_pred = np.asarray(y_pred)
        y = self.prepare_targets(np.asarray(y_true), (None,) + y_pred.shape[1:])
        return self.compute(y_pred, y)[0]

    def get_config(self):
        return {"name": self.name}


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
                raise ValueError(f"{self.name} expects integer class labels; got non-integer values such as {bad.tolist()}")
        yi = y.astype(np.intp)
        if yi.size and (yi.min() < 0 or yi.max() >= k):
            raise ValueError(
                f"{self.name}: labels must be in [0, {k - 1}] for a model with {k} outputs; "
                f"got labels from {int(yi.min())} to {int(yi.max())}"
            )
        return yi

    def compute(self, pred, y):
        if self.from_logits:
            return softmax_crossentropy_with_logits(pred, y, sparse=True)
        return sparse_categorical_crossentropy(pred, y)

    def compute_from_logits(self, logits, y):
        return softmax_crossentropy_with_logits(logits, y, sparse=True)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


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
            hint = " (these look like class indices: use 'sparse_categorical_crossentropy' or keras.utils.to_categorical)" if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1) else ""
            raise ValueError(
                f"{self.name} expects one-hot targets of shape (N, {k}) for a model with {k} outputs; "
                f"got shape {y.shape}{hint}"
            )
        if y.dtype.kind not in "iufb":
            raise TypeError(f"{self.name} expects numeric one-hot targets; got dtype {y.dtype}")
        return y.astype(np.float32 if y.dtype != np.float64 else np.float64)

    def compute(self, pred, y):
        if self.from_logits:
            return softmax_crossentropy_with_logits(pred, y.astype(pred.dtype), sparse=False)
        return categorical_crossentropy(pred, y.astype(pred.dtype))

    def compute_from_logits(self, logits, y):
        return softmax_crossentropy_with_logits(logits, y.astype(logits.dtype), sparse=False)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class MeanSquaredError(Loss):
    """Mean of squared differences over every element; targets have the output's shape."""

    name = "mean_squared_error"

    def prepare_targets(self, y, output_shape):
        want = tuple(output_shape[1:])
        got = tuple(y.shape[1:])
        if got != want and not (want == (1,) and got == ()):
            raise ValueError(f"{self.name} expects targets of shape (N, {', '.join(map(str, want))}); got shape {y.shape}")
        if y.dtype.kind not in "iufb":
            raise TypeError(f"{self.name} expects numeric targets; got dtype {y.dtype}")
        return y.reshape((y.shape[0],) + want).astype(np.float32 if y.dtype != np.float64 else np.float64)

    def compute(self, pred, y):
        return mean_squared_error(pred, y.astype(pred.dtype))


_REGISTRY = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier) -> Loss:
    """A :class:`Loss` from a name, a class or an instance; ``ValueError`` lists the valid names."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()]()
    raise ValueError(f"Unknown loss {identifier!r}; valid: {', '.join(_REGISTRY)} or a convolab.losses.Loss")


def sparse_categorical_crossentropy_fn(y_true, y_pred, from_logits=False):
    return SparseCategoricalCrossentropy(from_logits=from_logits)(y_true, y_pred)


def categorical_crossentropy_fn(y_true, y_pred, from_logits=False):
    return CategoricalCrossentropy(from_logits=from_logits)(y_true, y_pred)


__all__ = ["CategoricalCrossentropy", "Loss", "MeanSquaredError", "SparseCategoricalCrossentropy", "get", "softmax"]
