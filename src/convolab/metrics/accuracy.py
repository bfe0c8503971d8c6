"""Accuracy metrics: Keras 3's per-sample functions and the classes that average them."""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..losses import squeeze_or_expand_to_same_rank
from .reduction import MeanMetricWrapper


def accuracy(y_true, y_pred):
    """How often ``y_pred`` equals ``y_true``, the mean over the last axis."""
    xp = get_array_module(y_true, y_pred)
    y_pred = xp.asarray(y_pred)
    y_true = xp.asarray(y_true, dtype=y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return xp.mean(y_true == y_pred, axis=-1, dtype=np.float64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """``y_true == (y_pred > threshold)``, the mean over the last axis (targets are not thresholded)."""
    xp = get_array_module(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(xp.asarray(y_true), xp.asarray(y_pred))
    y_pred = (y_pred > threshold).astype(y_true.dtype)
    return xp.mean(y_true == y_pred, axis=-1, dtype=np.float64)


def categorical_accuracy(y_true, y_pred):
    """``argmax(y_true) == argmax(y_pred)`` along the last axis: one value per sample."""
    xp = get_array_module(y_true, y_pred)
    y_true = xp.argmax(xp.asarray(y_true), axis=-1)
    y_pred = xp.asarray(y_pred)
    org_shape, reshape = y_true.shape, False
    if y_true.ndim == y_pred.ndim:  # targets had a trailing axis of 1 after the classes
        y_true = xp.squeeze(y_true, -1)
        reshape = True
    matches = (y_true == xp.argmax(y_pred, axis=-1)).astype(np.float64)
    return matches.reshape(org_shape) if reshape else matches


def sparse_categorical_accuracy(y_true, y_pred):
    """``y_true == argmax(y_pred)`` for integer labels ``(N,)`` or ``(N, 1)``: one value per sample."""
    xp = get_array_module(y_true, y_pred)
    y_true = xp.asarray(y_true)
    y_pred = xp.asarray(y_pred)
    org_shape, reshape = y_true.shape, False
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
        reshape = True
    matches = (y_true == xp.argmax(y_pred, axis=-1)).astype(np.float64)
    if reshape:
        matches = matches.reshape(org_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches[..., 0]
    return matches


def in_top_k(targets, predictions, k):
    """True where the target's score ranks among the ``k`` highest; ties with it count in
    (TensorFlow's rule: rank = 1 + how many scores are strictly greater), NaN scores never do."""
    xp = get_array_module(targets, predictions)
    at_label = xp.take_along_axis(predictions, targets.astype(np.intp)[:, None], axis=-1)
    at_label = xp.where(xp.isnan(at_label), -np.inf, at_label)
    rank = 1 + xp.sum(predictions > at_label, axis=-1)
    return rank <= k


def _top_k(labels, y_pred, k):
    xp = get_array_module(labels, y_pred)
    y_pred = xp.asarray(y_pred)
    org_shape, reshape = labels.shape, False
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    if labels.ndim > 1:
        labels = labels.reshape(-1)
        reshape = True
    matches = in_top_k(labels, y_pred, k).astype(np.float64)
    return matches.reshape(org_shape) if reshape else matches


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Whether ``argmax(y_true)`` is among the ``k`` highest scores of ``y_pred``."""
    xp = get_array_module(y_true, y_pred)
    return _top_k(xp.argmax(xp.asarray(y_true), axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Whether the integer label is among the ``k`` highest scores of ``y_pred``."""
    xp = get_array_module(y_true, y_pred)
    return _top_k(xp.asarray(y_true), y_pred, k)


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels (exact equality)."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(fn=accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches binary labels."""

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ValueError(f"BinaryAccuracy: `threshold` must be a float in (0, 1); got threshold={threshold!r}")
        super().__init__(fn=binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the highest score is the one-hot target's class."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(fn=categorical_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the highest score is the integer label."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(fn=sparse_categorical_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def _check_k(cls, k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{cls}: `k` must be an int >= 1; got k={k!r}")
    return int(k)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target's class is among the ``k`` highest scores."""

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        k = _check_k("TopKCategoricalAccuracy", k)
        super().__init__(fn=top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "k": self.k}


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` highest scores."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        k = _check_k("SparseTopKCategoricalAccuracy", k)
        super().__init__(fn=sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "k": self.k}
