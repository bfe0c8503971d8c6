"""Nadam: Adam with Nesterov momentum (Dozat), Keras's formulation with its momentum cache."""

from __future__ import annotations

from ..backend import get_array_module

from ._checks import real
from .base import Optimizer


class Nadam(Optimizer):
    """At step ``t = iterations + 1``, with the momentum schedule ``u(t) = b1 * (1 - 0.5 * 0.96**t)``
    and the cache ``u_product`` (``1`` before the first step, ``*= u(t)`` at the start of each step):
    ``m += (g - m)(1 - b1)``; ``v += (g**2 - v)(1 - b2)``;
    ``m_hat = u(t+1) * m / (1 - u_product * u(t+1)) + (1 - u(t)) * g / (1 - u_product)``;
    ``v_hat = v / (1 - b2**t)``; ``w -= lr * m_hat / (sqrt(v_hat) + eps)``.

    ``u_product`` belongs to the optimizer, not to a variable (Keras's ``_u_product``): it is
    saved with the training state (:meth:`get_global_state`).

    Defaults as Keras: ``learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7``.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        owner = type(self).__name__
        self.beta_1 = real(owner, "beta_1", beta_1, lo=0, hi=1, hi_open=True)
        self.beta_2 = real(owner, "beta_2", beta_2, lo=0, hi=1, hi_open=True)
        self.epsilon = real(owner, "epsilon", epsilon, lo=0)
        self._u_product = 1.0

    def _u(self, step):
        return self.beta_1 * (1.0 - 0.5 * 0.96**step)

    def begin_step(self):
        self._u_product = self._u_product * self._u(self.iterations + 1)

    def get_global_state(self):
        return {"u_product": self._u_product}

    def set_global_state(self, state):
        self._u_product = self._checked_global_state(state)["u_product"]

    def build_state(self, param):
        xp = get_array_module(param)
        return {"momentum": xp.zeros_like(param), "velocity": xp.zeros_like(param)}

    def update(self, param, grad, state, tmp):
        xp = get_array_module(param)
        t = param.dtype.type
        step = self.iterations + 1
        u_t, u_t_1 = self._u(step), self._u(step + 1)
        u_product_t = self._u_product
        u_product_t_1 = u_product_t * u_t_1
        m, v = state["momentum"], state["velocity"]
        xp.subtract(grad, m, out=tmp)
        tmp *= t(1 - self.beta_1)
        m += tmp
        xp.multiply(grad, grad, out=tmp)
        tmp -= v
        tmp *= t(1 - self.beta_2)
        v += tmp
        xp.divide(t(u_t_1) * m, t(1 - u_product_t_1), out=tmp)
        tmp += t(1 - u_t) * grad / t(1 - u_product_t)  # tmp is m_hat
        tmp *= t(self.learning_rate)
        tmp /= xp.sqrt(v / t(1 - self.beta_2**step)) + t(self.epsilon)
        param -= tmp

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
