"""SGD with optional (Nesterov) momentum, Keras's formulation."""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..kernels import cuda

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
        xp = get_array_module(param)
        return {"momentum": xp.zeros_like(param)} if self.momentum else {}

    def update(self, param, grad, state, tmp):
        xp = get_array_module(param)
        if self.momentum and xp is not np:  # one fused kernel on the GPU
            cuda.sgd_momentum(
                param,
                xp.ascontiguousarray(grad, dtype=param.dtype),
                state["momentum"],
                self.learning_rate,
                self.momentum,
                self.nesterov,
            )
            return
        lr = param.dtype.type(self.learning_rate)
        xp.multiply(grad, lr, out=tmp)
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
