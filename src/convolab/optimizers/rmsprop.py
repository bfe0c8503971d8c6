"""RMSprop, Keras's formulation (epsilon inside the square root)."""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module

from .. import kernels
from ..kernels import cuda
from .base import Optimizer


class RMSprop(Optimizer):
    """``v = rho * v + (1 - rho) * g**2``; ``w -= lr * g / sqrt(v + eps)`` (with optional momentum).

    Defaults as Keras: ``learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False``.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)

    def build_state(self, param):
        xp = get_array_module(param)
        s = {"velocity": xp.zeros_like(param)}
        if self.momentum:
            s["momentum"] = xp.zeros_like(param)
        if self.centered:
            s["average_gradient"] = xp.zeros_like(param)
        return s

    def update(self, param, grad, state, tmp):
        xp = get_array_module(param)
        t = param.dtype.type
        v = state["velocity"]
        if not self.momentum and not self.centered and xp is not np:  # one fused kernel on the GPU
            cuda.rmsprop(
                param, xp.ascontiguousarray(grad, dtype=param.dtype), v, self.learning_rate, self.rho, self.epsilon
            )
            return
        if not self.momentum and not self.centered and kernels.usable(param, grad, v):
            kernels.rmsprop_f32(param, grad, v, self.learning_rate, self.rho, self.epsilon)
            return
        v *= t(self.rho)
        xp.multiply(grad, grad, out=tmp)
        tmp *= t(1 - self.rho)
        v += tmp
        if self.centered:
            a = state["average_gradient"]
            a *= t(self.rho)
            a += t(1 - self.rho) * grad
            xp.multiply(a, a, out=tmp)
            xp.subtract(v, tmp, out=tmp)
            tmp += t(self.epsilon)
        else:
            xp.add(v, t(self.epsilon), out=tmp)
        xp.sqrt(tmp, out=tmp)
        xp.divide(grad, tmp, out=tmp)
        tmp *= t(self.learning_rate)
        if self.momentum:
            m = state["momentum"]
            m *= t(self.momentum)
            m += tmp
            param -= m
        else:
            param -= tmp

    def get_config(self):
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }
