"""RandomCrop: a random window of a fixed size in training; the centred largest window of the
target aspect ratio, resized, at inference."""

from __future__ import annotations

import numbers

from ...nn.padding import crop2d_backward, crop2d_forward
from ...nn.resize import bilinear_resize_backward, bilinear_resize_forward
from ...utils.layer_schema import dim, layer_schema, seed
from .base import AugmentationLayer


def center_crop_box(in_h, in_w, height, width):
    """``(top, left, crop_h, crop_w)``: the largest centred window of aspect ``height / width``
    (Keras's ``crop_to_aspect_ratio`` rule, sizes truncated as Keras truncates them)."""
    crop_h = max(min(in_h, int(in_w * height / width)), 1)
    crop_w = max(min(in_w, int(in_h * width / height)), 1)
    return (in_h - crop_h) // 2, (in_w - crop_w) // 2, crop_h, crop_w


class RandomCrop(AugmentationLayer):
    """Crop images to ``(height, width)``.

    In training, when the image is larger than the target in both axes, one random window
    (the same for the whole batch, as in Keras) is cut out. At inference, and in training when
    the image is not larger in both axes, the largest centred window with the target's aspect
    ratio is cut out and resized bilinearly to ``(height, width)`` (``tf.image.resize``
    with half-pixel centres), as Keras 3 documents.

    Args:
        height, width: the output size, positive ints.
        seed: optional int (see :class:`AugmentationLayer`).

    Shape:
        ``(N, H, W, C)`` -> ``(N, height, width, C)``. No weights.
    """

    config_schema = layer_schema({"height": dim, "width": dim, "seed": seed})

    def to_onnx(self, g, t, folded=None):
        """At inference: the centred window of the target aspect ratio (a Slice), resized bilinearly."""
        from ...saving.onnx_ops import crop, resize_to

        _, h, w, _ = self.input_shape
        if h is None or w is None:
            raise ValueError(f"export_model: {self.describe()} needs a known input height and width")
        top, left, ch, cw = center_crop_box(h, w, self.height, self.width)
        crop(g, t, self.name + "_crop", top, h - top - ch, left, w - left - cw)
        if (ch, cw) != (self.height, self.width):
            resize_to(
                g, t, self.name, self.height, self.width, mode="linear", coordinate_transformation_mode="half_pixel"
            )

    def __init__(self, height, width, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        for key, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{self.describe()}: `{key}` must be a positive int; got {key}={v!r}")
        self.height, self.width = int(height), int(width)

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def call(self, x, training=False):
        _, h, w, _ = x.shape
        if training and h > self.height and w > self.width:
            rng = self.generator()
            top = int(rng.integers(0, h - self.height + 1))
            left = int(rng.integers(0, w - self.width + 1))
            box = (top, left, self.height, self.width)
        else:
            box = center_crop_box(h, w, self.height, self.width)
        top, left, ch, cw = box
        y, crop_cache = crop2d_forward(x, ((top, h - top - ch), (left, w - left - cw)))
        resize_cache = None
        if (ch, cw) != (self.height, self.width):
            y, resize_cache = bilinear_resize_forward(y, (self.height, self.width))
        self._cache = (crop_cache, resize_cache)
        return y

    def backward(self, dy):
        crop_cache, resize_cache = self._cache
        if resize_cache is not None:
            dy = bilinear_resize_backward(dy, resize_cache)
        return crop2d_backward(dy, crop_cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(height=self.height, width=self.width)
        return cfg
