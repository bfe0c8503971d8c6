"""``keras.activations``: ``relu``, ``sigmoid``, ``tanh``, ``softmax``, ``linear``, ``gelu``, ``elu``,
``selu``, ``swish``/``silu``, ``leaky_relu``, ``hard_sigmoid``, ``softplus``, ``softsign``,
``exponential``, ``mish``; ``get``, ``serialize``, ``deserialize``.

Each function takes a NumPy array of any rank (``softmax`` at least 1-D) and returns one.
"""

from .. import activations as _activations
from ..activations import (
    elu,
    exponential,
    gelu,
    hard_sigmoid,
    leaky_relu,
    linear,
    mish,
    relu,
    selu,  # noqa: F401
    sigmoid,
    silu,
    softmax,
    softplus,
    softsign,
    swish,
    tanh,
)


def get(identifier):
    """The activation function for a name (``'relu'``), a function, or ``None`` (linear)."""
    return _activations.FUNCTIONS[_activations.get(identifier, owner="keras.activations.get")]


def serialize(activation):
    """The name of an activation function (what ``get_config`` stores)."""
    return _activations.get(activation, owner="keras.activations.serialize")


def deserialize(config):
    """The activation function for a name written by :func:`serialize`."""
    if not isinstance(config, str):
        raise ValueError(f"keras.activations.deserialize expects an activation name; got {config!r}")
    return get(config)
