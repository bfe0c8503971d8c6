"""The lesson's three networks, built and compiled exactly as the lesson writes them.

==============  ==========================================================  =======  ==========
builder         layers                                                      params   compile
==============  ==========================================================  =======  ==========
simple_cnn()    Conv2D(9, 5x5, relu) - Flatten - Dense(10)                   52,084  rmsprop, logits
multi_cnn()     Conv2D(10, 5x5) - MaxPool - Conv2D(20, 5x5) - MaxPool -       8,490  rmsprop, logits
                Flatten - Dense(10)
lenet()         Conv2D(6, 5) - MaxPool - Conv2D(16, 5) - MaxPool - Flatten -  62,006  adam, softmax
                Dense(120) - Dense(84) - Dense(10, softmax)
==============  ==========================================================  =======  ==========

(Parameter counts for the default input shapes: 28x28x1, 28x28x1, 32x32x3.) The MNIST-shaped
models serve Fashion-MNIST as they are; CIFAR-10 uses LeNet. Every builder takes
``input_shape`` (for other image sizes) and ``optimizer`` (a name or an optimiser instance,
replacing the lesson's default).
"""

from __future__ import annotations

from .. import keras

#: Class names by dataset, in label order.
CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}

#: Input shape of each dataset's images as the models take them (channels last).
INPUT_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def _logits_compile(model, optimizer):
    model.compile(
        optimizer=optimizer or "rmsprop",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["acc"],
    )
    return model


def simple_cnn(input_shape=(28, 28, 1), num_classes=10, optimizer=None, kernel_size=(5, 5), filters=9):
    """The lesson's one-convolution CNN (52,084 parameters on 28x28x1).

    ``Conv2D(9, (5, 5), activation='relu') - Flatten - Dense(10)`` compiled with
    ``SparseCategoricalCrossentropy(from_logits=True)``, ``metrics=['acc']`` and Keras's default
    optimiser, rmsprop. ``kernel_size=(3, 3)`` gives the lesson's "same network with 3x3 filters".

    Args:
        input_shape: ``(H, W, C)``.
        num_classes: width of the output layer (logits).
        optimizer: a name or optimiser instance; ``None`` keeps rmsprop.
    """
    model = keras.models.Sequential(
        [
            keras.layers.Conv2D(filters, kernel_size, input_shape=tuple(input_shape), activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes),
        ]
    )
    return _logits_compile(model, optimizer)


def multi_cnn(input_shape=(28, 28, 1), num_classes=10, optimizer=None):
    """The lesson's two-convolution "pyramid" CNN (8,490 parameters on 28x28x1).

    ``Conv2D(10, (5, 5), relu) - MaxPooling2D() - Conv2D(20, (5, 5), relu) - MaxPooling2D() -
    Flatten - Dense(10)``, compiled as :func:`simple_cnn`.
    """
    model = keras.models.Sequential(
        [
            keras.layers.Conv2D(filters=10, kernel_size=(5, 5), input_shape=tuple(input_shape), activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(filters=20, kernel_size=(5, 5), activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes),
        ]
    )
    return _logits_compile(model, optimizer)


def lenet(input_shape=(32, 32, 3), num_classes=10, optimizer=None):
    """LeNet as the lesson trains it on CIFAR-10 (62,006 parameters on 32x32x3).

    ``Conv2D(6, 5, relu) - MaxPooling2D(2, 2) - Conv2D(16, 5, relu) - MaxPooling2D(2, 2) -
    Flatten - Dense(120, relu) - Dense(84, relu) - Dense(10, softmax)``, compiled with
    ``optimizer='adam'``, ``loss='sparse_categorical_crossentropy'``, ``metrics=['acc']``.
    """
    model = keras.models.Sequential(
        [
            keras.layers.Conv2D(filters=6, kernel_size=5, strides=1, activation="relu", input_shape=tuple(input_shape)),
            keras.layers.MaxPooling2D(pool_size=2, strides=2),
            keras.layers.Conv2D(filters=16, kernel_size=5, strides=1, activation="relu"),
            keras.layers.MaxPooling2D(pool_size=2, strides=2),
            keras.layers.Flatten(),
            keras.layers.Dense(120, activation="relu"),
            keras.layers.Dense(84, activation="relu"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer or "adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


#: Builders by the names the CLI uses.
MODELS = {"simple": simple_cnn, "multi": multi_cnn, "lenet": lenet}

#: The model the lesson trains on each dataset.
DEFAULT_MODEL = {"mnist": "simple", "fashion_mnist": "simple", "cifar10": "lenet"}


def build(name, input_shape=None, num_classes=10, optimizer=None):
    """Build a zoo model by name (``'simple'``, ``'multi'``, ``'lenet'``).

    Args:
        input_shape: ``(H, W, C)``; ``None`` keeps the builder's default.

    Raises:
        ValueError: unknown name.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    kwargs = {"num_classes": num_classes, "optimizer": optimizer}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    return MODELS[name](**kwargs)


__all__ = ["CLASS_NAMES", "DEFAULT_MODEL", "INPUT_SHAPES", "MODELS", "build", "lenet", "multi_cnn", "simple_cnn"]
