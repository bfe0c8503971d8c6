"""Activation lookup by name, as Keras's ``activation='relu'`` argument expects."""
from __future__ import annotations

from .ops.activations import ACTIVATIONS


def get(identifier, owner: str = "layer") -> str:
    """Normalise an activation argument to one of :data:`ACTIVATIONS`.

    ``None`` means ``'linear'``. Raises ``ValueError`` listing the valid names.
    """
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        name = identifier.lower()
        if name in ACTIVATIONS:
            return name
    raise ValueError(
        f"{owner}: unknown activation {identifier!r}; valid: {', '.join(ACTIVATIONS)} (or None)"
    )
