"""Shared plumbing for layers with an ``activation=`` argument (Conv2D, Dense)."""
from __future__ import annotations

import numpy as np

from .. import activations
from ..ops.activations import activation_backward, activation_forward
from .base import Layer


class ActivatedLayer(Layer):
    """A layer computing ``activation(linear(x))``.

    Subclasses implement ``linear_forward(x, training)`` and ``linear_backward(dz)``
    (which sets ``self.grads`` and returns ``dx``). ``call_logits`` / ``backward_logits``
    skip the activation, so a model can fuse a final softmax with cross-entropy.
    """

    def __init__(self, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation, owner=self.describe())
        self._y = None

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
        cfg["activation"] = self.activation
        return cfg
