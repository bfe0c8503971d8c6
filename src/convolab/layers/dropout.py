"""Dropout: Keras's inverted dropout, active only when ``training=True``."""

from __future__ import annotations

import numbers

import numpy as np

from ..nn.dropout import dropout_backward, dropout_forward
from .. import backend, random
from ..random import get_generator
from ..utils.config_schema import number
from ..utils.layer_schema import layer_schema, seed
from .base import Layer
from .unsupported import reject_unsupported


class Dropout(Layer):
    """Zero a fraction ``rate`` of inputs at training time, scaling the rest by ``1 / (1 - rate)``.

    Args:
        rate: float in ``[0, 1)``.
        seed: optional int for a private generator; otherwise convolab's global one.

    Shape: output = input.
    """

    config_schema = layer_schema({"rate": number(0, 1, hi_open=True), "seed": seed})

    def to_onnx(self, g, t, folded=None):
        """The identity at inference: an ONNX Identity."""
        t.name = g.op("Identity", [t.name], self.name)

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"{self.describe()}: `rate` must be a float in [0, 1); got {rate!r}")
        reject_unsupported(self.describe(), noise_shape=noise_shape)
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._device_rng = None
        self._mask = None

    def _generator(self, x):
        if not backend.is_device_array(x):
            return self._rng if self._rng is not None else get_generator()
        if self.seed is None:
            return random.device_generator()
        if self._device_rng is None:  # a private GPU stream for a seeded layer, as on the host
            self._device_rng = random.device_generator(self.seed)
        return self._device_rng

    def call(self, x, training=False):
        rng = self._generator(x)
        y, self._mask = dropout_forward(x, self.rate, rng, training)
        return y

    def backward(self, dy):
        return dropout_backward(dy, self._mask)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(rate=self.rate, seed=self.seed)
        return cfg
