"""What ``compile(metrics=..., weighted_metrics=...)`` accepts, and the per-model metric set.

An entry is a name (``'acc'``, ``'mse'``...: the name stays the key in ``history.history``), a
:class:`~convolab.metrics.Metric` (its ``name``), a Metric class (instantiated), or any callable
``f(y_true, y_pred)`` returning per-sample values or a scalar (named after ``f.__name__`` in
snake case, as Keras's ``get_object_name``).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_host
from .accuracy import (
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
)
from .base import Metric, get_object_name
from .reduction import Mean, MeanMetricWrapper
from .regression import MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError

_ACCURACY = ("acc", "accuracy")
NAMED = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
}
VALID = _ACCURACY + tuple(NAMED)


def accuracy_by_shape(y_true, y_pred):
    """Keras 3's choice when the loss does not decide: targets of lower rank than the predictions,
    or a last axis of 1 against several outputs, are class indices (sparse); else one-hot."""
    xp = get_array_module(y_true, y_pred)
    y_true, y_pred = xp.asarray(y_true), xp.asarray(y_pred)
    if y_true.ndim < y_pred.ndim or (y_true.shape[-1] == 1 and y_pred.shape[-1] > 1):
        return sparse_categorical_accuracy(y_true, y_pred)
    return categorical_accuracy(y_true, y_pred)


def _accuracy_for(loss, output_width, name):
    """The accuracy that fits ``loss`` (an object, never its name) and the output width.

    The loss's type decides first (sparse, one-hot or binary cross-entropy), a single output is
    binary, and otherwise the targets' shape decides at each batch.
    """
    from .. import losses

    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        return SparseCategoricalAccuracy(name=name)
    if isinstance(loss, losses.CategoricalCrossentropy):
        return CategoricalAccuracy(name=name)
    if isinstance(loss, losses.BinaryCrossentropy) or output_width == 1:
        return BinaryAccuracy(name=name)
    return MeanMetricWrapper(accuracy_by_shape, name=name)


def get(identifier, loss=None, output_width=None) -> Metric:
    """Resolve one ``compile(metrics=[...])`` entry for a model compiled with the loss object ``loss``."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in VALID:
        name = identifier.lower()
        if name in _ACCURACY:
            return _accuracy_for(loss, output_width, identifier)
        metric = NAMED[name]()
        metric.name = identifier
        return metric
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier) and not isinstance(identifier, type):
        return MeanMetricWrapper(identifier, name=get_object_name(identifier))
    raise ValueError(
        f"Unknown metric {identifier!r}; valid: {', '.join(VALID)}, a keras.metrics.Metric, or a "
        "function f(y_true, y_pred) returning per-sample values"
    )


def _as_list(metrics, argument):
    if metrics is None:
        return []
    if isinstance(metrics, (list, tuple)):
        return list(metrics)
    if isinstance(metrics, (str, Metric)) or callable(metrics):
        return [metrics]
    raise ValueError(f"compile: `{argument}` must be a list of metrics; got {type(metrics).__name__}")


def check_specs(metrics, argument):
    """The entries of ``metrics`` as a list; unknown names fail now, not at fit time."""
    specs = _as_list(metrics, argument)
    for m in specs:
        get(m)
    return specs


def _unique_names(metrics, weighted):
    """Keras 3's keys: a repeated name gets ``_1``, ``_2``...; a weighted metric whose name is
    taken becomes ``weighted_<name>``."""
    names, seen = [], {}
    for m in metrics:
        name = m.name
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name] - 1}"
        else:
            seen[name] = 1
        names.append(name)
    for m in weighted:
        name = m.name
        if name in seen:
            name = f"weighted_{m.name}"
            if name in seen:
                seen[name] += 1
                name = f"{name}_{seen[name] - 1}"
            else:
                seen[name] = 1
        else:
            seen[name] = 1
        names.append(name)
    return names


def _scalar(value, name):
    try:
        return float(np.asarray(to_host(value), dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(f"metric '{name}': result() must return a scalar; got {value!r}") from None


class CompileMetrics:
    """The loss tracker and the compiled metrics of one model.

    ``update_state`` takes one batch (its mean loss, size, targets, predictions and per-sample
    weights); ``result()`` gives the running values by Keras's names, ``loss`` first. The loss is
    the batch-size-weighted mean of the batch losses; ``metrics`` ignore the sample weights and
    ``weighted_metrics`` use them, as in Keras 3.
    """

    def __init__(self, metrics, weighted_metrics):
        self.loss_tracker = Mean(name="loss")
        self.metrics = list(metrics)
        self.weighted_metrics = list(weighted_metrics)
        self.names = _unique_names(self.metrics, self.weighted_metrics)

    def reset_state(self):
        self.loss_tracker.reset_state()
        for m in self.metrics + self.weighted_metrics:
            m.reset_state()

    def update_state(self, loss, batch_size, y_true, y_pred, sample_weight=None):
        self.loss_tracker.update_state(loss, sample_weight=batch_size)
        for m in self.metrics:
            m.update_state(y_true, y_pred)
        for m in self.weighted_metrics:
            m.update_state(y_true, y_pred, sample_weight=sample_weight)

    def result(self):
        logs = {"loss": self.loss_tracker.result()}
        for name, m in zip(self.names, self.metrics + self.weighted_metrics):
            value = m.result()
            if isinstance(value, dict):  # Keras lets result() return several named values
                logs.update({k: _scalar(v, k) for k, v in value.items()})
            else:
                logs[name] = _scalar(value, name)
        return logs
