"""``to_categorical``: integer labels to one-hot rows, as ``keras.utils.to_categorical``."""

from __future__ import annotations

import numpy as np


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer labels.

    Shape: ``(N,)`` or ``(N, 1)`` -> ``(N, num_classes)``.
    """
    y = np.asarray(y)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if y.dtype.kind == "f" and np.any(y != np.round(y)):
        raise ValueError("to_categorical expects integer labels; got non-integer values")
    yi = y.astype(np.intp)
    if yi.size and yi.min() < 0:
        raise ValueError(f"to_categorical expects labels >= 0; got {int(yi.min())}")
    if num_classes is None:
        num_classes = int(yi.max()) + 1 if yi.size else 0
    elif yi.size and yi.max() >= num_classes:
        raise ValueError(f"to_categorical: label {int(yi.max())} does not fit num_classes={num_classes}")
    out = np.zeros(yi.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, yi[..., None], 1, axis=-1)
    return out
