"""A small conv model and data shared by the scripts that tests/distributed/test_distributed.py runs under mpiexec."""

import numpy as np

from convolab import keras


def data(n=64):
    rng = np.random.default_rng(123)
    x = rng.standard_normal((n, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return x, y


def model(optimizer, seed):
    keras.utils.set_random_seed(seed)
    m = keras.models.Sequential(
        [
            keras.layers.Conv2D(4, (3, 3), activation="relu", input_shape=(8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m
