"""Argument checks and the conv-BN-ReLU unit the functional zoo models share."""

from __future__ import annotations

from numbers import Integral, Real

from .. import keras

L = keras.layers


def check_input_shape(input_shape, owner, min_size=1):
    """``input_shape`` as a tuple of three positive ints ``(H, W, C)``, with H and W at least ``min_size``."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != 3
        or any(isinstance(d, bool) or not isinstance(d, Integral) or d < 1 for d in shape)
    ):
        raise ValueError(
            f"{owner}: `input_shape` must be (height, width, channels), three positive ints; got {input_shape!r}"
        )
    if min(shape[:2]) < min_size:
        raise ValueError(
            f"{owner}: images must be at least {min_size}x{min_size} (the network halves them "
            f"that often); got input_shape={shape}"
        )
    return tuple(int(d) for d in shape)


def check_positive_int(value, arg, owner):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{owner}: `{arg}` must be a positive int; got {value!r}")
    return int(value)


def check_rate(value, arg, owner):
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
        raise ValueError(f"{owner}: `{arg}` must be a float in [0, 1); got {value!r}")
    return float(value)


def conv_bn_relu(x, filters, kernel_size, strides=1, name=None, relu=True):
    """``Conv2D(filters, kernel_size, padding='same') - BatchNormalization - ReLU`` on ``x``.

    The conv keeps its bias, as Keras's examples write it (the BN's beta makes it redundant,
    but parameter counts then match theirs).
    """
    x = L.Conv2D(filters, kernel_size, strides=strides, padding="same", name=name and name + "_conv")(x)
    x = L.BatchNormalization(name=name and name + "_bn")(x)
    return L.ReLU(name=name and name + "_relu")(x) if relu else x
