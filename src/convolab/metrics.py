"""Metrics by Keras's names. A metric returns the *sum* over a batch; the loop divides by the count.

``'acc'`` and ``'accuracy'`` are resolved from the loss and the output width as Keras does,
and keep the spelling the user gave (so ``history.history`` has ``'acc'`` or ``'accuracy'``).
"""
from __future__ import annotations

import numpy as np


def sparse_categorical_accuracy_sum(pred, y):
    return float((pred.argmax(axis=-1) == y).sum())


def categorical_accuracy_sum(pred, y):
    return float((pred.argmax(axis=-1) == y.argmax(axis=-1)).sum())


def binary_accuracy_sum(pred, y, threshold=0.5):
    return float(((pred > threshold) == (y > 0.5)).reshape(len(pred), -1).mean(axis=1).sum())


def mean_absolute_error_sum(pred, y):
    return float(np.abs(pred - y).reshape(len(pred), -1).mean(axis=1).sum())


def mean_squared_error_sum(pred, y):
    return float(((pred - y) ** 2).reshape(len(pred), -1).mean(axis=1).sum())


class Metric:
    """A named batch statistic: ``fn(pred, y) -> sum over the batch``."""

    def __init__(self, name, fn):
        self.name = name
        self.fn = fn

    def __call__(self, pred, y):
        return self.fn(pred, y)

    def __repr__(self):
        return f"<Metric {self.name}>"


_ACCURACY = ("acc", "accuracy")
_NAMED = {
    "sparse_categorical_accuracy": sparse_categorical_accuracy_sum,
    "categorical_accuracy": categorical_accuracy_sum,
    "binary_accuracy": binary_accuracy_sum,
    "mae": mean_absolute_error_sum,
    "mean_absolute_error": mean_absolute_error_sum,
    "mse": mean_squared_error_sum,
    "mean_squared_error": mean_squared_error_sum,
}
VALID = _ACCURACY + tuple(_NAMED)


def accuracy_by_shape_sum(pred, y):
    """Keras 3's choice when the loss does not decide: targets of lower rank than the
    predictions are class indices (sparse), targets of the same rank are one-hot."""
    if y.ndim < pred.ndim:
        return sparse_categorical_accuracy_sum(pred, y)
    return categorical_accuracy_sum(pred, y)


def _accuracy_for(loss, output_width):
    """The accuracy that fits ``loss`` (an object, never its name) and the output width.

    As Keras: the loss's type decides first (sparse or one-hot cross-entropy), a single
    output is binary, and otherwise the targets' shape decides at each batch.
    """
    from . import losses

    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        return sparse_categorical_accuracy_sum
    if isinstance(loss, losses.CategoricalCrossentropy):
        return categorical_accuracy_sum
    if output_width == 1:
        return binary_accuracy_sum
    return accuracy_by_shape_sum


def get(identifier, loss=None, output_width=None) -> Metric:
    """Resolve a metric name for a model compiled with the loss object ``loss``."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str) or identifier.lower() not in VALID:
        raise ValueError(f"Unknown metric {identifier!r}; valid: {', '.join(VALID)}")
    name = identifier.lower()
    if name in _ACCURACY:
        return Metric(identifier, _accuracy_for(loss, output_width))
    return Metric(identifier, _NAMED[name])
