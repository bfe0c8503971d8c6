"""Conv2D: Keras's 2-D convolution layer over NHWC images."""

from __future__ import annotations

from .. import activations
from ..autodiff import functions
from ..nn.conv import conv2d_backward, conv2d_forward
from ..nn.grouped_conv_fast import grouped_conv2d_backward_fast, grouped_conv2d_forward_fast
from ..nn.tape_conv import conv
from ..utils.layer_schema import INITS, WINDOW, dim, layer_schema, pair, rules
from .base import shape_str
from .base_conv import BaseConv, positive_int
from .unsupported import reject_unsupported


class Conv2D(BaseConv):
    """2-D convolution: ``activation(im2col(x) @ kernel + bias)``.

    Args:
        filters: number of output channels ``F``.
        kernel_size: int or ``(kh, kw)``.
        strides: int or ``(sh, sw)``, default ``(1, 1)``.
        padding: ``'valid'`` (default) or ``'same'``.
        dilation_rate: int or ``(dh, dw)``, default ``(1, 1)``; above 1 only with strides 1 (as Keras).
        groups: split the input channels into this many groups, each with ``filters // groups``
            filters of its own; ``filters`` and the channel count must be divisible by it (default 1).
        activation: name or ``None`` (linear).
        use_bias: add a bias per filter (default True).
        kernel_initializer: default ``'glorot_uniform'``; bias_initializer: default ``'zeros'``.

    Shape:
        input ``(N, H, W, C)``; output ``(N, Ho, Wo, F)`` with ``Ho = floor((H - k) / sh) + 1``,
        ``k = (kh - 1) * dh + 1``, for ``'valid'`` and ``ceil(H / sh)`` for ``'same'``.
        Weights: kernel ``(kh, kw, C // groups, F)``, bias ``(F,)``.

    A subclass may override ``convolution_op(inputs, kernel)`` (Keras's hook; keras.io's weight
    standardization does): the layer then computes ``activation(convolution_op(x, kernel) + bias)``
    with ``keras.ops``, recorded on the tape, instead of its fused kernels and hand-written backward.
    """

    # dilation_rate and groups are optional: files written before they existed hold neither
    config_schema = layer_schema(
        {"filters": dim, **WINDOW}, {**INITS, "dilation_rate": pair, "groups": dim, **rules("kernel")}
    )

    def to_onnx(self, g, t, folded=None):
        """An ONNX Conv (``group`` for grouped convolutions) and the activation.

        ``folded``: ``(kernel, bias)`` with a following BatchNormalization folded in, or None.
        """
        from ..saving.onnx_ops import activation, conv

        kernel, bias = folded or (self.params["kernel"], self.params.get("bias"))
        conv(g, t, self, kernel, bias, self.groups, self.name)
        activation(g, t, self.activation, self.name, self.describe())

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        data_format=None,
        dilation_rate=(1, 1),
        groups=1,
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
        self.filters = positive_int(filters, "filters", me)
        self.set_window(kernel_size, strides, padding, dilation_rate)
        self.groups = positive_int(groups, "groups", me)
        if filters % groups:
            raise ValueError(
                f"{me}: `filters` must be divisible by `groups`; got filters={filters} and groups={groups}"
            )
        reject_unsupported(me, data_format=data_format)

    @classmethod
    def overrides_convolution_op(cls) -> bool:
        """True when a subclass brings its own ``convolution_op``."""
        return cls.convolution_op is not Conv2D.convolution_op

    @classmethod
    def has_backward(cls) -> bool:
        # a convolution_op of the user's is differentiated through the ops it records
        return not cls.overrides_convolution_op() and super().has_backward()

    def convolution_op(self, inputs, kernel):
        """The convolution alone, with ``keras.ops`` (Keras's hook for subclasses); no bias, no activation.

        Args:
            inputs: ``(N, H, W, C)`` array or tape tensor.
            kernel: ``(kh, kw, C // groups, F)``, usually ``self.kernel``.

        Returns:
            ``(N, Ho, Wo, F)``, the layer's strides, padding and dilation applied.
        """
        if self.groups == 1:
            return conv(inputs, kernel, self.strides, self.padding, dilation_rate=self.dilation_rate)
        cin, fout = kernel.shape[2], self.filters // self.groups
        parts = [
            conv(
                inputs[..., g * cin : (g + 1) * cin],
                kernel[..., g * fout : (g + 1) * fout],
                self.strides,
                self.padding,
                dilation_rate=self.dilation_rate,
            )
            for g in range(self.groups)
        ]
        return functions.concatenate(parts, axis=-1)

    def call(self, x, training=False):
        if not self.overrides_convolution_op():
            return super().call(x, training)
        # Keras's Conv.call: the override, the bias, the activation, each a recorded op
        y = self.convolution_op(x, self.kernel)
        if self.use_bias:
            y = y + self.bias
        act = self.activation
        return self._with_activity_loss((act if callable(act) else activations.FUNCTIONS[act])(y))

    def backward(self, dy):
        return super().backward(dy)  # here too, so that call and backward stay a pair (Layer.has_backward)

    def output_channels(self, c):
        return self.filters

    def build(self, input_shape):
        super().build(input_shape)
        c = self.input_channels(input_shape)
        if c % self.groups:
            raise ValueError(
                f"{self.describe()}: the input's channels must be divisible by groups={self.groups}; "
                f"got {c} channels (input shape {shape_str(input_shape)})"
            )
        self.add_kernel_and_bias(self.kernel_size + (c // self.groups, self.filters), self.filters)

    def linear_forward(self, x, training=False):
        # groups > 1 on the depthwise or per-group fast path; groups == 1 is conv2d_forward itself
        conv = conv2d_forward if self.groups == 1 else grouped_conv2d_forward_fast
        y, self._cache = conv(
            x,
            self.params["kernel"],
            self.params.get("bias"),
            self.strides,
            self.window_pads(x.shape[1:3]),
            self.dilation_rate,
            self.groups,
        )
        return y

    def linear_forward_relu(self, x, training=False):
        if type(self).linear_forward is not Conv2D.linear_forward:  # a subclass's own product
            return super().linear_forward_relu(x, training)
        # the ReLU in the convolution's own store (the fused kernels), no pass of its own
        conv = conv2d_forward if self.groups == 1 else grouped_conv2d_forward_fast
        y, self._cache = conv(
            x,
            self.params["kernel"],
            self.params.get("bias"),
            self.strides,
            self.window_pads(x.shape[1:3]),
            self.dilation_rate,
            self.groups,
            relu=True,
        )
        return y

    def linear_backward(self, dz):
        backward = conv2d_backward if self.groups == 1 else grouped_conv2d_backward_fast
        dx, dw, db = backward(dz, self._cache, need_dx=self.need_input_grad)
        self.store_grads(dw, db)
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, groups=self.groups)
        return cfg
