"""Conv2D: Keras's 2-D convolution layer over NHWC images."""
from __future__ import annotations

from ..ops.conv import conv2d_backward, conv2d_forward
from ..utils.conv_utils import conv_output_size, normalize_padding, normalize_tuple
from .activated import ActivatedLayer
from .base import shape_str
from .unsupported import reject_unsupported


class Conv2D(ActivatedLayer):
    """2-D convolution: ``activation(im2col(x) @ kernel + bias)``.

    Args:
        filters: number of output channels ``F``.
        kernel_size: int or ``(kh, kw)``.
        strides: int or ``(sh, sw)``, default ``(1, 1)``.
        padding: ``'valid'`` (default) or ``'same'``.
        activation: name or ``None`` (linear).
        use_bias: add a bias per filter (default True).
        kernel_initializer: default ``'glorot_uniform'``; bias_initializer: default ``'zeros'``.

    Shape:
        input ``(N, H, W, C)``; output ``(N, Ho, Wo, F)`` with ``Ho = floor((H - kh) / sh) + 1``
        for ``'valid'`` and ``ceil(H / sh)`` for ``'same'``. Weights: kernel ``(kh, kw, C, F)``,
        bias ``(F,)``.
    """

    input_ndim = 4

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        me = self.describe()
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"{me}: `filters` must be a positive int; got {filters!r}")
        self.filters = filters
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size", me)
        self.strides = normalize_tuple(strides, 2, "strides", me)
        self.padding = normalize_padding(padding, me)
        reject_unsupported(me, data_format=data_format, dilation_rate=dilation_rate, groups=groups,
                           kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                           activity_regularizer=activity_regularizer,
                           kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        n, h, w, c = input_shape
        kh, kw = self.kernel_size
        if self.padding == "valid" and ((h is not None and h < kh) or (w is not None and w < kw)):
            raise ValueError(
                f"{self.describe()}: kernel_size {self.kernel_size} is larger than its input "
                f"{(h, w)} (input shape {shape_str(input_shape)}, strides={self.strides}, "
                f"padding='valid'); use padding='same' or a smaller kernel"
            )
        ho = None if h is None else conv_output_size(h, kh, self.strides[0], self.padding)
        wo = None if w is None else conv_output_size(w, kw, self.strides[1], self.padding)
        return (n, ho, wo, self.filters)

    def build(self, input_shape):
        super().build(input_shape)
        c = input_shape[-1]
        if c is None:
            raise ValueError(f"{self.describe()}: the channel axis of the input must be known; got shape {shape_str(input_shape)}")
        self.add_kernel_and_bias(self.kernel_size + (c, self.filters), self.filters)

    def linear_forward(self, x, training=False):
        y, self._cache = conv2d_forward(x, self.params["kernel"], self.params.get("bias"),
                                        self.strides, self.padding)
        return y

    def linear_backward(self, dz):
        dx, dw, db = conv2d_backward(dz, self._cache, need_dx=self.need_input_grad)
        self.store_grads(dw, db)
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, kernel_size=list(self.kernel_size), strides=list(self.strides),
                   padding=self.padding)
        return cfg
