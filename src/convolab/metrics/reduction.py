"""``Mean`` and ``MeanMetricWrapper``: the weighted running mean behind most Keras metrics.

State is accumulated in float64, so an epoch's value is the metric over the whole epoch to
the last bit a float64 can give (Keras keeps ``floatx``, float32).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..backend import get_array_module, is_device_array
from ..losses import squeeze_or_expand_to_same_rank
from .base import Metric


def reduce_to_samplewise_values(values, sample_weight, reduce_fn=None):
    """Keras's reduction: per-sample values ``(N,)`` (``values * weight``) and the weights.

    Weights are squeezed/expanded to the values' rank (Keras's rule), the values reduced to the
    weights' rank, the weights broadcast to the values; finally values of rank > 1 are reduced
    over their trailing axes.
    """
    xp = get_array_module(values, sample_weight)
    reduce_fn = reduce_fn or xp.mean
    values = xp.asarray(values, dtype=np.float64)
    if sample_weight is not None:
        sample_weight = xp.asarray(sample_weight, dtype=np.float64)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        w_ndim, v_ndim = sample_weight.ndim, values.ndim
        if v_ndim > w_ndim:
            values = reduce_fn(values, axis=tuple(range(w_ndim, v_ndim)))
        try:
            sample_weight = xp.broadcast_to(sample_weight, values.shape)
        except ValueError:
            raise ValueError(
                f"sample_weight of shape {sample_weight.shape} does not broadcast to the metric values of "
                f"shape {values.shape}"
            ) from None
        values = values * sample_weight
        if w_ndim > 1:
            sample_weight = reduce_fn(sample_weight, axis=tuple(range(1, w_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, sample_weight


class Mean(Metric):
    """The (weighted) mean of the values given: ``sum(w * v) / sum(w)``, 0 when nothing came."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), "zeros", dtype="float64", name="total")
        self.count = self.add_variable((), "zeros", dtype="float64", name="count")

    def update_state(self, values, sample_weight=None):
        if isinstance(sample_weight, numbers.Real) and getattr(values, "ndim", 0) == 0:
            # Keras's fast path: one scalar with a scalar weight (the loss tracker: the batch size).
            self.total.assign_add(float(values) * sample_weight)
            self.count.assign_add(sample_weight)
            return
        values, sample_weight = reduce_to_samplewise_values(values, sample_weight)
        total = values.sum()
        if sample_weight is not None:
            count = sample_weight.sum()
        else:
            count = values.shape[0] if values.ndim >= 1 else 1
        if is_device_array(total):  # the running state stays on the host: a float per batch comes back
            total, count = float(total), float(count)
        self.total.assign_add(total)
        self.count.assign_add(count)

    def result(self):
        count = float(self.count)
        return float(self.total) / count if count != 0 else 0.0


class MeanMetricWrapper(Mean):
    """The mean of a function's per-sample values: ``fn(y_true, y_pred, **kwargs)``.

    Args:
        fn: returns per-sample values ``(N, ...)`` (trailing axes are averaged) or one scalar
            per batch (counted as one sample, as Keras does).
        name: default ``'mean_metric_wrapper'``; ``compile`` names it after the function.
        **kwargs: passed on to ``fn``.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        return super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), **self._fn_kwargs}
