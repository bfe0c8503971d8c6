"""Resizing: every image to a fixed height and width (Keras's preprocessing layer)."""

from __future__ import annotations

import math
import numbers

from ..nn.resizing import resizing_backward, resizing_forward
from ..utils.config_schema import fail, boolean, number, string
from ..utils.layer_schema import CHANNELS_LAST_OPT, dim, layer_schema
from .base import Layer
from .base_conv import positive_int
from .unsupported import reject_unsupported

INTERPOLATIONS = ("bilinear", "nearest")


def _false(v, where):
    """``false``: the arguments Keras has and convolab refuses otherwise (in a file, only their default)."""
    if v is not False:
        fail(where, "false", v)
    return v


class Resizing(Layer):
    """Resize images to ``(height, width)`` as ``tf.image.resize`` does (half-pixel centres).

    Args:
        height, width: the output size.
        interpolation: ``'bilinear'`` (default) or ``'nearest'`` (Keras's 'bicubic', 'area' and
            'lanczos' are refused).
        crop_to_aspect_ratio: crop the largest centred window of the target's aspect ratio
            first, so the image is not distorted (default False).
        pad_to_aspect_ratio: pad the short side evenly to the target's aspect ratio first
            (letterboxing; Keras 3's rule, :func:`convolab.nn.resizing.aspect_pad`). Not with
            ``crop_to_aspect_ratio``.
        fill_mode: the padding: only ``'constant'`` (as Keras) when ``pad_to_aspect_ratio``.
        fill_value: the padding's value (default 0).
        antialias: only False (convolab does not implement antialiased downscaling).

    Shape:
        ``(N, H, W, C)`` -> ``(N, height, width, C)``. No weights.
    """

    input_ndim = 4

    config_schema = layer_schema(
        {
            "height": dim,
            "width": dim,
            "interpolation": string(16, {"bilinear", "nearest"}),
            "crop_to_aspect_ratio": boolean,
        },
        {
            "pad_to_aspect_ratio": boolean,
            "antialias": _false,
            "fill_mode": string(16, {"reflect", "wrap", "constant", "nearest"}),
            "fill_value": number(),
            **CHANNELS_LAST_OPT,
        },
    )

    def to_onnx(self, g, t, folded=None):
        """The optional centred aspect-ratio crop (a Slice) or padding (a Pad), then a Resize to
        exact sizes (bilinear: half-pixel linear; nearest: TensorFlow's half-pixel floor)."""
        import numpy as np

        from ..nn.resizing import aspect_pad
        from ..saving.onnx_ops import crop, resize_to
        from .augmentation.crop import center_crop_box

        if self.crop_to_aspect_ratio or self.pad_to_aspect_ratio:
            _, h, w, _ = self.input_shape
            if h is None or w is None:
                which = "crop_to_aspect_ratio" if self.crop_to_aspect_ratio else "pad_to_aspect_ratio"
                raise ValueError(
                    f"export_model: {self.describe()} with {which}=True needs a known input "
                    f"height and width; got input shape {self.input_shape}"
                )
        if self.crop_to_aspect_ratio:
            top, left, ch, cw = center_crop_box(h, w, self.height, self.width)
            crop(g, t, self.name + "_crop", top, h - top - ch, left, w - left - cw)
        elif self.pad_to_aspect_ratio and aspect_pad(h, w, self.height, self.width) != (0, 0):
            ph, pw = aspect_pad(h, w, self.height, self.width)
            pads = [0, 0, ph, pw, 0, 0, ph, pw] if t.nchw else [0, ph, pw, 0, 0, ph, pw, 0]
            inputs = [
                t.name,
                g.const(self.name + "_pads", pads, dtype=np.int64),
                g.const(self.name + "_fill", self.fill_value),
            ]
            t.name = g.op("Pad", inputs, self.name + "_pad", mode="constant")
        if self.interpolation == "nearest":  # input index floor((i + 0.5) * in / out), as nn.resizing
            attrs = {
                "mode": "nearest",
                "coordinate_transformation_mode": "tf_half_pixel_for_nn",
                "nearest_mode": "floor",
            }
        else:
            attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
        resize_to(g, t, self.name, self.height, self.width, **attrs)

    def __init__(
        self,
        height,
        width,
        interpolation="bilinear",
        crop_to_aspect_ratio=False,
        pad_to_aspect_ratio=False,
        fill_mode="constant",
        fill_value=0.0,
        antialias=False,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        me = self.describe()
        self.height = positive_int(height, "height", me)
        self.width = positive_int(width, "width", me)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"{me}: `interpolation` must be one of {', '.join(map(repr, INTERPOLATIONS))} "
                f"(convolab does not implement Keras's others); got {interpolation!r}"
            )
        for arg, value in (
            ("crop_to_aspect_ratio", crop_to_aspect_ratio),
            ("pad_to_aspect_ratio", pad_to_aspect_ratio),
            ("antialias", antialias),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{me}: `{arg}` must be True or False; got {value!r}")
        if antialias:
            raise ValueError(
                f"{me}: antialias=True is not implemented in convolab (it resizes without an "
                "antialiasing filter); pass antialias=False"
            )
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError(f"{me}: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True; got both")
        if pad_to_aspect_ratio and fill_mode != "constant":
            raise ValueError(
                f"{me}: with pad_to_aspect_ratio=True, `fill_mode` must be 'constant' (the only mode "
                f"Keras pads with); got {fill_mode!r}"
            )
        if isinstance(fill_value, bool) or not isinstance(fill_value, numbers.Real) or not math.isfinite(fill_value):
            raise TypeError(f"{me}: `fill_value` must be a finite number; got {fill_value!r}")
        reject_unsupported(me, data_format=data_format)
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.pad_to_aspect_ratio = pad_to_aspect_ratio
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self._cache = None

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def call(self, x, training=False):
        y, self._cache = resizing_forward(
            x,
            (self.height, self.width),
            self.interpolation,
            self.crop_to_aspect_ratio,
            self.pad_to_aspect_ratio,
            self.fill_value,
        )
        return y

    def backward(self, dy):
        return resizing_backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            height=self.height,
            width=self.width,
            interpolation=self.interpolation,
            crop_to_aspect_ratio=self.crop_to_aspect_ratio,
            pad_to_aspect_ratio=self.pad_to_aspect_ratio,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
            antialias=False,
        )
        return cfg
