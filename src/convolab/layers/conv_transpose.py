"""Conv2DTranspose: Keras's transposed 2-D convolution ("deconvolution") over NHWC images."""

from __future__ import annotations

import functools
import numbers

from ..nn.conv_transpose import (
    check_invertible,
    conv2d_transpose_backward,
    conv2d_transpose_forward,
    conv_transpose_output_size,
    conv_transpose_output_sizes,
)
from ..utils.conv_utils import PaddingCache
from ..utils.config_schema import MAX_INT, integer, list_of, nullable
from ..utils.layer_schema import CHANNELS_LAST_OPT, INITS, WINDOW, dim, layer_schema, pair, rules
from .base import shape_str
from .base_conv import BaseConv, positive_int
from .unsupported import reject_unsupported


class Conv2DTranspose(BaseConv):
    """Transposed convolution: the input gradient of a convolution, as a layer (upsampling).

    Args:
        filters: output channels ``F``.
        kernel_size: int or ``(kh, kw)``.
        strides: int or ``(sh, sw)``, default ``(1, 1)``.
        padding: ``'valid'`` (default) or ``'same'``.
        output_padding: ``None`` (default) or int / ``(oh, ow)``, each smaller than its stride.
        dilation_rate: int or ``(dh, dw)``, default 1 (above 1 only with strides 1).
        activation, use_bias, initializers, regularizers, constraints: as Conv2D.

    Shape:
        ``(N, H, W, C)`` -> ``(N, Ho, Wo, F)``; with ``k = (kh - 1) * dh + 1`` and no
        ``output_padding``, ``Ho = H * sh + max(k - sh, 0)`` ('valid') or ``H * sh`` ('same');
        with it, ``Ho = (H - 1) * sh + k - 2 * pad + oh``, ``pad`` 0 ('valid') or ``k // 2``.
        Weights: kernel ``(kh, kw, F, C)`` (Keras's layout), bias ``(F,)``.
    """

    config_schema = layer_schema(
        {
            "filters": dim,
            **WINDOW,
            "dilation_rate": pair,
            "output_padding": nullable(list_of(integer(0, MAX_INT), 2, 2)),
        },
        {**INITS, **rules("kernel"), **CHANNELS_LAST_OPT},
    )

    def to_onnx(self, g, t, folded=None):
        """ONNX ConvTranspose: the pads of the convolution behind it (on the output), and the
        output_padding that makes ONNX's size ``s (H - 1) + op + k' - pads`` Keras's."""
        from ..saving.onnx_ops import activation, to_nchw
        from ..utils.conv_utils import resolve_padding

        _, h, w, _ = self.input_shape
        if h is None or w is None:
            raise ValueError(
                f"export_model: {self.describe()} needs a known input height and width (its padding "
                f"depends on them); got input shape {self.input_shape}"
            )
        out = conv_transpose_output_sizes(
            (h, w), self.kernel_size, self.strides, self.padding, self.output_padding, self.dilation_rate
        )
        pads = resolve_padding(out, self.kernel_size, self.strides, self.padding, self.dilation_rate)
        extra = [
            o - (s * (n - 1) + (k - 1) * d + 1 - lo - hi)
            for o, n, s, k, d, (lo, hi) in zip(out, (h, w), self.strides, self.kernel_size, self.dilation_rate, pads)
        ]
        to_nchw(g, t)
        p, base = self.params, self.name
        inputs = [t.name, g.const(base + "_W", p["kernel"].transpose(3, 2, 0, 1))]  # (kh, kw, F, C) -> (C, F, kh, kw)
        if "bias" in p:
            inputs.append(g.const(base + "_B", p["bias"]))
        attrs = {
            "kernel_shape": list(self.kernel_size),
            "strides": list(self.strides),
            "pads": [pads[0][0], pads[1][0], pads[0][1], pads[1][1]],
        }
        if tuple(self.dilation_rate) != (1, 1):
            attrs["dilations"] = list(self.dilation_rate)
        if any(extra):
            attrs["output_padding"] = extra
        t.name = g.op("ConvTranspose", inputs, base + "_conv_transpose", **attrs)
        activation(g, t, self.activation, base, self.describe())

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        output_padding=None,
        data_format=None,
        dilation_rate=(1, 1),
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
        reject_unsupported(me, data_format=data_format)
        self.output_padding = None
        if output_padding is not None:
            op = (output_padding,) * 2 if isinstance(output_padding, numbers.Integral) else output_padding
            if (
                isinstance(output_padding, bool)
                or not isinstance(op, (tuple, list))
                or len(op) != 2
                or any(isinstance(o, bool) or not isinstance(o, numbers.Integral) or o < 0 for o in op)
            ):
                raise ValueError(
                    f"{me}: `output_padding` must be None, an int >= 0 or a tuple of 2 such ints; "
                    f"got {output_padding!r}"
                )
            op = (int(op[0]), int(op[1]))
            if any(o >= s for o, s in zip(op, self.strides)):
                raise ValueError(
                    f"{me}: each `output_padding` must be smaller than its stride; got "
                    f"output_padding={output_padding!r} with strides={self.strides}"
                )
            self.output_padding = op
        # 'same' pads the convolution behind this one, whose input is this layer's output: the
        # pads are resolved at build for the output's sizes (and again only for a new image size)
        self.window_pads = PaddingCache(
            self.kernel_size,
            self.strides,
            self.padding,
            self.dilation_rate,
            sizes_of=functools.partial(
                _output_sizes, self.kernel_size, self.strides, self.padding, self.output_padding, self.dilation_rate
            ),
        )

    def output_channels(self, c):
        return self.filters

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, h, w, c = input_shape
        op = self.output_padding or (None, None)
        size = [
            None if d is None else conv_transpose_output_size(d, k, s, self.padding, o, r)
            for d, k, s, o, r in zip((h, w), self.kernel_size, self.strides, op, self.dilation_rate)
        ]
        for d, o, k, s, r in zip((h, w), size, self.kernel_size, self.strides, self.dilation_rate):
            problem = None if d is None else check_invertible(d, o, k, s, self.padding, r)
            if problem:
                raise ValueError(
                    f"{self.describe()}: input shape {shape_str(input_shape)} with "
                    f"output_padding={self.output_padding}: {problem}"
                )
        return (n, size[0], size[1], self.filters)

    def build(self, input_shape):
        super().build(input_shape)
        c = self.input_channels(input_shape)
        self.add_kernel_and_bias(self.kernel_size + (self.filters, c), self.filters)

    def linear_forward(self, x, training=False):
        y, self._cache = conv2d_transpose_forward(
            x,
            self.params["kernel"],
            self.params.get("bias"),
            self.strides,
            self.padding,
            self.output_padding,
            self.dilation_rate,
            pads=self.window_pads(x.shape[1:3]),
        )
        return y

    def linear_backward(self, dz):
        dx, dw, db = conv2d_transpose_backward(dz, self._cache, need_dx=self.need_input_grad)
        self.store_grads(dw, db)
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            filters=self.filters, output_padding=None if self.output_padding is None else tuple(self.output_padding)
        )
        return cfg


def _output_sizes(kernel, strides, padding, output_padding, dilation, sizes):
    return conv_transpose_output_sizes(sizes, kernel, strides, padding, output_padding, dilation)


Convolution2DTranspose = Conv2DTranspose
