"""Checks on what users pass to fit/evaluate/predict: clear errors before any math runs."""
from __future__ import annotations

import numbers

import numpy as np

from ..backend import get_array_module
from ..layers.base import shape_str


def as_input_array(x, model, what="x"):
    """Return ``x`` as a float array of the model's dtype (integers such as uint8 are cast, not scaled)."""
    if x is None:
        raise ValueError(f"{model.describe()}: `{what}` is required; got None")
    xp = get_array_module(x)  # data already on the GPU stays there
    arr = xp.asarray(x)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{model.describe()}: `{what}` must be a numeric array; got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{model.describe()}: `{what}` is empty (shape {arr.shape}); pass at least one sample")
    return xp.ascontiguousarray(arr, dtype=model.dtype)


def check_same_length(x, y, model, what=("x", "y")):
    if len(x) != len(y):
        raise ValueError(
            f"{model.describe()}: `{what[0]}` and `{what[1]}` must have the same number of samples; "
            f"got {len(x)} and {len(y)} (shapes {shape_str(x.shape)} and {shape_str(np.shape(y))})"
        )


def as_target_array(y, model):
    if y is None:
        raise ValueError(f"{model.describe()}: `y` is required for training and evaluation; got None")
    arr = get_array_module(y).asarray(y)
    if arr.dtype == object:
        raise TypeError(f"{model.describe()}: `y` must be a numeric array; got dtype object")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{model.describe()}: `y` is empty (shape {arr.shape}); pass at least one label")
    return arr


def check_batch_size(batch_size, model):
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"{model.describe()}: `batch_size` must be an int >= 1; got {batch_size!r}")
    return int(batch_size)


def check_validation_split(split, model):
    if isinstance(split, bool) or not isinstance(split, numbers.Real) or not 0 <= split < 1:
        raise ValueError(f"{model.describe()}: `validation_split` must be a float in [0, 1); got {split!r}")
    return float(split)


def class_weight_to_sample_weight(class_weight, y, model, method="fit"):
    """Keras's ``class_weight_to_sample_weights``: each sample weighs its class's weight (1 when the
    class is not in the dict). The class is ``y`` itself for labels, the argmax of one-hot rows, or
    the rounded value of a single output.

    Args:
        class_weight: ``{class index: weight}``.
        y: prepared targets ``(N,)``, ``(N, 1)`` or ``(N, K)``.

    Returns:
        float64 ``(N,)``.
    """
    where = f"{model.describe()}.{method}"
    if not isinstance(class_weight, dict):
        raise TypeError(f"{where}: `class_weight` must be a dict {{class index: weight}}; got {type(class_weight).__name__}")
    table = {}
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise ValueError(f"{where}: `class_weight` keys must be int class indices; got {key!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise ValueError(f"{where}: `class_weight[{key!r}]` must be a finite number; got {value!r}")
        table[int(key)] = float(value)
    y = np.asarray(y)
    if y.ndim > 2:
        raise ValueError(f"{where}: `class_weight` needs targets of shape (N,), (N, 1) or one-hot (N, K); "
                         f"got shape {shape_str(y.shape)}. Pass per-sample weights as `sample_weight`")
    if y.ndim == 2:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[:, 0]
    classes = np.round(y).astype(np.int64)
    weights = np.ones(len(classes), dtype=np.float64)
    for cls, w in table.items():
        weights[classes == cls] = w
    return weights
