"""Model zoo: the lesson's three compiled Sequential networks and four functional architectures.

The lesson's networks (:mod:`.lesson`): ``simple_cnn``, ``multi_cnn``, ``lenet``, compiled as
the lesson compiles them, built by ``build(name)`` under ``'simple'``, ``'multi'``, ``'lenet'``.

The architectures the lesson points to, each an uncompiled ``keras.Model`` built with the
functional API, with Keras-style arguments (``input_shape=(32, 32, 3)``, ``classes=10``) and
sized to train on a CPU:

==============  ============================================  ========  =============
builder         what                                          params    non-trainable
==============  ============================================  ========  =============
vgg()           3x3 conv-BN-ReLU blocks, max pooling, dense    552,874          1,152
resnet20()      ResNet-20, CIFAR-10 version, 1x1 projections   274,442          1,376
inception()     Inception modules joined by Concatenate         76,518            920
mobilenet()     depthwise separable blocks, width ``alpha``    139,722          2,944
==============  ============================================  ========  =============

(Counts on 32x32x3 with 10 classes; non-trainable = BatchNormalization moving statistics.)
``get(name, **kwargs)`` builds any of the seven by name.
"""

from __future__ import annotations

from .inception import inception
from .lesson import CLASS_NAMES, DEFAULT_MODEL, INPUT_SHAPES, MODELS, build, lenet, multi_cnn, simple_cnn
from .mobilenet import mobilenet
from .resnet import resnet20
from .vgg import vgg

#: Every builder by name: the lesson's (compiled) and the functional architectures (uncompiled).
ARCHITECTURES = {**MODELS, "vgg": vgg, "resnet20": resnet20, "inception": inception, "mobilenet": mobilenet}


def get(name, **kwargs):
    """Build a zoo model by name, passing ``kwargs`` to its builder.

    Args:
        name: one of ``'simple'``, ``'multi'``, ``'lenet'`` (the lesson's, which take
            ``num_classes``), ``'vgg'``, ``'resnet20'``, ``'inception'``, ``'mobilenet'`` (which take ``classes``).

    Raises:
        ValueError: unknown name.
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown zoo model {name!r}; expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](**kwargs)


__all__ = [
    "ARCHITECTURES",
    "CLASS_NAMES",
    "DEFAULT_MODEL",
    "INPUT_SHAPES",
    "MODELS",
    "build",
    "get",
    "inception",
    "lenet",
    "mobilenet",
    "multi_cnn",
    "resnet20",
    "simple_cnn",
    "vgg",
]
