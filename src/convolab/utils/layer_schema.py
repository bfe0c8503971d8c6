"""The pieces layers' file schemas share, defined once: each layer class builds its own
``config_schema`` from these (see :mod:`convolab.layers.registry`).

``layer_schema(required, optional)`` is a layer config: the keys every layer has (``name``,
``trainable``, ``dtype``; ``input_shape`` optional) and the layer's own. Regularizers and
constraints are written only when set, so :func:`rules` gives them as optional keys.
"""

from __future__ import annotations

from .. import initializers
from ..nn.activations import ACTIVATIONS
from .config_schema import MAX_INT, fail, boolean, integer, list_of, nullable, number, obj, string, tagged

dim = integer(1, MAX_INT)
pair = list_of(integer(1, MAX_INT), 2, 2)
#: a 1-D layer's kernel_size / strides / pool_size: one positive int in a list
one = list_of(integer(1, MAX_INT), 1, 1)
shape = list_of(dim, 1, 6)
_builtin_activation = string(32, set(ACTIVATIONS))


def activation_name(v, where):
    """An activation's name: a built-in one, or the name (``"package>name"``) of a function the
    user registered (``keras.saving.register_keras_serializable``, a custom object scope,
    ``load_model(custom_objects=...)``) at load time: the registry is the allow-list."""
    from ..activations import registered_function

    if not isinstance(v, str) or v in ACTIVATIONS:
        return _builtin_activation(v, where)
    string(256)(v, where)
    if registered_function(v) is None:
        fail(
            where,
            f"one of {', '.join(ACTIVATIONS)}, or the name of a function registered with "
            "keras.saving.register_keras_serializable or passed in custom_objects (this one is neither)",
            v,
        )
    return v


padding = string(8, {"valid", "same"})
channels_last = string(16, {"channels_last"})
CHANNELS_LAST_OPT = {"data_format": channels_last}
seed = nullable(integer(0, 2**63 - 1))
#: ZeroPadding2D's and Cropping2D's ((top, bottom), (left, right))
border = list_of(list_of(integer(0, MAX_INT), 2, 2), 2, 2)


def initializer(v, where):
    """A built-in initializer's name."""
    string(64)(v, where)
    try:
        initializers.get(v)
    except ValueError:
        fail(where, "a built-in initializer name", v)
    return v


_COMMON = {"name": string(), "trainable": boolean, "dtype": string(16, {"float32", "float64"})}
_COMMON_OPT = {"input_shape": shape}


def layer_schema(required=None, optional=None):
    """A layer's config: the common keys and ``required`` (all present), ``optional`` (any)."""
    return obj({**_COMMON, **(required or {})}, {**_COMMON_OPT, **(optional or {})})


INITS = {"kernel_initializer": initializer, "bias_initializer": initializer}
DEPTHWISE_INITS = {"depthwise_initializer": initializer, "bias_initializer": initializer}
WINDOW = {"kernel_size": pair, "strides": pair, "padding": padding, "use_bias": boolean, "activation": activation_name}
POOL = {"pool_size": pair, "strides": pair, "padding": padding}
POOL_1D = {"pool_size": one, "strides": one, "padding": padding}
GLOBAL_POOL = {"data_format": channels_last, "keepdims": boolean}

_factor_ = number(0)
regularizer = tagged(
    {"L1": obj({"l1": _factor_}), "L2": obj({"l2": _factor_}), "L1L2": obj({"l1": _factor_, "l2": _factor_})}
)


def _axis(v, where):
    if isinstance(v, list):
        return list_of(integer(-6, 5), 1, 6)(v, where)
    return integer(-6, 5)(v, where)


constraint = tagged(
    {
        "MaxNorm": obj({"max_value": number(0), "axis": _axis}),
        "NonNeg": obj({}),
        "UnitNorm": obj({"axis": _axis}),
        "MinMaxNorm": obj({"min_value": number(0), "max_value": number(0), "rate": number(0), "axis": _axis}),
    }
)


def rules(kernel):
    """The optional regularizer and constraint keys of a layer whose main weight is ``kernel``."""
    return {
        f"{kernel}_regularizer": regularizer,
        "bias_regularizer": regularizer,
        "activity_regularizer": regularizer,
        f"{kernel}_constraint": constraint,
        "bias_constraint": constraint,
    }


def factor(v, where):
    """An augmentation factor: a number, or ``[lower, upper]`` (the layer checks the ranges)."""
    if isinstance(v, list):
        return list_of(number(), 2, 2)(v, where)
    return number()(v, where)


value_range = list_of(number(), 2, 2)
#: the fill arguments of RandomTranslation, RandomRotation, RandomZoom
FILL = {
    "fill_mode": string(16, {"reflect", "wrap", "constant", "nearest"}),
    "interpolation": string(16, {"bilinear", "nearest"}),
    "fill_value": number(),
    "seed": seed,
}
