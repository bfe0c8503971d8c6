"""SGD with optional (Nesterov) momentum, Keras's formulation."""
from __future__ import annotations

import numpy as np

from .base import Optimizer


class SGD(Optimizer):
    """``m = momentum * m - lr * g``; ``w += m`` (or ``w += momentum * m - lr * g`` with Nesterov).

    Defaults as Keras: ``learning_rate=0.01, momentum=0.0, nesterov=False``.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: `momentum` must be in [0, 1]; got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def build_state(self, param):
        return {"momentum": np.zeros_like(param)} if self.momentum else {}

    def update(self, param, grad, state, tmp):
        lr = param.dtype.type(self.learning_rate)
        np.multiply(grad, lr, out=tmp)
        if not self.momentum:
            param -= tmp
            return
        m = state["momentum"]
        mom = param.dtype.type(self.momentum)
        m *= mom
        m -= tmp
        if self.nesterov:
            param -= tmp
            param += mom * m
        else:
            param += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
