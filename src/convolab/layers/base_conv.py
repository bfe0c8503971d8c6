"""What Conv2D, DepthwiseConv2D and SeparableConv2D share: the window arguments and the output shape."""

from __future__ import annotations

from ..utils.conv_utils import PaddingCache, conv_output_size, effective_kernel_size, normalize_padding, normalize_tuple
from .base_activated import ActivatedLayer
from .base import shape_str


def positive_int(value, arg_name, owner):
    """``value`` if it is a positive int (bools are not), else ``ValueError`` naming ``owner``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: `{arg_name}` must be a positive int; got {value!r}")
    return value


class BaseConv(ActivatedLayer):
    """A 2-D convolution over NHWC images: ``kernel_size``, ``strides``, ``padding``, ``dilation_rate``.

    Subclasses implement ``output_channels(c)`` (channels out for ``c`` channels in).
    """

    input_ndim = 4

    def set_window(self, kernel_size, strides, padding, dilation_rate):
        """Validate and keep the window arguments (Keras's checks, in ``__init__``)."""
        me = self.describe()
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size", me)
        self.strides = normalize_tuple(strides, 2, "strides", me)
        self.padding = normalize_padding(padding, me)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate", me)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            # Keras refuses the combination (TensorFlow's convolution does not implement it)
            raise ValueError(
                f"{me}: `strides` > 1 is not supported together with `dilation_rate` > 1; "
                f"expected one of them to be 1; got strides={self.strides} and "
                f"dilation_rate={self.dilation_rate}"
            )
        # the padding string in pixels, resolved at build (and again only for a new image size)
        self.window_pads = PaddingCache(self.kernel_size, self.strides, self.padding, self.dilation_rate)

    def build(self, input_shape):
        super().build(input_shape)
        self.window_pads.build(input_shape)

    def output_channels(self, c):
        raise NotImplementedError

    def input_channels(self, input_shape):
        """The channel count of ``input_shape``, which must be known to build the weights."""
        c = input_shape[-1]
        if c is None:
            raise ValueError(
                f"{self.describe()}: the channel axis of the input must be known; got shape {shape_str(input_shape)}"
            )
        return c

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, h, w, c = input_shape
        span = tuple(effective_kernel_size(k, d) for k, d in zip(self.kernel_size, self.dilation_rate))
        if self.padding == "valid" and ((h is not None and h < span[0]) or (w is not None and w < span[1])):
            dilated = "" if span == self.kernel_size else f" (spanning {span} with dilation_rate={self.dilation_rate})"
            raise ValueError(
                f"{self.describe()}: kernel_size {self.kernel_size}{dilated} is larger than its input "
                f"{(h, w)} (input shape {shape_str(input_shape)}, strides={self.strides}, "
                f"padding='valid'); use padding='same' or a smaller kernel"
            )
        ho = (
            None
            if h is None
            else conv_output_size(h, self.kernel_size[0], self.strides[0], self.padding, self.dilation_rate[0])
        )
        wo = (
            None
            if w is None
            else conv_output_size(w, self.kernel_size[1], self.strides[1], self.padding, self.dilation_rate[1])
        )
        return (n, ho, wo, None if c is None else self.output_channels(c))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            kernel_size=tuple(self.kernel_size),
            strides=tuple(self.strides),
            padding=self.padding,
            dilation_rate=tuple(self.dilation_rate),
        )
        return cfg
