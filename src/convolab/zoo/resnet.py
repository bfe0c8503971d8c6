"""ResNet-20 for 32x32 images, as the ResNet paper's CIFAR-10 section builds it."""

from __future__ import annotations

from .. import keras
from ._blocks import check_input_shape, check_positive_int, conv_bn_relu

L = keras.layers


def _basic_block(x, filters, strides, name):
    """Two 3x3 conv-BN units and a shortcut: ``ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x))``.

    The shortcut is the identity, except where the block halves the image and widens the
    channels: there a 1x1 ``Conv2D(filters, strides=2)`` projects ``x`` (the paper's option B,
    without a BN, as Keras's CIFAR-10 ResNet example writes it).
    """
    y = conv_bn_relu(x, filters, 3, strides=strides, name=name + "_1")
    y = conv_bn_relu(y, filters, 3, name=name + "_2", relu=False)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = L.Conv2D(filters, 1, strides=strides, padding="same", name=name + "_proj")(x)
    x = L.Add(name=name + "_add")([shortcut, y])
    return L.ReLU(name=name + "_out")(x)


def resnet20(input_shape=(32, 32, 3), classes=10, n=3, classifier_activation="softmax"):
    """ResNet-20 (He et al. 2015, "Deep Residual Learning for Image Recognition", section 4.2).

    ``Conv2D(16, 3) - BN - ReLU``, then three stages of ``n`` basic blocks (two 3x3 convs each,
    every conv followed by BatchNormalization) with 16, 32 and 64 filters; the first block of
    stages 2 and 3 has stride 2. Then ``GlobalAveragePooling2D - Dense(classes)``: 6n + 2 = 20
    weighted layers for ``n=3`` (``n=5`` gives ResNet-32, ``n=9`` ResNet-56).

    Shortcuts: the paper's CIFAR networks use option A (identity, with the new channels padded
    with zeros where a stage widens). This one uses option B where the shape changes (a 1x1
    conv projection with stride 2, no BN) and the identity elsewhere, as Keras's well-known
    CIFAR-10 ResNet example (``resnet_v1``) does: 274,442 parameters (273,066 trainable,
    1,376 BN moving statistics) against the paper's 0.27M for option A.

    Args:
        input_shape: ``(H, W, C)``; H and W at least 4.
        classes: width of the output layer.
        n: basic blocks per stage.
        classifier_activation: of the output layer; ``None`` gives logits.

    Returns:
        An uncompiled ``keras.Model`` named ``'resnet20'`` (``'resnet{6n+2}'`` for other ``n``).

    Shape:
        input ``(N, H, W, C)``; output ``(N, classes)``; the stages see ``H``, ``ceil(H/2)``, ``ceil(H/4)``.
    """
    me = "zoo.resnet20"
    input_shape = check_input_shape(input_shape, me, min_size=4)
    classes = check_positive_int(classes, "classes", me)
    n = check_positive_int(n, "n", me)

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn_relu(inputs, 16, 3, name="stem")
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, n + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = _basic_block(x, filters, strides, name=f"stage{stage}_block{block}")
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = L.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"resnet{6 * n + 2}")
