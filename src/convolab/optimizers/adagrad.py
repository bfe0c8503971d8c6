"""Adagrad, Keras's formulation (epsilon inside the square root)."""

from __future__ import annotations

from ..backend import get_array_module

from ._checks import real
from .base import Optimizer


class Adagrad(Optimizer):
    """``a += g**2``; ``w -= lr * g / sqrt(a + eps)``, with ``a`` starting at ``initial_accumulator_value``.

    Defaults as Keras: ``learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7``.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        owner = type(self).__name__
        self.initial_accumulator_value = real(owner, "initial_accumulator_value", initial_accumulator_value, lo=0)
        self.epsilon = real(owner, "epsilon", epsilon, lo=0)

    def build_state(self, param):
        xp = get_array_module(param)
        return {"accumulator": xp.full_like(param, self.initial_accumulator_value)}

    def update(self, param, grad, state, tmp):
        xp = get_array_module(param)
        t = param.dtype.type
        a = state["accumulator"]
        xp.multiply(grad, grad, out=tmp)
        a += tmp
        xp.add(a, t(self.epsilon), out=tmp)
        xp.sqrt(tmp, out=tmp)
        xp.divide(t(self.learning_rate) * grad, tmp, out=tmp)
        param -= tmp

    def get_config(self):
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }
