"""Optimizer base: owns per-variable state and updates variables in place."""
from __future__ import annotations

import numbers
import weakref

import numpy as np


class Optimizer:
    """Base class. Subclasses implement ``build_state(param)`` and ``update(param, grad, state, tmp)``.

    ``apply(params, grads)`` updates each array in ``params`` in place. State is kept per
    variable (the array object itself, as Keras keys its slots by variable), never by
    position: freezing a layer, recompiling with the same optimizer, or sharing it between
    two models changes which variables a step sees, and each keeps its own slots.
    A variable's state is created the first time a step updates it.
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
        # id(variable) -> [weakref to the variable, its state dict, a scratch buffer]. The weak
        # reference tells a live variable from a dead one whose id was reused, and drops the
        # entry when the variable goes away.
        self._slots: dict = {}

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

    def _slot(self, param):
        key = id(param)
        entry = self._slots.get(key)
        if entry is None or entry[0]() is not param:
            def forget(ref, key=key, slots=self._slots):
                if key in slots and slots[key][0] is ref:
                    del slots[key]

            entry = [weakref.ref(param, forget), self.build_state(param), None]
            self._slots[key] = entry
        return entry

    def get_state(self, param):
        """The state dict of variable ``param`` (live arrays), or ``None`` before its first step."""
        entry = self._slots.get(id(param))
        return entry[1] if entry is not None and entry[0]() is param else None

    def set_state(self, param, state) -> None:
        """Give variable ``param`` this state (slot name -> array of ``param``'s shape)."""
        want = self.build_state(param)
        if set(state) != set(want):
            raise ValueError(f"{type(self).__name__}: state slots must be {sorted(want)}; got {sorted(state)}")
        for key, arr in state.items():
            if np.shape(arr) != param.shape:
                raise ValueError(f"{type(self).__name__}: state slot '{key}' must have the variable's shape "
                                 f"{param.shape}; got {np.shape(arr)}")
        entry = self._slot(param)
        entry[1] = {key: np.array(arr, dtype=param.dtype) for key, arr in state.items()}

    @property
    def state(self) -> list:
        """Every live variable's state dict, in the order the variables were first updated."""
        return [entry[1] for entry in self._slots.values() if entry[0]() is not None]

    def apply(self, params, grads) -> None:
        """One step: update every ``params[i]`` in place from ``grads[i]``."""
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(f"{type(self).__name__}: {len(params)} variables but {len(grads)} gradients")
        slots, entries = self._slots, []
        for p, g in zip(params, grads):  # check every pair before any variable moves
            if not isinstance(p, np.ndarray) or getattr(g, "shape", None) != p.shape:
                raise ValueError(f"{type(self).__name__}: a gradient of shape {np.shape(g)} for a variable "
                                 f"of shape {np.shape(p)}")
            entry = slots.get(id(p))
            entries.append(entry if entry is not None and entry[0]() is p else self._slot(p))
        for p, g, entry in zip(params, grads, entries):
            if entry[2] is None:
                entry[2] = np.empty_like(p)  # scratch, reused every step, never saved
            if self.clipvalue is not None:
                g = np.clip(g, -self.clipvalue, self.clipvalue)
            if self.clipnorm is not None:
                norm = float(np.sqrt((g * g).sum()))
                if norm > self.clipnorm:
                    g = g * (self.clipnorm / norm)
            self.update(p, g, entry[1], entry[2])
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
