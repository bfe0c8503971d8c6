"""GlobalAveragePooling2D and GlobalMaxPooling2D: one value per channel of an NHWC image."""

from __future__ import annotations

from ..nn.global_pool import (
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
)
from .base import Layer, shape_str
from .unsupported import reject_unsupported


class _GlobalPooling2D(Layer):
    input_ndim = 4
    _forward = None
    _backward = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        me = self.describe()
        reject_unsupported(me, data_format=data_format)
        if not isinstance(keepdims, bool):
            raise TypeError(f"{me}: `keepdims` must be True or False; got {keepdims!r}")
        self.data_format = "channels_last"
        self.keepdims = keepdims
        self._cache = None

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, h, w, c = input_shape
        if h == 0 or w == 0:
            raise ValueError(f"{self.describe()} needs at least one pixel to pool; got shape {shape_str(input_shape)}")
        return (n, 1, 1, c) if self.keepdims else (n, c)

    def call(self, x, training=False):
        y, self._cache = type(self)._forward(x, self.keepdims)
        return y

    def backward(self, dy):
        return type(self)._backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(data_format=self.data_format, keepdims=self.keepdims)
        return cfg


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean of each channel over all pixels.

    Args:
        data_format: ``None`` or ``'channels_last'`` (the only layout convolab computes in).
        keepdims: keep the pooled axes with length 1 (default False).

    Shape:
        ``(N, H, W, C)`` -> ``(N, C)``, or ``(N, 1, 1, C)`` with ``keepdims=True``. No weights.
    """

    _forward = staticmethod(global_avg_pool_forward)
    _backward = staticmethod(global_avg_pool_backward)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Maximum of each channel over all pixels; the gradient goes to the first maximum.

    Args and shape: as :class:`GlobalAveragePooling2D`.
    """

    _forward = staticmethod(global_max_pool_forward)
    _backward = staticmethod(global_max_pool_backward)


GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
