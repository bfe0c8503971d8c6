"""MaxPooling2D and AveragePooling2D over NHWC images."""

from __future__ import annotations

from ..nn.pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from ..utils.conv_utils import PaddingCache, conv_output_size, normalize_padding, normalize_tuple
from ..utils.layer_schema import POOL, layer_schema
from .base import Layer, shape_str
from .unsupported import reject_unsupported


class _Pooling2D(Layer):
    input_ndim = 4
    _forward = None
    _backward = None

    def to_onnx(self, g, t, folded=None):
        """ONNX MaxPool, or AveragePool without the padding in the mean (``count_include_pad=0``)."""
        from ..saving.onnx_ops import to_nchw, window_attrs

        to_nchw(g, t)
        attrs = window_attrs(self, self.pool_size)
        if self._forward is avg_pool_forward:
            t.name = g.op("AveragePool", [t.name], self.name, count_include_pad=0, **attrs)
        else:
            t.name = g.op("MaxPool", [t.name], self.name, **attrs)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        me = self.describe()
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size", me)
        # Keras: strides=None means strides = pool_size.
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 2, "strides", me)
        self.padding = normalize_padding(padding, me)
        reject_unsupported(me, data_format=data_format)
        # the padding string in pixels, resolved at build (and again only for a new image size)
        self.window_pads = PaddingCache(self.pool_size, self.strides, self.padding)
        self._cache = None
        self.last_output = None  # the last call's output: models/stack_step.py masks a ReLU's gradient with it

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, h, w, c = input_shape
        ph, pw = self.pool_size
        if self.padding == "valid" and ((h is not None and h < ph) or (w is not None and w < pw)):
            raise ValueError(
                f"{self.describe()}: pool_size {self.pool_size} is larger than its input {(h, w)} "
                f"(input shape {shape_str(input_shape)}, strides={self.strides}, padding='valid')"
            )
        ho = None if h is None else conv_output_size(h, ph, self.strides[0], self.padding)
        wo = None if w is None else conv_output_size(w, pw, self.strides[1], self.padding)
        return (n, ho, wo, c)

    def build(self, input_shape):
        super().build(input_shape)
        self.window_pads.build(input_shape)

    def call(self, x, training=False):
        y, self._cache = type(self)._forward(x, self.pool_size, self.strides, self.window_pads(x.shape[1:3]))
        self.last_output = y
        return y

    def backward(self, dy):
        return type(self)._backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_size=tuple(self.pool_size), strides=tuple(self.strides), padding=self.padding)
        return cfg


class MaxPooling2D(_Pooling2D):
    """Maximum over ``pool_size`` windows (default 2x2, strides = pool_size, 'valid').

    Shape: ``(N, H, W, C)`` -> ``(N, Ho, Wo, C)``, ``Ho = floor((H - ph) / sh) + 1`` ('valid')
    or ``ceil(H / sh)`` ('same').
    """

    _forward = staticmethod(max_pool_forward)
    _backward = staticmethod(max_pool_backward)

    config_schema = layer_schema(POOL)


class AveragePooling2D(_Pooling2D):
    """Mean over ``pool_size`` windows; 'same' padding is left out of each mean.

    Shape: as :class:`MaxPooling2D`.
    """

    _forward = staticmethod(avg_pool_forward)
    _backward = staticmethod(avg_pool_backward)

    config_schema = layer_schema(POOL)


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
