"""LeakyReLU, ELU and PReLU: the activation layers with a parameter (PReLU's is learned)."""

from __future__ import annotations

import numbers

from .. import constraints, initializers, regularizers
from ..nn.activations import elu_backward, elu_forward, leaky_relu_backward, leaky_relu_forward
from ..nn.prelu import prelu_backward, prelu_forward
from ..utils.config_schema import integer, list_of, nullable, number
from ..utils.layer_schema import constraint, initializer, layer_schema, regularizer
from .base import Layer, shape_str


def _number(value, arg, owner, low=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: `{arg}` must be a number; got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{owner}: `{arg}` must be >= {low}; got {value!r}")
    return float(value)


class LeakyReLU(Layer):
    """``x`` above 0, ``negative_slope * x`` at or below (Keras's default slope 0.3). Shape: output = input."""

    any_rank = True

    config_schema = layer_schema({"negative_slope": number(0)})

    def to_onnx(self, g, t, folded=None):
        """ONNX LeakyRelu."""
        t.name = g.op("LeakyRelu", [t.name], self.name, alpha=float(self.negative_slope))

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = _number(negative_slope, "negative_slope", self.describe(), 0.0)
        self._y = None

    def call(self, x, training=False):
        self._y = leaky_relu_forward(x, self.negative_slope)
        return self._y

    def backward(self, dy):
        return leaky_relu_backward(dy, self._y, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """``x`` above 0, ``alpha * (exp(x) - 1)`` at or below (default ``alpha=1.0``). Shape: output = input."""

    any_rank = True

    config_schema = layer_schema({"alpha": number(0)})

    def to_onnx(self, g, t, folded=None):
        """ONNX Elu."""
        t.name = g.op("Elu", [t.name], self.name, alpha=float(self.alpha))

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _number(alpha, "alpha", self.describe())
        if self.alpha < 0:
            # the backward reads the slope off the output (y + alpha), which needs y <= 0 below zero
            raise ValueError(f"{self.describe()}: convolab supports `alpha` >= 0; got {alpha!r}")
        self._y = None

    def call(self, x, training=False):
        self._y = elu_forward(x, self.alpha)
        return self._y

    def backward(self, dy):
        return elu_backward(dy, self._y, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """Parametric ReLU: ``x`` above 0, ``alpha * x`` at or below, ``alpha`` learned.

    Args:
        alpha_initializer: default ``'zeros'`` (Keras's), name or callable.
        alpha_regularizer, alpha_constraint: as for a kernel.
        shared_axes: axes (1 = the first after the batch) along which one alpha is shared, e.g.
            ``[1, 2]`` for one alpha per channel of an image.

    Shape:
        output = input ``(N, *S)``; weight alpha: ``S`` with 1 on the shared axes.
    """

    config_schema = layer_schema(
        {"shared_axes": nullable(list_of(integer(1, 6), 1, 6))},
        {"alpha_initializer": initializer, "alpha_regularizer": regularizer, "alpha_constraint": constraint},
    )

    def to_onnx(self, g, t, folded=None):
        """ONNX PRelu with the ``(H, W, C)``-shaped alpha (1 on shared axes), broadcast over NHWC."""
        from ..saving.onnx_ops import to_nhwc

        to_nhwc(g, t)
        t.name = g.op("PRelu", [t.name, g.const(self.name + "_alpha", self.params["alpha"])], self.name)

    def __init__(
        self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None, **kwargs
    ):
        super().__init__(**kwargs)
        me = self.describe()
        self.alpha_initializer = initializers.get(alpha_initializer, me)
        self._initializer_name = alpha_initializer if isinstance(alpha_initializer, str) else None
        self.alpha_regularizer = regularizers.get(alpha_regularizer, me, "alpha_regularizer")
        self.alpha_constraint = constraints.get(alpha_constraint, me, "alpha_constraint")
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = [shared_axes] if isinstance(shared_axes, numbers.Integral) else shared_axes
            if (
                isinstance(shared_axes, bool)
                or not isinstance(axes, (list, tuple))
                or any(isinstance(a, bool) or not isinstance(a, numbers.Integral) or a < 1 for a in axes)
            ):
                raise ValueError(
                    f"{me}: `shared_axes` must be None, an int >= 1 or a list of them; got {shared_axes!r}"
                )
            self.shared_axes = sorted(int(a) for a in axes)
        self._cache = None

    def build(self, input_shape):
        super().build(input_shape)
        shape = list(input_shape[1:])
        for a in self.shared_axes or ():
            if a > len(shape):
                raise ValueError(
                    f"{self.describe()}: shared axis {a} is not an axis of the input "
                    f"(input shape {shape_str(input_shape)})"
                )
            shape[a - 1] = 1
        if None in shape:
            raise ValueError(
                f"{self.describe()}: every axis without a shared alpha must have a known size; "
                f"got input shape {shape_str(input_shape)} and shared_axes={self.shared_axes}"
            )
        self._add_param("alpha", tuple(shape), self.alpha_initializer, self.alpha_regularizer, self.alpha_constraint)

    def call(self, x, training=False):
        y, self._cache = prelu_forward(x, self.params["alpha"])
        return y

    def backward(self, dy):
        dx, dalpha = prelu_backward(dy, self._cache)
        self.grads["alpha"] = dalpha
        return dx

    def get_config(self):
        cfg = super().get_config()
        if self._initializer_name is not None:
            cfg["alpha_initializer"] = self._initializer_name
        for key, value in (
            ("alpha_regularizer", regularizers.serialize(self.alpha_regularizer)),
            ("alpha_constraint", constraints.serialize(self.alpha_constraint)),
        ):
            if value is not None:
                cfg[key] = value
        cfg["shared_axes"] = self.shared_axes
        return cfg
