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
        raise TypeError(
            f"{where}: `class_weight` must be a dict {{class index: weight}}; got {type(class_weight).__name__}"
        )
    table = {}
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise ValueError(f"{where}: `class_weight` keys must be int class indices; got {key!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise ValueError(f"{where}: `class_weight[{key!r}]` must be a finite number; got {value!r}")
        table[int(key)] = float(value)
    y = np.asarray(y)
    if y.ndim > 2:
        raise ValueError(
            f"{where}: `class_weight` needs targets of shape (N,), (N, 1) or one-hot (N, K); "
            f"got shape {shape_str(y.shape)}. Pass per-sample weights as `sample_weight`"
        )
    if y.ndim == 2:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[:, 0]
    classes = np.round(y).astype(np.int64)
    weights = np.ones(len(classes), dtype=np.float64)
    for cls, w in table.items():
        weights[classes == cls] = w
    return weights


def adjust_input_rank(x, expected):
    """``x`` with one trailing axis of 1 added or removed where Keras 3's functional models do it.

    Keras's ``Functional._adjust_input_rank``: data one rank short of an input whose last axis is
    1 gains that axis (``(N, 28, 28)`` for ``Input((28, 28, 1))``); data one rank over whose last
    axis is 1 loses it. Where the result would not fit the input anyway (Keras adjusts, then
    fails), ``x`` is returned as it is, so that the shape check reports the data as given, with
    its hints (a missing batch axis, say).

    Args:
        x: an array (host or GPU), batch axis first.
        expected: the input's shape, batch axis first (``None`` where free).
    """
    if expected is None or not hasattr(x, "ndim"):
        return x
    rank = len(expected)
    if x.ndim == rank - 1 and expected[-1] == 1:
        adjusted = x[..., None]
    elif x.ndim == rank + 1 and x.shape[-1] == 1:
        adjusted = x[..., 0]
    else:
        return x
    fits = all(e is None or g == e for g, e in zip(adjusted.shape[1:], expected[1:]))
    return adjusted if fits else x


def input_names(model):
    """The names of a functional model's inputs in order, or ``None`` (Sequential, subclass)."""
    inputs = getattr(model, "inputs", None)
    return [t.name for t in inputs] if inputs else None


def inputs_by_name(model, x, what="x"):
    """A dict of arrays keyed by input name as the model's inputs in order (Keras 3 maps them so).

    A dict for a model with one input gives its one array; other values of ``x`` (and every
    value for a model without named inputs) come back unchanged. Keys that name no input
    are ignored, as Keras ignores them; a missing input is an error naming the inputs.
    """
    if not isinstance(x, dict):
        return x
    names = getattr(model, "_input_keys", None) or input_names(model)
    if names is None:
        return x
    missing = [n for n in names if n not in x]
    if missing:
        raise ValueError(
            f"{model.describe()}: `{what}` is a dict, so its keys must name the model's inputs "
            f"{names}; got keys {sorted(map(str, x))}, missing {missing}"
        )
    arrays = [x[n] for n in names]
    return arrays[0] if len(arrays) == 1 else arrays
