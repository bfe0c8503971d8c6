"""Weight and activity penalties, as Keras's ``keras.regularizers``: ``L1``, ``L2``, ``L1L2``.

A regularizer maps a weight (or a layer's output) to a scalar penalty that is added to the
training loss. Each one here also knows its gradient, so both training paths (Sequential's
hand-written backward and the tape) add the same ``d penalty / d weight``.
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module


class Regularizer:
    """Base class: ``penalty(x) -> float`` via ``__call__`` and ``gradient(x) -> array`` of ``x``'s shape."""

    def __call__(self, x):
        raise NotImplementedError

    def gradient(self, x):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _factor(value, arg_name, owner):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: `{arg_name}` must be a finite number >= 0; got {value!r}")
    return float(value)


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x ** 2)``; gradient ``l1 * sign(x) + 2 * l2 * x``.

    Keras's class defaults are 0 for both; the string ``'l1_l2'`` means ``l1=0.01, l2=0.01``.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(l1, "l1", type(self).__name__)
        self.l2 = _factor(l2, "l2", type(self).__name__)

    def __call__(self, x):
        xp = get_array_module(x)
        x = xp.asarray(x)
        value = 0.0
        if self.l1:
            value += self.l1 * float(xp.sum(xp.abs(x)))
        if self.l2:
            value += self.l2 * float(xp.sum(xp.square(x)))
        return value

    def gradient(self, x):
        xp = get_array_module(x)
        x = xp.asarray(x)
        g = xp.zeros_like(x)
        if self.l1:
            g += x.dtype.type(self.l1) * xp.sign(x)
        if self.l2:
            g += x.dtype.type(2 * self.l2) * x
        return g

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|x|)`` (default ``l1=0.01``)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(x ** 2)`` (default ``l2=0.01``)."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


# Keras's lower-case aliases of the classes
l1, l2, l1_l2 = L1, L2, L1L2

CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": lambda: L1(), "l2": lambda: L2(), "l1_l2": lambda: L1L2(l1=0.01, l2=0.01)}


def get(identifier, owner: str = "layer", arg_name: str = "regularizer"):
    """A :class:`Regularizer` from ``None``, a name (``'l1'``, ``'l2'``, ``'l1_l2'``), a config dict or an instance."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in CLASSES:
        return CLASSES[identifier["class_name"]].from_config(dict(identifier.get("config") or {}))
    raise ValueError(
        f"{owner}: unknown `{arg_name}` {identifier!r}; expected one of "
        f"{', '.join(repr(n) for n in _NAMES)}, a keras.regularizers object (L1, L2, L1L2) or None"
    )


def serialize(regularizer):
    """``{"class_name": ..., "config": ...}`` for a built-in regularizer, ``None`` for ``None``."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
