"""Losses as pure functions returning ``(mean loss, gradient)``.

Each gradient is of the *mean* loss over the batch with respect to the prediction
(or the logits, for the fused softmax form).
"""
from __future__ import annotations

from ..backend import epsilon, xp


def _log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    s = z - m
    return s - xp.log(xp.exp(s).sum(axis=-1, keepdims=True))


def softmax_crossentropy_with_logits(logits, labels, sparse=True):
    """Cross-entropy of ``softmax(logits)``, computed stably from the logits.

    Args:
        logits: ``(N, K)``.
        labels: sparse ``(N,)`` ints in ``[0, K)``, or one-hot/probabilities ``(N, K)``.

    Returns:
        ``(loss, dlogits)``: the mean loss (a float) and ``(N, K)`` gradient.
    """
    n = logits.shape[0]
    logp = _log_softmax(logits)
    p = xp.exp(logp)
    if sparse:
        idx = xp.arange(n)
        loss = -logp[idx, labels].sum() / n
        p[idx, labels] -= 1
        dlogits = p
    else:
        loss = -(labels * logp).sum() / n
        dlogits = p * labels.sum(axis=-1, keepdims=True) - labels
    dlogits /= n
    return float(loss), dlogits


def sparse_categorical_crossentropy(probs, labels):
    """Cross-entropy of probabilities ``(N, K)`` against integer labels ``(N,)``.

    Probabilities are clipped to ``[eps, 1 - eps]`` as Keras does.
    """
    n = probs.shape[0]
    eps = epsilon()
    idx = xp.arange(n)
    p = probs[idx, labels]
    pc = xp.clip(p, eps, 1 - eps)
    loss = -xp.log(pc).sum() / n
    grad = xp.zeros_like(probs)
    grad[idx, labels] = xp.where((p > eps) & (p < 1 - eps), -1.0 / (pc * n), 0.0)
    return float(loss), grad


def categorical_crossentropy(probs, targets):
    """Cross-entropy of probabilities ``(N, K)`` against one-hot (or soft) targets ``(N, K)``.

    Keras first rescales each row of ``probs`` to sum to one, then clips.
    """
    n = probs.shape[0]
    eps = epsilon()
    s = probs.sum(axis=-1, keepdims=True)
    q = probs / s
    qc = xp.clip(q, eps, 1 - eps)
    loss = -(targets * xp.log(qc)).sum() / n
    inside = (q > eps) & (q < 1 - eps)
    dq = xp.where(inside, -targets / qc, 0.0) / n
    # d(q)/d(probs) for q = p / sum(p): (dq - sum(dq * q)) / s
    grad = (dq - (dq * q).sum(axis=-1, keepdims=True)) / s
    return float(loss), grad.astype(probs.dtype)


def mean_squared_error(pred, target):
    """Mean over every element of ``(pred - target) ** 2``, and its gradient."""
    diff = pred - target
    n = pred.shape[0]
    per_sample = (diff * diff).reshape(n, -1).mean(axis=1)
    loss = per_sample.mean()
    grad = diff * (2.0 / diff.size)
    return float(loss), grad.astype(pred.dtype)
