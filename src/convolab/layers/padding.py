"""ZeroPadding2D and Cropping2D: add or remove rows and columns at the image borders."""

from __future__ import annotations

import numbers

from ..nn.padding import crop2d_backward, crop2d_forward, zero_pad2d_backward, zero_pad2d_forward
from ..utils.layer_schema import border, channels_last, layer_schema
from .base import Layer, shape_str
from .unsupported import reject_unsupported


def _is_size(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0


def normalize_borders(value, owner, arg):
    """Keras's three spellings of border sizes as ``((top, bottom), (left, right))``.

    ``n`` (all four), ``(h, w)`` (top = bottom = h, left = right = w) or
    ``((top, bottom), (left, right))``; every size a non-negative int.
    """

    def fail():
        raise ValueError(
            f"{owner}: `{arg}` must be an int, a tuple of 2 ints or a tuple of 2 tuples of 2 ints "
            f"((top, bottom), (left, right)), all >= 0; got {arg}={value!r}"
        )

    if _is_size(value):
        return (int(value),) * 2, (int(value),) * 2
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        fail()
    if all(_is_size(v) for v in value):
        return (int(value[0]),) * 2, (int(value[1]),) * 2
    if all(isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_size(s) for s in v) for v in value):
        return tuple(tuple(int(s) for s in v) for v in value)
    fail()


class ZeroPadding2D(Layer):
    """Pad every image with zeros: ``padding`` rows above/below and columns left/right.

    Args:
        padding: int, 2 ints ``(h, w)`` (symmetric) or ``((top, bottom), (left, right))``;
            default ``(1, 1)``.
        data_format: only ``'channels_last'`` (NHWC).

    Shape:
        ``(N, H, W, C)`` -> ``(N, H + top + bottom, W + left + right, C)``. No weights.
    """

    input_ndim = 4

    config_schema = layer_schema({"padding": border, "data_format": channels_last})

    def to_onnx(self, g, t, folded=None):
        """An ONNX Pad with zeros, in whichever layout the tensor is."""
        import numpy as np

        (top, bottom), (left, right) = self.padding
        pads = [0, 0, top, left, 0, 0, bottom, right] if t.nchw else [0, top, left, 0, 0, bottom, right, 0]
        t.name = g.op("Pad", [t.name, g.const(self.name + "_pads", pads, dtype=np.int64)], self.name, mode="constant")

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        reject_unsupported(self.describe(), data_format=data_format)
        self.padding = normalize_borders(padding, self.describe(), "padding")
        self.data_format = "channels_last"
        self._cache = None

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, h, w, c = input_shape
        (t, b), (l, r) = self.padding
        return (n, None if h is None else h + t + b, None if w is None else w + l + r, c)

    def call(self, x, training=False):
        y, self._cache = zero_pad2d_forward(x, self.padding)
        return y

    def backward(self, dy):
        return zero_pad2d_backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(padding=tuple(tuple(p) for p in self.padding), data_format=self.data_format)
        return cfg


class Cropping2D(Layer):
    """Remove ``cropping`` rows at the top/bottom and columns at the left/right of every image.

    Args:
        cropping: int, 2 ints ``(h, w)`` (symmetric) or ``((top, bottom), (left, right))``;
            default ``((0, 0), (0, 0))``.
        data_format: only ``'channels_last'`` (NHWC).

    Shape:
        ``(N, H, W, C)`` -> ``(N, H - top - bottom, W - left - right, C)``; at least one row and
        one column must remain. No weights.
    """

    input_ndim = 4

    config_schema = layer_schema({"cropping": border, "data_format": channels_last})

    def to_onnx(self, g, t, folded=None):
        """An ONNX Slice along H and W."""
        from ..saving.onnx_ops import crop

        (top, bottom), (left, right) = self.cropping
        crop(g, t, self.name, top, bottom, left, right)

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        reject_unsupported(self.describe(), data_format=data_format)
        self.cropping = normalize_borders(cropping, self.describe(), "cropping")
        self.data_format = "channels_last"
        self._cache = None

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, h, w, c = input_shape
        (t, b), (l, r) = self.cropping
        for size, cut, axis in ((h, t + b, "height"), (w, l + r, "width")):
            if size is not None and cut >= size:
                raise ValueError(
                    f"{self.describe()}: cropping={self.cropping} removes {cut} of {size} pixels along "
                    f"the {axis}, leaving nothing; input shape {shape_str(input_shape)}"
                )
        return (n, None if h is None else h - t - b, None if w is None else w - l - r, c)

    def check_call_shape(self, shape) -> None:
        super().check_call_shape(shape)
        self.compute_output_shape((None,) + tuple(shape[1:]))  # built for unknown sizes, the data must fit

    def call(self, x, training=False):
        y, self._cache = crop2d_forward(x, self.cropping)
        return y

    def backward(self, dy):
        return crop2d_backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(cropping=tuple(tuple(p) for p in self.cropping), data_format=self.data_format)
        return cfg
