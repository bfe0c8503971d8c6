"""SeparableConv2D: Keras's depthwise-separable convolution (depthwise, then 1x1 pointwise)."""

from __future__ import annotations

from .. import constraints, initializers, regularizers
from ..nn.separable_conv import separable_conv2d_backward, separable_conv2d_forward
from ..utils.layer_schema import (
    DEPTHWISE_INITS,
    WINDOW,
    constraint,
    dim,
    initializer,
    layer_schema,
    pair,
    regularizer,
    rules,
)
from .base_conv import BaseConv, positive_int
from .unsupported import reject_unsupported


class SeparableConv2D(BaseConv):
    """Depthwise convolution (``depth_multiplier`` filters per channel), then a 1x1 convolution to ``filters``.

    Args:
        filters: output channels ``F`` of the pointwise step.
        kernel_size: int or ``(kh, kw)`` of the depthwise step.
        strides: int or ``(sh, sw)``, default ``(1, 1)``.
        padding: ``'valid'`` (default) or ``'same'``.
        dilation_rate: int or ``(dh, dw)``, default ``(1, 1)``; above 1 only with strides 1.
        depth_multiplier: depthwise filters per input channel ``dm`` (default 1).
        activation: name or ``None`` (linear).
        use_bias: add a bias per filter (default True).
        depthwise_initializer, pointwise_initializer: default ``'glorot_uniform'``;
        bias_initializer: default ``'zeros'``.

    Shape:
        input ``(N, H, W, C)``; output ``(N, Ho, Wo, F)``, ``Ho`` as for :class:`Conv2D`. Weights, in
        Keras's order: depthwise_kernel ``(kh, kw, C, dm)``, pointwise_kernel ``(1, 1, C * dm, F)``,
        bias ``(F,)``.
    """

    kernel_arg = "depthwise"

    config_schema = layer_schema(
        {"filters": dim, **WINDOW, "dilation_rate": pair, "depth_multiplier": dim},
        {
            **DEPTHWISE_INITS,
            "pointwise_initializer": initializer,
            **rules("depthwise"),
            "pointwise_regularizer": regularizer,
            "pointwise_constraint": constraint,
        },
    )

    def to_onnx(self, g, t, folded=None):
        """Two ONNX Convs: the depthwise one (``group = C``) and a 1x1 one carrying the bias."""
        from ..saving.onnx_ops import activation, conv

        p = self.params
        kh, kw, c, dm = p["depthwise_kernel"].shape
        conv(g, t, self, p["depthwise_kernel"].reshape(kh, kw, 1, c * dm), None, c, self.name + "_depthwise")
        conv(g, t, self, p["pointwise_kernel"], p.get("bias"), 1, self.name + "_pointwise", window=False)
        activation(g, t, self.activation, self.name, self.describe())

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        data_format=None,
        dilation_rate=(1, 1),
        depth_multiplier=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        pointwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=depthwise_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=depthwise_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=depthwise_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        me = self.describe()
        self.filters = positive_int(filters, "filters", me)
        self.set_window(kernel_size, strides, padding, dilation_rate)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier", me)
        self.pointwise_initializer = initializers.get(pointwise_initializer, me)
        names = self._initializer_names
        renamed = {"depthwise_initializer": names.pop("kernel_initializer")} if "kernel_initializer" in names else {}
        if isinstance(pointwise_initializer, str):
            renamed["pointwise_initializer"] = pointwise_initializer
        self._initializer_names = {**renamed, **names}
        reject_unsupported(me, data_format=data_format)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer, me, "pointwise_regularizer")
        self.pointwise_constraint = constraints.get(pointwise_constraint, me, "pointwise_constraint")

    def output_channels(self, c):
        return self.filters

    def build(self, input_shape):
        super().build(input_shape)
        c = self.input_channels(input_shape)
        dm = self.depth_multiplier
        self._add_param(
            "depthwise_kernel",
            self.kernel_size + (c, dm),
            self.kernel_initializer,
            self.kernel_regularizer,
            self.kernel_constraint,
        )
        self._add_param(
            "pointwise_kernel",
            (1, 1, c * dm, self.filters),
            self.pointwise_initializer,
            self.pointwise_regularizer,
            self.pointwise_constraint,
        )
        if self.use_bias:
            self._add_param("bias", (self.filters,), self.bias_initializer, self.bias_regularizer, self.bias_constraint)

    def linear_forward(self, x, training=False):
        p = self.params
        y, self._cache = separable_conv2d_forward(
            x,
            p["depthwise_kernel"],
            p["pointwise_kernel"],
            p.get("bias"),
            self.strides,
            self.window_pads(x.shape[1:3]),
            self.dilation_rate,
        )
        return y

    def linear_backward(self, dz):
        dx, d_depthwise, d_pointwise, db = separable_conv2d_backward(dz, self._cache, need_dx=self.need_input_grad)
        self.grads["depthwise_kernel"] = d_depthwise
        self.grads["pointwise_kernel"] = d_pointwise
        if self.use_bias:
            self.grads["bias"] = db
        return dx

    def rules_config(self):
        rules = super().rules_config()
        for key, value in (
            ("pointwise_regularizer", regularizers.serialize(self.pointwise_regularizer)),
            ("pointwise_constraint", constraints.serialize(self.pointwise_constraint)),
        ):
            if value is not None:
                rules[key] = value
        return rules

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, depth_multiplier=self.depth_multiplier)
        return cfg
