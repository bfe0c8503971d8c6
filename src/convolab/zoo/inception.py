"""An Inception-style network: blocks of parallel 1x1, 3x3, 5x5 and pooling branches, concatenated."""

from __future__ import annotations

from .. import keras
from ._blocks import check_input_shape, check_positive_int, check_rate, conv_bn_relu

L = keras.layers

#: ``(f1x1, f3x3_reduce, f3x3, f5x5_reduce, f5x5, pool_proj)`` of each default block.
DEFAULT_BLOCKS = ((16, 16, 24, 4, 8, 8), (32, 32, 48, 8, 16, 16), (48, 48, 64, 8, 16, 16))


def inception_block(x, filters, name):
    """GoogLeNet's Inception module (Szegedy et al. 2014, figure 2b) with BN after every conv.

    Args:
        filters: ``(f1x1, f3x3_reduce, f3x3, f5x5_reduce, f5x5, pool_proj)``.

    Shape:
        output ``(N, H, W, f1x1 + f3x3 + f5x5 + pool_proj)``: the four branches concatenated on channels.
    """
    f1, f3r, f3, f5r, f5, fp = filters
    b1 = conv_bn_relu(x, f1, 1, name=name + "_1x1")
    b3 = conv_bn_relu(conv_bn_relu(x, f3r, 1, name=name + "_3x3_reduce"), f3, 3, name=name + "_3x3")
    b5 = conv_bn_relu(conv_bn_relu(x, f5r, 1, name=name + "_5x5_reduce"), f5, 5, name=name + "_5x5")
    bp = L.MaxPooling2D(3, strides=1, padding="same", name=name + "_pool")(x)
    bp = conv_bn_relu(bp, fp, 1, name=name + "_pool_proj")
    return L.Concatenate(name=name + "_concat")([b1, b3, b5, bp])


def inception(
    input_shape=(32, 32, 3),
    classes=10,
    stem_filters=32,
    blocks=DEFAULT_BLOCKS,
    dropout=0.2,
    classifier_activation="softmax",
):
    """A small GoogLeNet-style network for 32x32 images.

    ``Conv2D(stem_filters, 3) - BN - ReLU``, then one :func:`inception_block` per entry of
    ``blocks`` with ``MaxPooling2D(2)`` between blocks, then ``GlobalAveragePooling2D -
    Dropout(dropout) - Dense(classes)``.

    Args:
        input_shape: ``(H, W, C)``; H and W at least ``2 ** (len(blocks) - 1)``.
        classes: width of the output layer.
        stem_filters: filters of the first conv.
        blocks: ``(f1x1, f3x3_reduce, f3x3, f5x5_reduce, f5x5, pool_proj)`` per block.
        dropout: rate of the Dropout before the output layer (0 leaves it out).
        classifier_activation: of the output layer; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``'inception'``.

    Shape:
        input ``(N, H, W, C)``; output ``(N, classes)``.
    """
    me = "zoo.inception"
    blocks = tuple(tuple(b) for b in blocks)
    if not blocks or any(len(b) != 6 for b in blocks):
        raise ValueError(
            f"{me}: `blocks` must hold at least one (f1x1, f3x3_reduce, f3x3, f5x5_reduce, f5x5, "
            f"pool_proj) tuple of six filter counts; got {blocks!r}"
        )
    blocks = tuple(tuple(check_positive_int(f, "blocks", me) for f in b) for b in blocks)
    input_shape = check_input_shape(input_shape, me, min_size=2 ** (len(blocks) - 1))
    classes = check_positive_int(classes, "classes", me)
    stem_filters = check_positive_int(stem_filters, "stem_filters", me)
    dropout = check_rate(dropout, "dropout", me)

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn_relu(inputs, stem_filters, 3, name="stem")
    for i, filters in enumerate(blocks, start=1):
        if i > 1:
            x = L.MaxPooling2D(2, name=f"pool{i - 1}")(x)
        x = inception_block(x, filters, name=f"inception{i}")
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    outputs = L.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name="inception")
