"""Metrics with Keras 3's names, classes and formulas (``keras.metrics``).

Stateful :class:`Metric` objects accumulate over batches (``update_state`` / ``result`` /
``reset_state``); the plain functions (``sparse_categorical_accuracy(y_true, y_pred)``...)
return per-sample values. ``'acc'`` and ``'accuracy'`` are resolved from the loss and the
output width as Keras does, and keep the spelling the user gave (so ``history.history`` has
``'acc'`` or ``'accuracy'``).
"""

from ..losses import (
    binary_crossentropy,
    categorical_crossentropy,
    mean_absolute_error,
    mean_squared_error,
    sparse_categorical_crossentropy,
)
from .accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    in_top_k,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from .base import Metric, Variable, get_object_name
from .compile import VALID, CompileMetrics, check_specs, get
from .reduction import Mean, MeanMetricWrapper, reduce_to_samplewise_values
from .regression import (
    BinaryCrossentropy,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    mean_absolute_percentage_error,
)

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error

#: the metric classes a model file may name (saving's allow-list)
BUILTIN_CLASSES = {
    cls.__name__: cls
    for cls in (
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        BinaryCrossentropy,
    )
}

__all__ = [
    "BinaryCrossentropy",
    "MAPE",
    "MeanAbsolutePercentageError",
    "mape",
    "mean_absolute_percentage_error",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "CompileMetrics",
    "Mean",
    "MeanAbsoluteError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "VALID",
    "Variable",
    "accuracy",
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "check_specs",
    "get",
    "get_object_name",
    "in_top_k",
    "mae",
    "mean_absolute_error",
    "mean_squared_error",
    "mse",
    "reduce_to_samplewise_values",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]
