"""UpSampling2D: enlarge images by whole factors, by repetition or bilinear interpolation."""

from __future__ import annotations

import numbers

from ..nn.resize import (
    bilinear_resize_backward,
    bilinear_resize_forward,
    upsample_nearest_backward,
    upsample_nearest_forward,
)
from ..utils.config_schema import string
from ..utils.layer_schema import channels_last, layer_schema, pair
from .base import Layer
from .unsupported import reject_unsupported

INTERPOLATIONS = ("nearest", "bilinear")


class UpSampling2D(Layer):
    """Repeat rows ``size[0]`` times and columns ``size[1]`` times, or resize bilinearly.

    Args:
        size: int or 2 ints ``(sh, sw)``, default ``(2, 2)``.
        interpolation: ``'nearest'`` (repeat) or ``'bilinear'`` (TensorFlow's
            ``tf.image.resize`` with half-pixel centres, what Keras 3 computes). Keras's
            'bicubic', 'lanczos3', 'lanczos5' are refused.
        data_format: only ``'channels_last'`` (NHWC).

    Shape:
        ``(N, H, W, C)`` -> ``(N, H * sh, W * sw, C)``. No weights.
    """

    input_ndim = 4

    config_schema = layer_schema(
        {"size": pair, "data_format": channels_last, "interpolation": string(16, {"nearest", "bilinear"})}
    )

    def to_onnx(self, g, t, folded=None):
        """An ONNX Resize by the size factors ('nearest': repetition; 'bilinear': half-pixel linear)."""
        from ..saving.onnx_ops import resize

        resize(g, t, self.name, float(self.size[0]), float(self.size[1]), self.interpolation)

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        me = self.describe()
        reject_unsupported(me, data_format=data_format)
        sizes = (size, size) if isinstance(size, numbers.Integral) else size
        if (
            not isinstance(sizes, (tuple, list))
            or len(sizes) != 2
            or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes)
        ):
            raise ValueError(f"{me}: `size` must be a positive int or a tuple of 2 positive ints; got size={size!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"{me}: `interpolation` must be one of {', '.join(map(repr, INTERPOLATIONS))} "
                f"(convolab does not implement Keras's bicubic and lanczos); got {interpolation!r}"
            )
        self.size = (int(sizes[0]), int(sizes[1]))
        self.interpolation = interpolation
        self.data_format = "channels_last"
        self._cache = None

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, h, w, c = input_shape
        return (n, None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)

    def call(self, x, training=False):
        if self.interpolation == "nearest":
            y, self._cache = upsample_nearest_forward(x, self.size)
        else:
            y, self._cache = bilinear_resize_forward(x, (x.shape[1] * self.size[0], x.shape[2] * self.size[1]))
        return y

    def backward(self, dy):
        if self.interpolation == "nearest":
            return upsample_nearest_backward(dy, self._cache)
        return bilinear_resize_backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(size=tuple(self.size), data_format=self.data_format, interpolation=self.interpolation)
        return cfg
