"""Adadelta, Keras's formulation (a learning rate on top of Zeiler's unit-correct step)."""

from __future__ import annotations

from ..backend import get_array_module

from ._checks import real
from .base import Optimizer


class Adadelta(Optimizer):
    """With ``rms(x) = sqrt(x + eps)``:
    ``a = rho * a + (1 - rho) * g**2``; ``d = -rms(s) * g / rms(a)``;
    ``s = rho * s + (1 - rho) * d**2``; ``w += lr * d``
    (``a`` is the accumulated gradient, ``s`` the accumulated squared update).

    Defaults as Keras: ``learning_rate=0.001, rho=0.95, epsilon=1e-7`` (Zeiler's paper is ``learning_rate=1.0``).
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        owner = type(self).__name__
        self.rho = real(owner, "rho", rho, lo=0, hi=1)
        self.epsilon = real(owner, "epsilon", epsilon, lo=0)

    def build_state(self, param):
        xp = get_array_module(param)
        return {"accumulated_grad": xp.zeros_like(param), "accumulated_delta_var": xp.zeros_like(param)}

    def update(self, param, grad, state, tmp):
        xp = get_array_module(param)
        t = param.dtype.type
        rho, eps = t(self.rho), t(self.epsilon)
        a, s = state["accumulated_grad"], state["accumulated_delta_var"]
        a *= rho
        xp.multiply(grad, grad, out=tmp)
        tmp *= t(1 - self.rho)
        a += tmp
        xp.add(s, eps, out=tmp)
        xp.sqrt(tmp, out=tmp)
        tmp *= grad
        tmp /= xp.sqrt(a + eps)
        xp.negative(tmp, out=tmp)  # tmp is the update d
        s *= rho
        s += t(1 - self.rho) * xp.square(tmp)
        tmp *= t(self.learning_rate)
        param += tmp

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
