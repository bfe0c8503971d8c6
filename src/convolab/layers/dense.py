"""Dense: Keras's fully connected layer."""

from __future__ import annotations

from ..nn.dense import dense_backward, dense_forward
from ..utils.config_schema import boolean
from ..utils.layer_schema import INITS, activation_name, dim, layer_schema, rules
from .base_activated import ActivatedLayer
from .base import shape_str


class Dense(ActivatedLayer):
    """``activation(x @ kernel + bias)`` over the last axis.

    Args:
        units: output width.
        activation: name or ``None``; use_bias: default True.
        kernel_initializer: default ``'glorot_uniform'``; bias_initializer: default ``'zeros'``.

    Shape:
        input ``(N, ..., in)``; output ``(N, ..., units)``. Weights: kernel ``(in, units)``, bias ``(units,)``.
    """

    config_schema = layer_schema(
        {"units": dim, "use_bias": boolean, "activation": activation_name}, {**INITS, **rules("kernel")}
    )

    def to_onnx(self, g, t, folded=None):
        """MatMul (on NHWC, so the kernel is used unchanged), Add, the activation.

        ``folded``: ``(kernel, bias)`` with a following BatchNormalization folded in, or None.
        """
        from ..saving.onnx_ops import activation, to_nhwc

        to_nhwc(g, t)
        kernel, bias = folded or (self.params["kernel"], self.params.get("bias"))
        t.name = g.op("MatMul", [t.name, g.const(self.name + "_W", kernel)], self.name + "_matmul")
        if bias is not None:
            t.name = g.op("Add", [t.name, g.const(self.name + "_B", bias)], self.name + "_bias")
        activation(g, t, self.activation, self.name, self.describe())

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        me = self.describe()
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"{me}: `units` must be a positive int; got {units!r}")
        self.units = units

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        return tuple(input_shape[:-1]) + (self.units,)

    def build(self, input_shape):
        super().build(input_shape)
        if input_shape[-1] is None:
            raise ValueError(
                f"{self.describe()}: the last axis of the input must be known; got shape {shape_str(input_shape)}"
            )
        self.add_kernel_and_bias((input_shape[-1], self.units), self.units)

    def linear_forward(self, x, training=False):
        y, self._cache = dense_forward(x, self.params["kernel"], self.params.get("bias"))
        return y

    def linear_backward(self, dz):
        dx, dw, db = dense_backward(dz, self._cache, need_dx=self.need_input_grad)
        self.store_grads(dw, db)
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg["units"] = self.units
        return cfg
