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


def get(identifier, loss_name: str, output_width) -> Metric:
    """Resolve a metric name for a model with this loss and output width."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str) or identifier.lower() not in VALID:
        raise ValueError(f"Unknown metric {identifier!r}; valid: {', '.join(VALID)}")
    name = identifier.lower()
    if name in _ACCURACY:
        if loss_name == "sparse_categorical_crossentropy":
            fn = sparse_categorical_accuracy_sum
        elif loss_name == "categorical_crossentropy":
            fn = categorical_accuracy_sum
        elif output_width == 1:
            fn = binary_accuracy_sum
        else:
            fn = categorical_accuracy_sum
        return Metric(identifier, fn)
    return Metric(identifier, _NAMED[name])
