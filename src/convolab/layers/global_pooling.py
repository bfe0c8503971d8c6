"""GlobalAveragePooling2D and GlobalMaxPooling2D: one value per channel of an NHWC image."""

from __future__ import annotations

from ..nn.global_pool import (
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
)
from ..utils.layer_schema import GLOBAL_POOL, layer_schema
from .base import Layer, shape_str
from .unsupported import reject_unsupported


class _GlobalPooling2D(Layer):
    input_ndim = 4
    _forward = None
    _backward = None

    def to_onnx(self, g, t, folded=None):
        """Mean/max over H and W: ONNX's GlobalAveragePool/GlobalMaxPool on an NCHW tensor, or
        ReduceMean/ReduceMax over axes 1 and 2 on an NHWC one (no transpose needed)."""
        average = self._forward is global_avg_pool_forward
        if t.nchw:
            t.name = g.op("GlobalAveragePool" if average else "GlobalMaxPool", [t.name], self.name)  # (N, C, 1, 1)
            if not self.keepdims:
                t.name = g.op("Flatten", [t.name], self.name + "_flatten", axis=1)
                t.rank, t.nchw = 2, False
        else:
            # opset 13: ReduceMean/ReduceMax take the axes as an attribute
            op = "ReduceMean" if average else "ReduceMax"
            t.name = g.op(op, [t.name], self.name, axes=[1, 2], keepdims=int(self.keepdims))
            if not self.keepdims:
                t.rank = 2

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

    config_schema = layer_schema(GLOBAL_POOL)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Maximum of each channel over all pixels; the gradient goes to the first maximum.

    Args and shape: as :class:`GlobalAveragePooling2D`.
    """

    _forward = staticmethod(global_max_pool_forward)
    _backward = staticmethod(global_max_pool_backward)

    config_schema = layer_schema(GLOBAL_POOL)


GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
