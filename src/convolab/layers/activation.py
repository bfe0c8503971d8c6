"""Stand-alone activation layers: Activation, ReLU, Softmax.

Weight-free and element-wise (softmax: along the last axis), so called directly they take
an array of any rank, a 1-D vector included, as Keras's do; in a model the usual shape
checks apply.
"""

from __future__ import annotations

import numbers

from .. import activations
from ..autodiff.tape import is_recording
from ..nn.activations import NEEDS_INPUT, activation_backward, activation_forward, relu_backward, relu_forward
from ..nn.custom_activation import custom_backward, custom_forward
from ..utils.config_schema import nullable, number
from ..utils.layer_schema import activation_name, layer_schema
from .base import Layer


class Activation(Layer):
    """Apply an activation: a name, a ``keras.activations`` function, or any callable ``f(x)``
    written with ``keras.ops`` (see :mod:`convolab.nn.custom_activation`). Shape: output = input."""

    any_rank = True

    config_schema = layer_schema({"activation": activation_name})

    def to_onnx(self, g, t, folded=None):
        """The activation as ONNX ops (:func:`convolab.saving.onnx_ops.activation`)."""
        from ..saving.onnx_ops import activation

        activation(g, t, self.activation, self.name, self.describe())

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation, owner=self.describe())
        self.min_call_ndim = 1 if self.activation == "softmax" else 0
        self._y = None

    def call(self, x, training=False):
        if callable(self.activation):
            record = bool(training) or is_recording()  # a backward may follow
            self._y, self._act_cache = custom_forward(self.activation, x, record, self.describe())
            return self._y
        self._x = x if self.activation in NEEDS_INPUT else None  # gelu, swish, mish: dx needs x
        self._y = activation_forward(self.activation, x)
        return self._y

    def backward(self, dy):
        if callable(self.activation):
            return custom_backward(dy, self._act_cache)
        return activation_backward(self.activation, dy, self._y, getattr(self, "_x", None))

    def call_logits(self, x, training=False):
        return x

    def backward_logits(self, dz):
        return dz

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = activations.serialize(self.activation, self.describe())
        return cfg


class Softmax(Activation):
    """Softmax over the last axis (``axis=-1``, Keras's default). Shape: output = input."""

    config_schema = layer_schema()

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

    any_rank = True

    config_schema = layer_schema({"max_value": nullable(number(0)), "negative_slope": number(0), "threshold": number()})

    def to_onnx(self, g, t, folded=None):
        """Relu or LeakyRelu; with a threshold a Where; with ``max_value`` a Min after."""
        base = self.name
        if self.threshold == 0 and self.negative_slope == 0:
            t.name = g.op("Relu", [t.name], base)
        elif self.threshold == 0:
            t.name = g.op("LeakyRelu", [t.name], base, alpha=float(self.negative_slope))
        else:
            thr = g.const(base + "_threshold", self.threshold)
            keep = g.op("GreaterOrEqual", [t.name, thr], base + "_keep")
            shifted = g.op("Sub", [t.name, thr], base + "_shift")
            below = g.op("Mul", [shifted, g.const(base + "_slope", self.negative_slope)], base + "_below")
            t.name = g.op("Where", [keep, t.name, below], base)
        if self.max_value is not None:
            t.name = g.op("Min", [t.name, g.const(base + "_max", self.max_value)], base + "_cap")

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
        self._cache = None

    def call(self, x, training=False):
        y, self._cache = relu_forward(x, self.negative_slope, self.max_value, self.threshold)
        return y

    def backward(self, dy):
        return relu_backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(max_value=self.max_value, negative_slope=self.negative_slope, threshold=self.threshold)
        return cfg
