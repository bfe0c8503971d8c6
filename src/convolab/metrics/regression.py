"""Regression and probabilistic metrics: the mean of Keras's per-sample loss functions."""

from __future__ import annotations

import numpy as np

from ..backend import epsilon, get_array_module
from ..losses import binary_crossentropy, mean_absolute_error, mean_squared_error, squeeze_or_expand_to_same_rank
from .reduction import MeanMetricWrapper


class MeanSquaredError(MeanMetricWrapper):
    """The mean of ``mean((y_true - y_pred) ** 2, axis=-1)``."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(fn=mean_squared_error, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean of ``mean(|y_true - y_pred|, axis=-1)``."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(fn=mean_absolute_error, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def mean_absolute_percentage_error(y_true, y_pred):
    """Per-sample ``100 * mean(|y_true - y_pred| / max(|y_true|, epsilon), axis=-1)`` (Keras's formula)."""
    xp = get_array_module(y_pred)
    y_pred = xp.asarray(y_pred)
    y_pred = y_pred if y_pred.dtype.kind == "f" else y_pred.astype(np.float32)
    y_true = xp.asarray(y_true).astype(y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    diff = xp.abs((y_true - y_pred) / xp.maximum(xp.abs(y_true), y_pred.dtype.type(epsilon())))
    return 100.0 * diff.mean(axis=-1)


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """The mean of ``100 * mean(|y_true - y_pred| / max(|y_true|, epsilon), axis=-1)``."""

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(fn=mean_absolute_percentage_error, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class BinaryCrossentropy(MeanMetricWrapper):
    """The mean of Keras's per-sample binary cross-entropy (the mean over the last axis).

    Args:
        from_logits: the predictions are logits (no sigmoid applied).
        label_smoothing: targets become ``t * (1 - s) + 0.5 * s``.
    """

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0):
        super().__init__(
            fn=binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits, label_smoothing=label_smoothing
        )
        self.from_logits = bool(from_logits)
        self.label_smoothing = label_smoothing

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }
