"""Activations: the functions of ``keras.activations``, and the lookup behind ``activation=``.

The functions take NumPy arrays of any rank (a 1-D vector included, softmax excepted only
for 0-D) and return NumPy arrays. Integer and boolean inputs are cast to
``backend.floatx()`` first, as Keras converts its inputs; floating inputs keep their dtype.
A tape :class:`~convolab.autodiff.Tensor` goes to the matching ``keras.ops`` function
instead, so inside a ``GradientTape`` its gradient is recorded, never silently dropped.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .autodiff import functions as _tape_ops
from .autodiff.tape import record
from .autodiff.tensor import Tensor, unwrap
from .nn import activations as _ops
from .nn.activations import ACTIVATIONS, activation_backward, activation_forward, relu_forward
from .nn.activations import softmax as _softmax


def _as_float(x):
    x = x if backend.is_device_array(x) else np.asarray(x)
    if x.dtype.kind in "biu":
        return x.astype(backend.floatx())
    if x.dtype.kind != "f":
        raise TypeError(f"activations expect a numeric array; got dtype {x.dtype}")
    return x


def linear(x):
    """The identity (``activation=None``)."""
    return x if isinstance(x, Tensor) else _as_float(x)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's ``relu``: ``x`` above ``threshold`` (capped at ``max_value``), else
    ``negative_slope * (x - threshold)``. Shape: output = input."""
    if isinstance(x, Tensor):
        if negative_slope or max_value is not None or threshold:
            raise NotImplementedError(
                "keras.activations.relu on a tape Tensor supports the plain ReLU only; got "
                f"negative_slope={negative_slope!r}, max_value={max_value!r}, threshold={threshold!r}"
            )
        return _tape_ops.relu(x)
    return relu_forward(_as_float(x), negative_slope, max_value, threshold)[0]


def sigmoid(x):
    """``1 / (1 + exp(-x))``, without overflow for large ``|x|``. Shape: output = input."""
    if isinstance(x, Tensor):
        return _tape_ops.sigmoid(x)
    return activation_forward("sigmoid", _as_float(x))


def tanh(x):
    """Hyperbolic tangent. Shape: output = input."""
    if isinstance(x, Tensor):
        return _tape_ops.tanh(x)
    return activation_forward("tanh", _as_float(x))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis`` (default the last), computed stably.

    Raises:
        ValueError: ``x`` is 0-D, or ``axis`` is not one of its axes.
    """
    if isinstance(x, Tensor):
        return _tape_ops.softmax(x, axis=axis)
    x = _as_float(x)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"softmax: `axis` must be an int naming one of the input's {x.ndim} axes; got axis={axis!r} "
            f"for shape {tuple(x.shape)}"
        )
    return _softmax(x, axis=int(axis))


def _pair(x, forward, backward, name):
    """``forward(x)``; on a tape Tensor, recorded with ``backward(g, y, x)`` as its gradient."""
    xv = _as_float(unwrap(x))
    y = forward(xv)
    if isinstance(x, Tensor):
        return record(y, (x,), lambda g: (backward(g, y, xv),), name)
    return y


def _named(name, x):
    return _pair(x, lambda v: activation_forward(name, v), lambda g, y, v: activation_backward(name, g, y, v), name)


def gelu(x, approximate=False):
    """Gaussian error linear unit: ``x * Phi(x)`` (``approximate=False``, Keras 3's default), or
    ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``. Shape: output = input."""
    if not approximate:
        return _named("gelu", x)
    cache = {}

    def forward(v):
        y, cache["c"] = _ops.gelu_tanh_forward(v)
        return y

    return _pair(x, forward, lambda g, y, v: _ops.gelu_tanh_backward(g, cache["c"]), "gelu")


def elu(x, alpha=1.0):
    """Exponential linear unit: ``x`` if ``x > 0``, else ``alpha * (exp(x) - 1)``. Shape: output = input."""
    return _pair(x, lambda v: _ops.elu_forward(v, alpha), lambda g, y, v: _ops.elu_backward(g, y, alpha), "elu")


def selu(x):
    """Scaled ELU: ``scale * elu(x, alpha)`` with Keras's ``scale = 1.05070098``, ``alpha = 1.67326324``."""
    return _named("selu", x)


def silu(x):
    """``x * sigmoid(x)`` (also called swish). Shape: output = input."""
    return _named("silu", x)


def swish(x):
    """``x * sigmoid(x)`` (also called silu). Shape: output = input."""
    return _named("swish", x)


def leaky_relu(x, negative_slope=0.2):
    """``x`` if ``x > 0``, else ``negative_slope * x`` (Keras's function default: 0.2)."""
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) or negative_slope < 0:
        raise ValueError(f"leaky_relu: `negative_slope` must be a number >= 0; got {negative_slope!r}")
    return _pair(
        x,
        lambda v: _ops.leaky_relu_forward(v, negative_slope),
        lambda g, y, v: _ops.leaky_relu_backward(g, y, negative_slope),
        "leaky_relu",
    )


def hard_sigmoid(x):
    """Keras 3's piecewise-linear sigmoid: ``relu6(x + 3) / 6`` (0 below -3, 1 above 3)."""
    return _named("hard_sigmoid", x)


def softplus(x):
    """``log(1 + exp(x))``, computed without overflow. Shape: output = input."""
    return _named("softplus", x)


def softsign(x):
    """``x / (1 + |x|)``. Shape: output = input."""
    return _named("softsign", x)


def exponential(x):
    """``exp(x)``. Shape: output = input."""
    return _named("exponential", x)


def mish(x):
    """``x * tanh(softplus(x))``. Shape: output = input."""
    return _named("mish", x)


#: the function behind each name in ACTIVATIONS
FUNCTIONS = {
    "linear": linear,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "gelu": gelu,
    "elu": elu,
    "selu": selu,
    "swish": swish,
    "silu": silu,
    "leaky_relu": leaky_relu,
    "hard_sigmoid": hard_sigmoid,
    "softplus": softplus,
    "softsign": softsign,
    "exponential": exponential,
    "mish": mish,
}
_NAMES = {fn: name for name, fn in FUNCTIONS.items()}
# the keras.ops functions that compute what a built-in activation computes (with their defaults):
# they take the built-in's hand-written path (keras.ops.gelu, silu... are the functions above)
_NAMES.update(
    {
        _tape_ops.relu: "relu",
        _tape_ops.sigmoid: "sigmoid",
        _tape_ops.tanh: "tanh",
        _tape_ops.softmax: "softmax",
        _tape_ops.softplus: "softplus",
        _tape_ops.exp: "exponential",
    }
)


def describe_fn(fn) -> str:
    """A function's name for messages: its registered name, ``__name__`` or repr."""
    from .saving.object_registry import registered_name_of

    return registered_name_of(fn) or getattr(fn, "__qualname__", None) or repr(fn)


def get(identifier, owner: str = "layer"):
    """Normalise an activation argument: a name of :data:`ACTIVATIONS`, or the user's callable.

    ``None`` means ``'linear'``; names are case-insensitive; the functions of this module
    (``keras.activations.relu``...) and the ``keras.ops`` functions that compute the same thing
    (``keras.ops.relu``, ``sigmoid``, ``tanh``, ``softmax``, ``softplus``, ``exp``, ``gelu``...)
    stand for their names, so they keep the hand-written path. Any other callable ``f(x) -> tensor``
    (written with ``keras.ops``) comes back as is. A registered name (``"package>name"``, as a
    file writes it) gives the function registered under it (or, in a custom object scope /
    ``custom_objects``, under that name or the part after ``>``). Raises ``ValueError`` listing
    the valid names.
    """
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        name = identifier.lower()
        if name in ACTIVATIONS:
            return name
        fn = registered_function(identifier)
        if fn is not None:
            return _NAMES.get(fn, fn)
    elif callable(identifier):
        return _NAMES.get(identifier, identifier)
    raise ValueError(
        f"{owner}: unknown activation {identifier!r}; valid: {', '.join(ACTIVATIONS)} (or None, a "
        "keras.activations function, any callable f(x) written with keras.ops, or the name of a "
        "function registered with keras.saving.register_keras_serializable)"
    )


def registered_function(name):
    """The function registered (or in a custom object scope) under ``name``, else None.

    ``"package>name"`` is looked up as written, then by the part after ``>`` (a
    ``custom_objects={"name": fn}`` given to ``load_model``).
    """
    from .saving.object_registry import get_registered_object

    if not isinstance(name, str) or not name:
        return None
    for key in dict.fromkeys((name, name.rpartition(">")[2])):
        fn = get_registered_object(key)
        if callable(fn) and not isinstance(fn, type):
            return fn
    return None


def serialize(activation, owner: str = "layer"):
    """What a config holds for ``activation`` (an argument :func:`get` accepts): the built-in's
    name, the registered name (``"package>name"``) of a registered function, or, for any other
    callable, the callable itself (a config in memory may hold it, as ``clone_model`` needs; a file
    never: the savers refuse it with :func:`unsaveable`)."""
    act = get(activation, owner)
    if isinstance(act, str):
        return act
    from .saving.object_registry import registered_name_of

    return registered_name_of(act) or act


def unsaveable(activation, owner: str, what: str = "save") -> str:
    """The message refusing to save a layer whose activation is an unregistered callable."""
    name = describe_fn(activation)
    lam = getattr(activation, "__name__", "") == "<lambda>"
    return (
        f"{what}: {owner} has the custom activation {name!r}, "
        + ("a lambda" if lam else "a function that is not registered")
        + ", which a file cannot name (a file holds no Python code); "
        + ("define it as a named function, " if lam else "")
        + "decorate it with @keras.saving.register_keras_serializable(), then load with it registered "
        "or passed in custom_objects"
    )
