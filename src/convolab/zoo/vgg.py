"""A VGG-style pyramid sized for 32x32 images: blocks of 3x3 convs, each block halving the image."""

from __future__ import annotations

from .. import keras
from ._blocks import check_input_shape, check_positive_int, check_rate, conv_bn_relu

L = keras.layers


def vgg(
    input_shape=(32, 32, 3),
    classes=10,
    widths=(32, 64, 128),
    convs_per_block=2,
    dropout=0.3,
    dense_units=128,
    classifier_activation="softmax",
):
    """A VGG-style network (Simonyan & Zisserman 2014), small enough to train on a CPU.

    For each width ``w`` in ``widths``: ``convs_per_block`` x (``Conv2D(w, 3, padding='same')`` -
    ``BatchNormalization`` - ``ReLU``), then ``MaxPooling2D(2)``. Then the head: ``Flatten`` -
    ``Dense(dense_units)`` - ``BatchNormalization`` - ``ReLU`` - ``Dropout(dropout)`` - ``Dense(classes)``.

    Args:
        input_shape: ``(H, W, C)``; H and W at least ``2 ** len(widths)``.
        classes: width of the output layer.
        widths: filters of each block.
        convs_per_block: 3x3 convs per block.
        dropout: rate of the Dropout before the output layer (0 leaves it out).
        dense_units: width of the hidden dense layer.
        classifier_activation: of the output layer; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``'vgg'``.

    Shape:
        input ``(N, H, W, C)``; output ``(N, classes)``. With the defaults on 32x32x3:
        552,874 parameters, 1,152 of them non-trainable (BN moving statistics).
    """
    me = "zoo.vgg"
    widths = tuple(check_positive_int(w, "widths", me) for w in widths)
    if not widths:
        raise ValueError(f"{me}: `widths` must name at least one block; got {widths!r}")
    input_shape = check_input_shape(input_shape, me, min_size=2 ** len(widths))
    classes = check_positive_int(classes, "classes", me)
    convs_per_block = check_positive_int(convs_per_block, "convs_per_block", me)
    dense_units = check_positive_int(dense_units, "dense_units", me)
    dropout = check_rate(dropout, "dropout", me)

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for b, width in enumerate(widths, start=1):
        for c in range(1, convs_per_block + 1):
            x = conv_bn_relu(x, width, 3, name=f"block{b}_{c}")
        x = L.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(dense_units, name="fc")(x)
    x = L.ReLU(name="fc_relu")(L.BatchNormalization(name="fc_bn")(x))
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    outputs = L.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg")
