"""Names and shapes as Keras writes them: automatic layer names and shapes in messages.

The name counters live here, below both the layers (which draw names) and the backend (whose
``clear_session`` resets them), as Keras keeps them in its global state.
"""

from __future__ import annotations

import re
from collections import defaultdict

_name_counters: defaultdict = defaultdict(int)


def reset_name_counters() -> None:
    """Start automatic names again from ``conv2d``, ``dense``... (``keras.backend.clear_session``)."""
    _name_counters.clear()


def snake_case(name: str) -> str:
    """A class name as Keras's default layer name: ``Conv2D`` -> ``conv2d``, ``MaxPooling2D`` -> ``max_pooling2d``."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()
    return s.replace("2_d", "2d")


def unique_name(prefix: str) -> str:
    """Keras's automatic names: ``conv2d``, ``conv2d_1``, ``conv2d_2``..."""
    n = _name_counters[prefix]
    _name_counters[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def shape_str(shape) -> str:
    """``(None, 28, 28, 1)``: a shape as Keras prints it, ``None`` for an unknown size."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")
