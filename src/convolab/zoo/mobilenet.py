"""A MobileNet-style network of depthwise separable convolutions, sized for 32x32 images."""

from __future__ import annotations

from numbers import Real

from .. import keras
from ._blocks import check_input_shape, check_positive_int, check_rate

L = keras.layers

#: ``(pointwise filters, stride)`` of each default depthwise separable block (before ``alpha``).
DEFAULT_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1))


def _width(filters, alpha, me):
    width = int(filters * alpha)  # Keras's MobileNet rounds down the same way
    if width < 1:
        raise ValueError(
            f"{me}: alpha={alpha} leaves {filters} filters as {filters * alpha:g}, below one; "
            f"expected alpha >= {1 / filters:g}"
        )
    return width


def depthwise_separable_block(x, filters, strides, depth_multiplier, name):
    """``DepthwiseConv2D(3) - BN - ReLU6 - Conv2D(filters, 1) - BN - ReLU6``, no conv biases (as Keras).

    Stride 2 uses ``padding='same'``, which for an even image pads one row and column at the
    bottom/right: what Keras's ``ZeroPadding2D(((0, 1), (0, 1)))`` + ``'valid'`` does.
    """
    x = L.DepthwiseConv2D(
        3, strides=strides, padding="same", depth_multiplier=depth_multiplier, use_bias=False, name=name + "_dw"
    )(x)
    x = L.ReLU(6.0, name=name + "_dw_relu")(L.BatchNormalization(name=name + "_dw_bn")(x))
    x = L.Conv2D(filters, 1, padding="same", use_bias=False, name=name + "_pw")(x)
    return L.ReLU(6.0, name=name + "_pw_relu")(L.BatchNormalization(name=name + "_pw_bn")(x))


def mobilenet(
    input_shape=(32, 32, 3),
    classes=10,
    alpha=1.0,
    depth_multiplier=1,
    blocks=DEFAULT_BLOCKS,
    dropout=1e-3,
    classifier_activation="softmax",
):
    """MobileNet (Howard et al. 2017) cut down for 32x32 images, with Keras's arguments.

    ``Conv2D(32 * alpha, 3) - BN - ReLU6`` (stride 1: Keras's stride 2 would leave CIFAR-sized
    images too small), then one :func:`depthwise_separable_block` per ``(filters, stride)`` of
    ``blocks`` with ``filters * alpha`` pointwise filters, then ``GlobalAveragePooling2D -
    Dropout(dropout) - Dense(classes)`` (Keras's 1x1 conv classifier, written as the Dense it equals).
    ReLU6 (``ReLU(max_value=6)``) and bias-free convs as in ``keras.applications.MobileNet``.

    Args:
        input_shape: ``(H, W, C)``; H and W at least 2 per stride-2 block.
        classes: width of the output layer.
        alpha: width multiplier: every conv's filters scaled by it and rounded down (> 0).
        depth_multiplier: filters per channel of each depthwise conv.
        blocks: ``(filters, strides)`` per block, before ``alpha``.
        dropout: rate of the Dropout before the output layer (0 leaves it out).
        classifier_activation: of the output layer; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``'mobilenet_{alpha}'``.

    Shape:
        input ``(N, H, W, C)``; output ``(N, classes)``.
    """
    me = "zoo.mobilenet"
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not alpha > 0:
        raise ValueError(f"{me}: `alpha` must be a positive float; got {alpha!r}")
    blocks = tuple(tuple(b) for b in blocks)
    if not blocks or any(len(b) != 2 or b[1] not in (1, 2) for b in blocks):
        raise ValueError(
            f"{me}: `blocks` must hold at least one (filters, strides) pair with strides 1 or 2; got {blocks!r}"
        )
    halvings = sum(1 for _, s in blocks if s == 2)
    input_shape = check_input_shape(input_shape, me, min_size=2**halvings)
    classes = check_positive_int(classes, "classes", me)
    depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier", me)
    dropout = check_rate(dropout, "dropout", me)

    inputs = keras.Input(shape=input_shape, name="image")
    x = L.Conv2D(_width(32, alpha, me), 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = L.ReLU(6.0, name="stem_relu")(L.BatchNormalization(name="stem_bn")(x))
    for i, (filters, strides) in enumerate(blocks, start=1):
        filters = _width(check_positive_int(filters, "blocks", me), alpha, me)
        x = depthwise_separable_block(x, filters, strides, depth_multiplier, name=f"block{i}")
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    outputs = L.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"mobilenet_{alpha:g}")
