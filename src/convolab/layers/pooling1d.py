"""MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D over ``(N, L, C)``."""

from __future__ import annotations

from ..nn.conv1d import global_pool1d_backward, global_pool1d_forward, pool1d_backward, pool1d_forward
from ..utils.conv_utils import PaddingCache, conv_output_size, normalize_padding, normalize_tuple
from ..utils.config_schema import boolean
from ..utils.layer_schema import CHANNELS_LAST_OPT, POOL_1D, layer_schema
from .base import Layer, shape_str
from .unsupported import reject_unsupported


class _Pooling1D(Layer):
    input_ndim = 3
    _mode = None

    def to_onnx(self, g, t, folded=None):
        """A 1-D ONNX MaxPool or AveragePool (padding left out of the mean) through ``(N, C, L)``."""
        from ..saving.onnx_ops import sequence_pads, sequence_window

        k = self.pool_size[0]
        attrs = {"kernel_shape": [k], "strides": list(self.strides), **sequence_pads(self, k)}
        if self._mode == "avg":
            sequence_window(g, t, self.name, "AveragePool", [], count_include_pad=0, **attrs)
        else:
            sequence_window(g, t, self.name, "MaxPool", [], **attrs)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        me = self.describe()
        self.pool_size = normalize_tuple(pool_size, 1, "pool_size", me)
        # Keras: strides=None means strides = pool_size
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 1, "strides", me)
        self.padding = normalize_padding(padding, me)
        reject_unsupported(me, data_format=data_format)
        # the padding string in steps, resolved at build (and again only for a new length)
        self.window_pads = PaddingCache(self.pool_size, self.strides, self.padding)
        self._cache = None

    def expected_layout(self):
        return "(batch, steps, channels)"

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, length, c = input_shape
        if self.padding == "valid" and length is not None and length < self.pool_size[0]:
            raise ValueError(
                f"{self.describe()}: pool_size {self.pool_size} is larger than its input's {length} "
                f"steps (input shape {shape_str(input_shape)}, strides={self.strides}, padding='valid')"
            )
        lo = None if length is None else conv_output_size(length, self.pool_size[0], self.strides[0], self.padding)
        return (n, lo, c)

    def build(self, input_shape):
        super().build(input_shape)
        self.window_pads.build(input_shape)

    def call(self, x, training=False):
        y, self._cache = pool1d_forward(
            x, self.pool_size[0], self.strides[0], self.window_pads(x.shape[1:2])[0], type(self)._mode
        )
        return y

    def backward(self, dy):
        return pool1d_backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_size=tuple(self.pool_size), strides=tuple(self.strides), padding=self.padding)
        return cfg


class MaxPooling1D(_Pooling1D):
    """Maximum over windows of ``pool_size`` steps (default 2, strides = pool_size, 'valid').

    Shape: ``(N, L, C)`` -> ``(N, Lo, C)``, ``Lo = floor((L - p) / s) + 1`` ('valid') or ``ceil(L / s)``.
    """

    _mode = "max"

    config_schema = layer_schema(POOL_1D, CHANNELS_LAST_OPT)


class AveragePooling1D(_Pooling1D):
    """Mean over windows of ``pool_size`` steps; 'same' padding is left out of each mean.

    Shape: as :class:`MaxPooling1D`.
    """

    _mode = "avg"

    config_schema = layer_schema(POOL_1D, CHANNELS_LAST_OPT)


class _GlobalPooling1D(Layer):
    input_ndim = 3
    _mode = None

    def to_onnx(self, g, t, folded=None):
        """ONNX ReduceMean/ReduceMax over the steps (axis 1)."""
        op = "ReduceMean" if self._mode == "avg" else "ReduceMax"
        t.name = g.op(op, [t.name], self.name, axes=[1], keepdims=int(self.keepdims))
        if not self.keepdims:
            t.rank = 2

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        me = self.describe()
        reject_unsupported(me, data_format=data_format)
        if not isinstance(keepdims, bool):
            raise TypeError(f"{me}: `keepdims` must be True or False; got {keepdims!r}")
        self.keepdims = keepdims
        self._cache = None

    def expected_layout(self):
        return "(batch, steps, channels)"

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, length, c = input_shape
        if length == 0:
            raise ValueError(f"{self.describe()} needs at least one step to pool; got shape {shape_str(input_shape)}")
        return (n, 1, c) if self.keepdims else (n, c)

    def call(self, x, training=False):
        y, self._cache = global_pool1d_forward(x, self.keepdims, type(self)._mode)
        return y

    def backward(self, dy):
        return global_pool1d_backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg["keepdims"] = self.keepdims
        return cfg


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean of each channel over the steps. Shape: ``(N, L, C)`` -> ``(N, C)`` (``(N, 1, C)`` with keepdims)."""

    _mode = "avg"

    config_schema = layer_schema({"keepdims": boolean}, CHANNELS_LAST_OPT)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Maximum of each channel over the steps (the gradient goes to the first maximum). Shape: as
    :class:`GlobalAveragePooling1D`."""

    _mode = "max"

    config_schema = layer_schema({"keepdims": boolean}, CHANNELS_LAST_OPT)


MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
