"""Conv1D: Keras's 1-D convolution over ``(batch, steps, channels)`` sequences."""

from __future__ import annotations

from ..nn.conv1d import conv1d_backward, conv1d_forward
from ..utils.conv_utils import PaddingCache, conv_output_size, effective_kernel_size, normalize_tuple
from ..utils.config_schema import boolean, string
from ..utils.layer_schema import CHANNELS_LAST_OPT, INITS, activation_name, dim, layer_schema, one, rules
from .base_activated import ActivatedLayer
from .base import shape_str
from .base_conv import positive_int
from .unsupported import reject_unsupported

PADDINGS_1D = ("valid", "same", "causal")


def normalize_padding_1d(value, owner):
    """``'valid'``, ``'same'`` or ``'causal'`` (case-insensitive), else ``ValueError``."""
    if not isinstance(value, str) or value.lower() not in PADDINGS_1D:
        raise ValueError(f"{owner}: `padding` must be 'valid', 'same' or 'causal'; got {value!r}")
    return value.lower()


def output_length(length, kernel, stride, padding, dilation=1):
    """Output steps of a 1-D window: the one 2-D formula, 'causal' counting as 'same' at stride 1
    (its left padding of ``k' - 1`` keeps ``floor((L - 1) / stride) + 1`` steps)."""
    if padding == "causal":
        return (length - 1) // stride + 1
    return conv_output_size(length, kernel, stride, padding, dilation)


class Conv1D(ActivatedLayer):
    """1-D convolution: ``activation(conv(x, kernel) + bias)`` along the steps axis.

    Args:
        filters: output channels ``F``.
        kernel_size: int or ``(k,)``.
        strides: int, default 1.
        padding: ``'valid'`` (default), ``'same'`` or ``'causal'`` (zeros on the left only).
        dilation_rate: int, default 1 (above 1 only with strides 1, as Keras).
        groups: as Conv2D's (default 1).
        activation, use_bias, initializers, regularizers, constraints: as Conv2D.

    Shape:
        ``(N, L, C)`` -> ``(N, Lo, F)``, ``Lo = floor((L - k') / s) + 1`` ('valid'), ``ceil(L / s)``
        ('same'), ``floor((L - 1) / s) + 1`` ('causal'), ``k' = (k - 1) * dilation + 1``.
        Weights: kernel ``(k, C // groups, F)``, bias ``(F,)``.
    """

    input_ndim = 3

    config_schema = layer_schema(
        {
            "filters": dim,
            "kernel_size": one,
            "strides": one,
            "padding": string(8, {"valid", "same", "causal"}),
            "use_bias": boolean,
            "activation": activation_name,
        },
        {**INITS, "dilation_rate": one, "groups": dim, **rules("kernel"), **CHANNELS_LAST_OPT},
    )

    def to_onnx(self, g, t, folded=None):
        """A 1-D ONNX Conv through ``(N, C, L)`` ('causal': the explicit pads ``((k - 1) * d, 0)``)."""
        from ..saving.onnx_ops import activation, sequence_pads, sequence_window

        p, base = self.params, self.name
        k, d = self.kernel_size[0], self.dilation_rate[0]
        weights = [g.const(base + "_W", p["kernel"].transpose(2, 1, 0))]  # (k, C // groups, F) -> (F, C // groups, k)
        if "bias" in p:
            weights.append(g.const(base + "_B", p["bias"]))
        attrs = {"kernel_shape": [k], "strides": list(self.strides), "group": int(self.groups)}
        if d != 1:
            attrs["dilations"] = [d]
        sequence_window(g, t, base, "Conv", weights, **attrs, **sequence_pads(self, k, d))
        activation(g, t, self.activation, base, self.describe())

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
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
        self.kernel_size = normalize_tuple(kernel_size, 1, "kernel_size", me)
        self.strides = normalize_tuple(strides, 1, "strides", me)
        self.dilation_rate = normalize_tuple(dilation_rate, 1, "dilation_rate", me)
        self.padding = normalize_padding_1d(padding, me)
        self.groups = positive_int(groups, "groups", me)
        if filters % groups:
            raise ValueError(
                f"{me}: `filters` must be divisible by `groups`; got filters={filters} and groups={groups}"
            )
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(
                f"{me}: `strides` > 1 is not supported together with `dilation_rate` > 1; got "
                f"strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        reject_unsupported(me, data_format=data_format)
        # the padding string in steps, resolved at build (and again only for a new length)
        self.window_pads = PaddingCache(self.kernel_size, self.strides, self.padding, self.dilation_rate)

    def expected_layout(self):
        return "(batch, steps, channels)"

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, length, c = input_shape
        span = effective_kernel_size(self.kernel_size[0], self.dilation_rate[0])
        if self.padding == "valid" and length is not None and length < span:
            raise ValueError(
                f"{self.describe()}: kernel_size {self.kernel_size} (spanning {span}) is larger than its "
                f"input's {length} steps (input shape {shape_str(input_shape)}, strides={self.strides}, "
                f"padding='valid'); use padding='same' or a smaller kernel"
            )
        lo = (
            None
            if length is None
            else output_length(length, self.kernel_size[0], self.strides[0], self.padding, self.dilation_rate[0])
        )
        return (n, lo, self.filters)

    def build(self, input_shape):
        super().build(input_shape)
        self.window_pads.build(input_shape)
        c = input_shape[-1]
        if c is None:
            raise ValueError(
                f"{self.describe()}: the channel axis of the input must be known; got shape {shape_str(input_shape)}"
            )
        if c % self.groups:
            raise ValueError(
                f"{self.describe()}: the input's channels must be divisible by groups={self.groups}; "
                f"got {c} channels (input shape {shape_str(input_shape)})"
            )
        self.add_kernel_and_bias(self.kernel_size + (c // self.groups, self.filters), self.filters)

    def linear_forward(self, x, training=False):
        y, self._cache = conv1d_forward(
            x,
            self.params["kernel"],
            self.params.get("bias"),
            self.strides[0],
            self.window_pads(x.shape[1:2])[0],
            self.dilation_rate[0],
            self.groups,
        )
        return y

    def linear_backward(self, dz):
        dx, dw, db = conv1d_backward(dz, self._cache, need_dx=self.need_input_grad)
        self.store_grads(dw, db)
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            filters=self.filters,
            kernel_size=tuple(self.kernel_size),
            strides=tuple(self.strides),
            padding=self.padding,
            dilation_rate=tuple(self.dilation_rate),
            groups=self.groups,
        )
        return cfg


Convolution1D = Conv1D
