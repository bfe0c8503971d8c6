"""Kullback-Leibler divergence as Keras computes it: both distributions clipped to ``[eps, 1]``.

``values = sum(t * log(t / p), axis=-1)`` with ``t = clip(target, eps, 1)`` and
``p = clip(pred, eps, 1)``; the local gradient is ``-t / p`` where ``pred`` is inside the clip
range and 0 outside (the clip's own gradient). Reduced by :func:`convolab.nn.losses.reduce_weighted`.

Shape:
    pred and target: ``(N, ..., D)``; values: ``(N, ...)``; gradient: like ``pred``.
"""

from __future__ import annotations

from ..backend import epsilon, get_array_module
from .losses import reduce_weighted


def kl_divergence_values(pred, target):
    """Per-sample divergences and ``d values / d pred``."""
    xp = get_array_module(pred)
    eps = pred.dtype.type(epsilon())
    t = xp.clip(target, eps, 1)
    p = xp.clip(pred, eps, 1)
    values = (t * xp.log(t / p)).sum(axis=-1)
    inside = (pred >= eps) & (pred <= 1)
    return values, xp.where(inside, -t / p, 0).astype(pred.dtype, copy=False)


def kl_divergence(pred, target, sample_weight=None):
    """KL divergence: ``(loss, grad)``, ``sum(w_i * values_i) / values.size``."""
    return reduce_weighted(*kl_divergence_values(pred, target), sample_weight)
