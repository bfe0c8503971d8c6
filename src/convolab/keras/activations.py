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
    """The activation function for a name (``'relu'``, a registered ``'package>name'``), a
    function (a user's callable comes back as is), or ``None`` (linear)."""
    act = _activations.get(identifier, owner="keras.activations.get")
    return _activations.FUNCTIONS[act] if isinstance(act, str) else act


def serialize(activation):
    """The name of an activation function (what ``get_config`` stores): a built-in's name or a
    registered function's ``'package>name'``. Raises ``ValueError`` for any other callable."""
    what = _activations.serialize(activation, owner="keras.activations.serialize")
    if not isinstance(what, str):
        raise ValueError(_activations.unsaveable(activation, "the function", "keras.activations.serialize"))
    return what


def deserialize(config):
    """The activation function for a name written by :func:`serialize`."""
    if not isinstance(config, str):
        raise ValueError(f"keras.activations.deserialize expects an activation name; got {config!r}")
    act = _activations.get(config, owner="keras.activations.deserialize")
    return _activations.FUNCTIONS[act] if isinstance(act, str) else act
