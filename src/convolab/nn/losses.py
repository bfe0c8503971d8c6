"""Losses as pure functions returning ``(loss, gradient)``.

Each loss first computes Keras's per-sample *values* (the loss of each sample: shape ``(N,)``
for class outputs, ``(N, ...)`` without the last axis for regression outputs) and the *local*
gradient ``d values / d pred`` (each value depends on its own row of ``pred`` only). One
reduction, :func:`reduce_weighted`, then gives Keras 3's ``'sum_over_batch_size'``:

    loss = sum(w_i * values_i) / values.size

with the per-sample weights ``w`` (``None``: all ones) broadcast over the trailing axes of
``values``; the gradient is the local gradient times ``w_i / values.size``. Weights change
the numerator only, as in Keras 3 (``mean_with_sample_weight`` would divide by ``sum(w)``).

Shape:
    pred and target: ``(N, ..., D)``; sample_weight: ``(N,)``; gradient: like ``pred``.
"""

from __future__ import annotations

from ..backend import epsilon, get_array_module


def reduce_weighted(values, local_grad, sample_weight=None):
    """``(sum(w * values) / values.size, local_grad * w / values.size)``.

    Args:
        values: per-sample losses ``(N, ...)``.
        local_grad: ``d values / d pred``, shape ``values.shape + (D,)``.
        sample_weight: ``(N,)`` or ``None``.

    Returns:
        ``(loss, grad)``: a float and an array shaped like ``local_grad``.
    """
    xp = get_array_module(values)
    size = values.size
    if sample_weight is None:
        return float(values.sum() / size), local_grad / local_grad.dtype.type(size)
    w = xp.asarray(sample_weight, dtype=values.dtype).reshape((-1,) + (1,) * (values.ndim - 1))
    loss = float((values * w).sum() / size)
    return loss, local_grad * (w / local_grad.dtype.type(size))[..., None]


def _log_softmax(z):
    xp = get_array_module(z)
    m = z.max(axis=-1, keepdims=True)
    s = z - m
    return s - xp.log(xp.exp(s).sum(axis=-1, keepdims=True))


def softmax_crossentropy_values(logits, labels, sparse=True):
    """Per-sample cross-entropy of ``softmax(logits)`` ``(N,)`` and ``d values / d logits`` ``(N, K)``.

    Args:
        logits: ``(N, K)``.
        labels: sparse ``(N,)`` ints in ``[0, K)``, or one-hot/probabilities ``(N, K)``.
    """
    xp = get_array_module(logits)
    logp = _log_softmax(logits)
    p = xp.exp(logp)
    if sparse:
        idx = xp.arange(logits.shape[0])
        values = -logp[idx, labels]
        p[idx, labels] -= 1
        return values, p
    values = -(labels * logp).sum(axis=-1)
    return values, p * labels.sum(axis=-1, keepdims=True) - labels


def softmax_crossentropy_with_logits(logits, labels, sparse=True, sample_weight=None):
    """Cross-entropy of ``softmax(logits)``, computed stably from the logits.

    Returns:
        ``(loss, dlogits)``: the (weighted) mean loss and the ``(N, K)`` gradient.
    """
    return reduce_weighted(*softmax_crossentropy_values(logits, labels, sparse), sample_weight)


def sparse_categorical_crossentropy_values(probs, labels):
    """Per-sample ``-log(clip(p[label]))`` ``(N,)`` and its local gradient ``(N, K)``.

    Probabilities are clipped to ``[eps, 1 - eps]`` as Keras does; outside, the gradient is 0.
    """
    xp = get_array_module(probs)
    eps = epsilon()
    idx = xp.arange(probs.shape[0])
    p = probs[idx, labels]
    pc = xp.clip(p, eps, 1 - eps)
    local = xp.zeros_like(probs)
    local[idx, labels] = xp.where((p > eps) & (p < 1 - eps), -1.0 / pc, 0.0)
    return -xp.log(pc), local


def sparse_categorical_crossentropy(probs, labels, sample_weight=None):
    """Cross-entropy of probabilities ``(N, K)`` against integer labels ``(N,)``: ``(loss, grad)``."""
    return reduce_weighted(*sparse_categorical_crossentropy_values(probs, labels), sample_weight)


def categorical_crossentropy_values(probs, targets):
    """Per-sample cross-entropy ``(N,)`` of probabilities ``(N, K)`` against targets ``(N, K)``.

    Keras first rescales each row of ``probs`` to sum to one, then clips.
    """
    xp = get_array_module(probs)
    eps = epsilon()
    s = probs.sum(axis=-1, keepdims=True)
    q = probs / s
    qc = xp.clip(q, eps, 1 - eps)
    values = -(targets * xp.log(qc)).sum(axis=-1)
    dq = xp.where((q > eps) & (q < 1 - eps), -targets / qc, 0.0)
    # d(q)/d(probs) for q = p / sum(p): (dq - sum(dq * q)) / s
    local = (dq - (dq * q).sum(axis=-1, keepdims=True)) / s
    return values, local.astype(probs.dtype)


def categorical_crossentropy(probs, targets, sample_weight=None):
    """Cross-entropy of probabilities ``(N, K)`` against one-hot (or soft) targets: ``(loss, grad)``."""
    return reduce_weighted(*categorical_crossentropy_values(probs, targets), sample_weight)


def mean_squared_error_values(pred, target):
    """``mean((pred - target) ** 2, axis=-1)`` and its local gradient ``2 (pred - target) / D``."""
    diff = pred - target
    return (diff * diff).mean(axis=-1), diff * pred.dtype.type(2.0 / diff.shape[-1])


def mean_squared_error(pred, target, sample_weight=None):
    """Mean squared error (Keras: the mean over the last axis, then the batch reduction)."""
    return reduce_weighted(*mean_squared_error_values(pred, target), sample_weight)


def mean_absolute_error_values(pred, target):
    """``mean(|pred - target|, axis=-1)`` and its local gradient ``sign(pred - target) / D``
    (0 where they are equal, as TensorFlow's and JAX's ``abs``)."""
    xp = get_array_module(pred)
    diff = pred - target
    return xp.abs(diff).mean(axis=-1), xp.sign(diff) / pred.dtype.type(diff.shape[-1])


def mean_absolute_error(pred, target, sample_weight=None):
    """Mean absolute error: ``(loss, grad)``."""
    return reduce_weighted(*mean_absolute_error_values(pred, target), sample_weight)


def binary_crossentropy_values(probs, targets):
    """Per-sample binary cross-entropy of probabilities, the mean over the last axis.

    As Keras: ``p`` is clipped to ``[eps, 1 - eps]``, then
    ``-(t log p + (1 - t) log(1 - p))``; outside the clip range the gradient is 0.
    """
    xp = get_array_module(probs)
    eps = epsilon()
    pc = xp.clip(probs, eps, 1 - eps)
    elem = -(targets * xp.log(pc) + (1 - targets) * xp.log(1 - pc))
    inside = (probs > eps) & (probs < 1 - eps)
    d = xp.where(inside, (1 - targets) / (1 - pc) - targets / pc, 0.0)
    return elem.mean(axis=-1), (d / probs.shape[-1]).astype(probs.dtype)


def binary_crossentropy(probs, targets, sample_weight=None):
    """Binary cross-entropy of probabilities against targets in [0, 1]: ``(loss, grad)``."""
    return reduce_weighted(*binary_crossentropy_values(probs, targets), sample_weight)


def sigmoid_binary_crossentropy_values(logits, targets):
    """Binary cross-entropy of ``sigmoid(logits)`` computed from the logits, without clipping:
    ``max(z, 0) - z t + log(1 + exp(-|z|))`` (TensorFlow's ``sigmoid_cross_entropy_with_logits``,
    JAX's ``log_sigmoid`` form); local gradient ``(sigmoid(z) - t) / D``."""
    xp = get_array_module(logits)
    z = logits
    elem = xp.maximum(z, 0) - z * targets + xp.log1p(xp.exp(-xp.abs(z)))
    ez = xp.exp(-xp.abs(z))  # sigmoid without overflow: 1/(1+e^-z) for z >= 0, e^z/(1+e^z) below
    sig = xp.where(z >= 0, 1.0 / (1.0 + ez), ez / (1.0 + ez))
    return elem.mean(axis=-1), ((sig - targets) / z.shape[-1]).astype(z.dtype)


def sigmoid_binary_crossentropy_with_logits(logits, targets, sample_weight=None):
    """Binary cross-entropy from logits: ``(loss, dlogits)``."""
    return reduce_weighted(*sigmoid_binary_crossentropy_values(logits, targets), sample_weight)
