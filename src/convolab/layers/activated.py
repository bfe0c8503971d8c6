"""Shared plumbing for layers with an ``activation=`` argument (Conv2D, Dense)."""
from __future__ import annotations

import numpy as np

from .. import activations, initializers
from ..ops.activations import activation_backward, activation_forward
from .base import Layer


class ActivatedLayer(Layer):
    """A layer computing ``activation(x * kernel + bias)`` (Conv2D, Dense).

    Subclasses implement ``linear_forward(x, training)`` and ``linear_backward(dz)``
    (which sets ``self.grads`` and returns ``dx``). ``call_logits`` / ``backward_logits``
    skip the activation, so a model can fuse a final softmax with cross-entropy.
    """

    def __init__(self, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        me = self.describe()
        self.activation = activations.get(activation, owner=me)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, me)
        self.bias_initializer = initializers.get(bias_initializer, me)
        # names go into get_config; a callable initializer cannot be saved
        self._initializer_names = {key: value for key, value in (("kernel_initializer", kernel_initializer),
                                                                  ("bias_initializer", bias_initializer))
                                   if isinstance(value, str)}
        self._y = None
        self._cache = None

    def add_kernel_and_bias(self, kernel_shape, units):
        self._add_param("kernel", kernel_shape, self.kernel_initializer)
        if self.use_bias:
            self._add_param("bias", (units,), self.bias_initializer)

    @property
    def kernel(self):
        return self.params["kernel"]

    @property
    def bias(self):
        return self.params.get("bias")

    def store_grads(self, dw, db):
        self.grads["kernel"] = dw
        if self.use_bias:
            self.grads["bias"] = db

    def call(self, x, training=False):
        z = self.linear_forward(x, training)
        if self.activation == "relu":
            # z is a fresh GEMM output owned by this layer: rectify it in place.
            y = np.maximum(z, 0, out=z)
        else:
            y = activation_forward(self.activation, z)
        self._y = y
        return y

    def backward(self, dy):
        return self.linear_backward(activation_backward(self.activation, dy, self._y))

    def call_logits(self, x, training=False):
        return self.linear_forward(x, training)

    def backward_logits(self, dz):
        return self.linear_backward(dz)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(activation=self.activation, use_bias=self.use_bias, **self._initializer_names)
        return cfg
