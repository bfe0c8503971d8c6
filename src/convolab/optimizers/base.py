"""Optimizer base: owns per-parameter state and updates parameters in place."""
from __future__ import annotations

import numbers

import numpy as np


class Optimizer:
    """Base class. Subclasses implement ``build_state(param)`` and ``update(param, grad, state)``.

    ``apply(params, grads)`` updates each array in ``params`` in place, in order;
    state is created on the first call, one entry per parameter.
    """

    def __init__(self, learning_rate=0.001, name=None, clipnorm=None, clipvalue=None, **kwargs):
        if "lr" in kwargs:
            learning_rate = kwargs.pop("lr")
        for key in ("weight_decay", "global_clipnorm", "use_ema", "ema_momentum", "ema_overwrite_frequency",
                    "loss_scale_factor", "gradient_accumulation_steps", "jit_compile"):
            val = kwargs.pop(key, None)
            if val not in (None, False, 0.99):
                raise ValueError(f"{type(self).__name__}: `{key}` is not supported by convolab; got {val!r}")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        self.name = name or type(self).__name__.lower()
        self.learning_rate = learning_rate
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.iterations = 0
        #: one dict of state arrays per parameter (what a checkpoint must keep)
        self.state: list = []
        #: one scratch buffer per parameter, reused every step (never saved)
        self._scratch: list = []

    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise ValueError(f"{type(self).__name__}: `learning_rate` must be a positive number; got {value!r}")
        self._learning_rate = float(value)

    lr = learning_rate

    def build_state(self, param) -> dict:
        return {}

    def update(self, param, grad, state, tmp) -> None:
        """Update ``param`` in place; ``tmp`` is a scratch array of the same shape."""
        raise NotImplementedError

    def apply(self, params, grads) -> None:
        """One step: update every ``params[i]`` in place from ``grads[i]``."""
        if not self.state:
            self.state = [self.build_state(p) for p in params]
        if len(self._scratch) != len(params):
            self._scratch = [np.empty_like(p) for p in params]
        for p, g, s, tmp in zip(params, grads, self.state, self._scratch):
            if self.clipvalue is not None:
                g = np.clip(g, -self.clipvalue, self.clipvalue)
            if self.clipnorm is not None:
                norm = float(np.sqrt((g * g).sum()))
                if norm > self.clipnorm:
                    g = g * (self.clipnorm / norm)
            self.update(p, g, s, tmp)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars) -> None:
        """Keras's spelling: a list of ``(gradient, variable)`` pairs."""
        pairs = list(grads_and_vars)
        self.apply([v for _, v in pairs], [g for g, _ in pairs])

    def get_config(self) -> dict:
        cfg = {"name": self.name, "learning_rate": self.learning_rate}
        if self.clipnorm is not None:
            cfg["clipnorm"] = self.clipnorm
        if self.clipvalue is not None:
            cfg["clipvalue"] = self.clipvalue
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)
