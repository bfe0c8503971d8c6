"""A convnet with BatchNormalization trains, and a frozen one keeps and uses its statistics."""

from __future__ import annotations

import numpy as np

from convolab import keras

L = keras.layers


def _data(n=96, seed=0):
    # two classes of 8x8 images: a bright left half or a bright right half, plus noise and an offset
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.5, (n, 8, 8, 1)) + 3.0
    x[y == 0, :, :4] += 1.0
    x[y == 1, :, 4:] += 1.0
    return x.astype("float32"), y


def _convnet():
    keras.utils.set_random_seed(7)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, padding="same", use_bias=False),
            L.BatchNormalization(),
            L.ReLU(),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(2, activation="softmax"),
        ]
    )


def test_convnet_with_batch_normalization_trains():
    x, y = _data()
    model = _convnet()
    model.compile(keras.optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=6, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    bn = model.layers[1]
    # the moving mean has left its initial zeros towards the conv outputs' mean
    assert np.all(bn.params["moving_mean"] != 0)
    assert model.evaluate(x, y, verbose=0)[1] > 0.9


def test_frozen_batch_normalization_keeps_and_uses_its_statistics():
    x, y = _data(seed=1)
    model = _convnet()
    model.compile(keras.optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    bn = model.layers[1]
    bn.trainable = False
    model.compile(keras.optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy")  # Keras: recompile
    frozen = [w.numpy() for w in bn.weights]
    conv_before = model.layers[0].params["kernel"].copy()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for a, b in zip(frozen, bn.weights):
        np.testing.assert_array_equal(a, b)  # neither gamma/beta nor the moving statistics moved
    assert not np.array_equal(conv_before, model.layers[0].params["kernel"])  # the rest trained
    # in training the frozen layer normalises with its moving statistics: the step's output is predict's
    h = model.layers[0](x[:16])
    np.testing.assert_array_equal(bn(h, training=True), bn(h, training=False))
    assert bn.trainable_weights == [] and len(model.non_trainable_weights) == 4
