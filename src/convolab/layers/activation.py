"""Stand-alone activation layers: Activation, ReLU, Softmax."""
from __future__ import annotations

import numbers

import numpy as np

from .. import activations
from ..ops.activations import activation_backward, activation_forward
from .base import Layer


class Activation(Layer):
    """Apply a named activation. Shape: output = input."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation, owner=self.describe())
        self._y = None

    def call(self, x, training=False):
        self._y = activation_forward(self.activation, x)
        return self._y

    def backward(self, dy):
        return activation_backward(self.activation, dy, self._y)

    def call_logits(self, x, training=False):
        return x

    def backward_logits(self, dz):
        return dz

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = self.activation
        return cfg


class Softmax(Activation):
    """Softmax over the last axis (``axis=-1``, Keras's default). Shape: output = input."""

    def __init__(self, axis=-1, **kwargs):
        if axis != -1:
            raise ValueError(f"Softmax: convolab supports axis=-1 only; got axis={axis!r}")
        super().__init__("softmax", **kwargs)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("activation")
        return cfg


class ReLU(Layer):
    """Keras's ReLU: ``x`` above ``threshold`` (capped at ``max_value``), else ``negative_slope * (x - threshold)``."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        for key, val in (("negative_slope", negative_slope), ("threshold", threshold)):
            if isinstance(val, bool) or not isinstance(val, numbers.Real):
                raise TypeError(f"{self.describe()}: `{key}` must be a number; got {val!r}")
        if threshold < 0:
            raise ValueError(f"{self.describe()}: `threshold` must be >= 0 (as in Keras); got {threshold!r}")
        if negative_slope < 0:
            raise ValueError(f"{self.describe()}: `negative_slope` must be >= 0; got {negative_slope!r}")
        if max_value is not None and (not isinstance(max_value, numbers.Real) or max_value < 0):
            raise ValueError(f"{self.describe()}: `max_value` must be None or >= 0; got {max_value!r}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)
        self._x = None

    def call(self, x, training=False):
        self._x = x
        # Keras: x above the threshold (strictly), negative_slope * (x - threshold) otherwise.
        y = np.where(x > self.threshold, x, self.negative_slope * (x - self.threshold)).astype(x.dtype, copy=False)
        if self.max_value is not None:
            y = np.minimum(y, self.max_value)
        return y

    def backward(self, dy):
        x = self._x
        slope = np.where(x > self.threshold, 1.0, self.negative_slope).astype(dy.dtype, copy=False)
        if self.max_value is not None:
            slope = slope * (x < self.max_value)
        return dy * slope

    def get_config(self):
        cfg = super().get_config()
        cfg.update(max_value=self.max_value, negative_slope=self.negative_slope, threshold=self.threshold)
        return cfg
