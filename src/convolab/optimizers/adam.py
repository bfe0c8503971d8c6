"""Adam, Keras's formulation (bias correction folded into the step size)."""

from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module

from .. import kernels
from ..kernels import cuda
from ._checks import real
from .base import Optimizer


class Adam(Optimizer):
    """``m += (g - m)(1 - b1)``; ``v += (g**2 - v)(1 - b2)``;
    ``w -= lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)``.

    Defaults as Keras: ``learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False``.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        owner = type(self).__name__
        self.beta_1 = real(owner, "beta_1", beta_1, lo=0, hi=1, hi_open=True)
        self.beta_2 = real(owner, "beta_2", beta_2, lo=0, hi=1, hi_open=True)
        self.epsilon = real(owner, "epsilon", epsilon, lo=0)
        self.amsgrad = bool(amsgrad)

    def build_state(self, param):
        xp = get_array_module(param)
        s = {"momentum": xp.zeros_like(param), "velocity": xp.zeros_like(param)}
        if self.amsgrad:
            s["velocity_hat"] = xp.zeros_like(param)
        return s

    def update(self, param, grad, state, tmp):
        xp = get_array_module(param)
        t = param.dtype.type
        step = self.iterations + 1
        alpha = self.learning_rate * math.sqrt(1 - self.beta_2**step) / (1 - self.beta_1**step)
        m, v = state["momentum"], state["velocity"]
        if not self.amsgrad and xp is not np:  # one fused kernel per variable on the GPU
            cuda.adam(
                param,
                xp.ascontiguousarray(grad, dtype=param.dtype),
                m,
                v,
                alpha,
                self.beta_1,
                self.beta_2,
                self.epsilon,
            )
            return
        if not self.amsgrad and kernels.usable(param, grad, m, v):
            kernels.adam_f32(param, grad, m, v, alpha, self.beta_1, self.beta_2, self.epsilon)
            return
        xp.subtract(grad, m, out=tmp)
        tmp *= t(1 - self.beta_1)
        m += tmp
        xp.multiply(grad, grad, out=tmp)
        tmp -= v
        tmp *= t(1 - self.beta_2)
        v += tmp
        if self.amsgrad:
            vh = state["velocity_hat"]
            xp.maximum(vh, v, out=vh)
            v = vh
        xp.sqrt(v, out=tmp)
        tmp += t(self.epsilon)
        xp.divide(m, tmp, out=tmp)
        tmp *= t(alpha)
        param -= tmp

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }
