"""DepthwiseConv2D: Keras's depthwise convolution, each channel filtered on its own."""

from __future__ import annotations

from ..nn.depthwise_conv import depthwise_conv2d_backward, depthwise_conv2d_forward
from ..utils.layer_schema import DEPTHWISE_INITS, WINDOW, dim, layer_schema, pair, rules
from .base_conv import BaseConv, positive_int
from .unsupported import reject_unsupported


class DepthwiseConv2D(BaseConv):
    """Depthwise 2-D convolution: channel ``c`` convolved with ``depth_multiplier`` filters of its own.

    Args:
        kernel_size: int or ``(kh, kw)``.
        strides: int or ``(sh, sw)``, default ``(1, 1)``.
        padding: ``'valid'`` (default) or ``'same'``.
        depth_multiplier: filters per input channel ``dm`` (default 1).
        dilation_rate: int or ``(dh, dw)``, default ``(1, 1)``; above 1 only with strides 1.
        activation: name or ``None`` (linear).
        use_bias: add a bias per output channel (default True).
        depthwise_initializer: default ``'glorot_uniform'``; bias_initializer: default ``'zeros'``.

    Shape:
        input ``(N, H, W, C)``; output ``(N, Ho, Wo, C * dm)``, channel ``c * dm + m`` from input
        channel ``c`` and filter ``m``; ``Ho`` as for :class:`Conv2D`. Weights (Keras's names and
        layout): kernel ``(kh, kw, C, dm)``, bias ``(C * dm,)``.
    """

    kernel_arg = "depthwise"

    config_schema = layer_schema(
        {**WINDOW, "dilation_rate": pair, "depth_multiplier": dim}, {**DEPTHWISE_INITS, **rules("depthwise")}
    )

    def to_onnx(self, g, t, folded=None):
        """An ONNX Conv with ``group = C``: the ``(kh, kw, C, dm)`` kernel is the grouped
        ``(kh, kw, 1, C * dm)`` one. ``folded``: ``(kernel, bias)`` with a BatchNormalization folded in."""
        from ..saving.onnx_ops import activation, conv

        kernel, bias = folded or (self.params["kernel"], self.params.get("bias"))
        kh, kw, c, dm = kernel.shape
        conv(g, t, self, kernel.reshape(kh, kw, 1, c * dm), bias, c, self.name)
        activation(g, t, self.activation, self.name, self.describe())

    def __init__(
        self,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        depth_multiplier=1,
        data_format=None,
        dilation_rate=(1, 1),
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
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
        self.set_window(kernel_size, strides, padding, dilation_rate)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier", me)
        names = self._initializer_names
        if "kernel_initializer" in names:  # saved under Keras's argument name
            self._initializer_names = {"depthwise_initializer": names.pop("kernel_initializer"), **names}
        reject_unsupported(me, data_format=data_format)

    def output_channels(self, c):
        return c * self.depth_multiplier

    def build(self, input_shape):
        super().build(input_shape)
        c = self.input_channels(input_shape)
        self.add_kernel_and_bias(self.kernel_size + (c, self.depth_multiplier), c * self.depth_multiplier)

    def linear_forward(self, x, training=False):
        y, self._cache = depthwise_conv2d_forward(
            x,
            self.params["kernel"],
            self.params.get("bias"),
            self.strides,
            self.window_pads(x.shape[1:3]),
            self.dilation_rate,
        )
        return y

    def linear_backward(self, dz):
        dx, dw, db = depthwise_conv2d_backward(dz, self._cache, need_dx=self.need_input_grad)
        self.store_grads(dw, db)
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update(depth_multiplier=self.depth_multiplier)
        return cfg
