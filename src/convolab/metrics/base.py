"""``Metric``: Keras's base class for stateful metrics, with NumPy state.

A metric accumulates over batches with ``update_state(y_true, y_pred, sample_weight=None)``,
reports with ``result()`` and starts again with ``reset_state()``; ``fit`` resets its metrics
at each epoch and ``evaluate`` at each call, as Keras does.
"""

from __future__ import annotations

import numbers
import re

import numpy as np

from .. import backend


def to_snake_case(name):
    """Keras's ``to_snake_case``: ``'BinaryTruePositives'`` -> ``'binary_true_positives'``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def get_object_name(obj):
    """Keras's naming: an object's ``name``, else a function's ``__name__`` (snake case), else its class."""
    if hasattr(obj, "name"):
        return obj.name
    if hasattr(obj, "__name__"):
        return to_snake_case(obj.__name__)
    return to_snake_case(type(obj).__name__)


class Variable(np.lib.mixins.NDArrayOperatorsMixin):
    """A metric's state variable: a NumPy array with Keras's ``assign``/``assign_add``/``numpy()``.

    Arithmetic and NumPy functions see its value, so ``self.total / self.count`` works.
    """

    def __init__(self, shape, initializer, dtype, name):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.value = _initial_value(initializer, self.shape, self.dtype, name)

    def assign(self, value):
        value = np.asarray(value, dtype=self.dtype)
        if value.shape != self.shape:
            try:
                value = np.broadcast_to(value, self.shape)
            except ValueError:
                raise ValueError(
                    f"metric variable '{self.name}' has shape {self.shape}; cannot assign a value of shape {value.shape}"
                ) from None
        self.value = value.copy()

    def assign_add(self, value):
        self.assign(self.value + np.asarray(value))

    def assign_sub(self, value):
        self.assign(self.value - np.asarray(value))

    def numpy(self):
        return self.value.copy()

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(i.value if isinstance(i, Variable) else i for i in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __float__(self):
        return float(self.value)

    def __repr__(self):
        return f"<Variable {self.name} shape={self.shape} dtype={self.dtype}, value={self.value!r}>"


def _initial_value(initializer, shape, dtype, name):
    if isinstance(initializer, str) and initializer.lower() in ("zeros", "ones"):
        return (np.zeros if initializer.lower() == "zeros" else np.ones)(shape, dtype=dtype)
    if isinstance(initializer, numbers.Real) and not isinstance(initializer, bool):
        return np.full(shape, initializer, dtype=dtype)
    if callable(initializer):
        return np.asarray(initializer(shape, dtype=dtype), dtype=dtype).reshape(shape)
    raise ValueError(
        f"metric variable '{name}': initializer must be 'zeros', 'ones', a number or a callable; got {initializer!r}"
    )


class Metric:
    """Base class of stateful metrics, as ``keras.metrics.Metric``.

    A subclass creates its state in ``__init__`` (plain attributes, or ``self.add_variable(...)``),
    and implements ``update_state(y_true, y_pred, sample_weight=None)``, ``result()`` and, unless
    all its state comes from ``add_variable`` (reset to zeros by default), ``reset_state()``.

    Args:
        dtype: the dtype of the result (``None``: ``backend.floatx()``).
        name: the key in ``history.history`` (``None``: the class name in snake case).
    """

    def __init__(self, dtype=None, name=None):
        self.name = name or to_snake_case(type(self).__name__)
        self._dtype = dtype or backend.floatx()
        self._variables = []

    @property
    def dtype(self):
        return self._dtype

    @property
    def variables(self):
        return list(getattr(self, "_variables", []))

    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum", name=None):
        """A state variable reset to zeros by ``reset_state`` (Keras's ``add_variable``)."""
        if not hasattr(self, "_variables"):
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() in __init__ before add_variable()")
        var = Variable(shape, initializer, dtype or self.dtype, name or f"variable_{len(self._variables)}")
        self._variables.append(var)
        return var

    def add_weight(self, shape=(), initializer=None, dtype=None, name=None):
        return self.add_variable(shape=shape, initializer=initializer or "zeros", dtype=dtype, name=name)

    def update_state(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement update_state()")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement result()")

    def reset_state(self):
        for v in self.variables:
            v.assign(np.zeros(v.shape, dtype=v.dtype))

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"
