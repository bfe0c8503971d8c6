"""The lesson's Keras code runs verbatim after ``from convolab import keras``.

Only the data are replaced: small generated arrays of MNIST's and CIFAR-10's shapes and
dtypes (uint8 images, integer labels, CIFAR's ``(N, 1)`` labels), so no download is needed.
"""

from __future__ import annotations

import numpy as np
import pytest

import convolab
from convolab import keras


def fake_mnist(n_train=96, n_test=32, seed=0):
    """uint8 (N, 28, 28) images and uint8 labels, like keras.datasets.mnist.load_data().

    Each class k has a bright 6x6 block at a class-dependent place, so there is something to learn.
    """
    rng = np.random.default_rng(seed)

    def part(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(y):
            r, c = 2 + 8 * (k // 3 % 3), 2 + 8 * (k % 3)
            x[i, r : r + 6, c : c + 6] = 200 + 5 * (k // 9)
        return x, y

    return part(n_train), part(n_test)


def fake_cifar(n_train=48, n_test=16, seed=1):
    """uint8 (N, 32, 32, 3) images and uint8 (N, 1) labels, like keras.datasets.cifar10.load_data()."""
    rng = np.random.default_rng(seed)

    def part(n):
        return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, (n, 1)).astype(np.uint8)

    return part(n_train), part(n_test)


def test_namespace_matches_keras():
    assert keras.models.Sequential is keras.Sequential is convolab.Sequential
    for name in (
        "Conv2D",
        "MaxPooling2D",
        "AveragePooling2D",
        "Flatten",
        "Dense",
        "Dropout",
        "Activation",
        "ReLU",
        "Softmax",
        "InputLayer",
        "MaxPool2D",
        "AvgPool2D",
        "Convolution2D",
    ):
        assert getattr(keras.layers, name) is getattr(convolab.layers, name)
    assert keras.layers.MaxPool2D is keras.layers.MaxPooling2D
    assert isinstance(keras.optimizers.Adam(), convolab.optimizers.Optimizer)
    assert callable(keras.utils.to_categorical) and callable(keras.utils.set_random_seed)
    assert callable(keras.backend.clear_session)
    assert keras.callbacks.EarlyStopping is convolab.callbacks.EarlyStopping


def test_lesson_one_conv_runs_verbatim(capsys):
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = fake_mnist()
    # --- lesson code -------------------------------------------------------
    x_train = x_train.astype(np.float32) / 255.0
    x_test = x_test.astype(np.float32) / 255.0
    x_train_c = np.expand_dims(x_train, 3)
    x_test_c = np.expand_dims(x_test, 3)
    model = keras.models.Sequential(
        [
            keras.layers.Conv2D(filters=9, kernel_size=(5, 5), input_shape=(28, 28, 1), activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"])
    model.summary()
    hist = model.fit(x_train_c, y_train, validation_data=(x_test_c, y_test), epochs=2)
    l = model.layers[0].weights[0]
    filters = [l[..., 0, i] for i in range(9)]
    # -----------------------------------------------------------------------
    out = capsys.readouterr().out
    assert "Total params: 52,084" in out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "val_acc:" in out
    assert set(hist.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert len(hist.history["val_acc"]) == 2
    assert hist.history["val_acc"][-1] > 0.5  # ten easy classes: far above chance after two epochs
    assert all(f.shape == (5, 5) for f in filters)
    np.testing.assert_array_equal(filters[4], model.layers[0].get_weights()[0][:, :, 0, 4])
    assert len({f.tobytes() for f in filters}) == 9  # nine different filters
    # The default optimiser is Keras's: RMSprop(0.001).
    assert type(model.optimizer).__name__ == "RMSprop"
    # val_acc is the accuracy of predict's argmax on the test set.
    pred = model.predict(x_test_c)
    assert hist.history["val_acc"][-1] == pytest.approx(np.mean(pred.argmax(1) == y_test), abs=1e-12)


def test_lesson_two_conv_runs_verbatim(capsys):
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = fake_mnist()
    x_train_c = np.expand_dims(x_train.astype(np.float32) / 255.0, 3)
    x_test_c = np.expand_dims(x_test.astype(np.float32) / 255.0, 3)
    # --- lesson code -------------------------------------------------------
    model = keras.models.Sequential(
        [
            keras.layers.Conv2D(filters=10, kernel_size=(5, 5), input_shape=(28, 28, 1), activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(filters=20, kernel_size=(5, 5), activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"])
    model.summary()
    hist = model.fit(x_train_c, y_train, validation_data=(x_test_c, y_test), epochs=2)
    # -----------------------------------------------------------------------
    out = capsys.readouterr().out
    assert "Total params: 8,490" in out
    assert "(None, 4, 4, 20)" in out
    assert np.isfinite(hist.history["val_loss"]).all() and len(hist.history["val_acc"]) == 2


def test_lesson_lenet_cifar_runs_verbatim(capsys):
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = fake_cifar()
    # --- lesson code -------------------------------------------------------
    x_train = x_train.astype(np.float32) / 255.0
    x_test = x_test.astype(np.float32) / 255.0
    model = keras.models.Sequential(
        [
            keras.layers.Conv2D(filters=6, kernel_size=5, strides=1, activation="relu", input_shape=(32, 32, 3)),
            keras.layers.MaxPooling2D(pool_size=2, strides=2),
            keras.layers.Conv2D(filters=16, kernel_size=5, strides=1, activation="relu"),
            keras.layers.MaxPooling2D(pool_size=2, strides=2),
            keras.layers.Flatten(),
            keras.layers.Dense(120, activation="relu"),
            keras.layers.Dense(84, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.summary()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    hist = model.fit(x_train, y_train, validation_data=(x_test, y_test), epochs=2)
    # -----------------------------------------------------------------------
    out = capsys.readouterr().out
    assert "Total params: 62,006" in out
    assert set(hist.history) == {"loss", "acc", "val_loss", "val_acc"}
    # CIFAR's labels are (N, 1); the loss took them as class indices: a fresh 10-way softmax starts near log(10).
    assert abs(hist.history["loss"][0] - np.log(10)) < 0.5
    probs = model.predict(x_test)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert hist.history["val_acc"][-1] == pytest.approx(np.mean(probs.argmax(1) == y_test[:, 0]), abs=1e-12)


def test_keras_style_extras_run_verbatim():
    keras.utils.set_random_seed(42)
    keras.backend.clear_session()
    (x_train, y_train), (x_test, y_test) = fake_mnist(n_train=64, n_test=32)
    x_train_c = np.expand_dims(x_train / 255.0, 3)
    x_test_c = np.expand_dims(x_test / 255.0, 3)
    y_train_oh = keras.utils.to_categorical(y_train, 10)
    y_test_oh = keras.utils.to_categorical(y_test, 10)
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Dropout(0.2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    assert model.layers[0].name == "conv2d"
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(
        x_train_c,
        y_train_oh,
        validation_data=(x_test_c, y_test_oh),
        epochs=20,
        batch_size=16,
        verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)],
    )
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert 1 <= len(hist.history["loss"]) <= 20
    loss, acc = model.evaluate(x_test_c, y_test_oh, verbose=0)
    # The model ends with the weights of its best epoch (restored, or the last one if that was best).
    assert loss == pytest.approx(min(hist.history["val_loss"]), rel=1e-6)
    assert hist.history["val_loss"][-1] < hist.history["val_loss"][0] - 1.0
    assert acc > 0.8


def test_lesson_sgd_and_sparse_losses_by_instance():
    keras.utils.set_random_seed(3)
    (x_train, y_train), _ = fake_mnist(n_train=32)
    model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)), keras.layers.Dense(10)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["acc"],
    )
    before = model.evaluate(x_train / 255.0, y_train, verbose=0)[0]
    model.fit(x_train / 255.0, y_train, epochs=5, verbose=0)
    after = model.evaluate(x_train / 255.0, y_train, verbose=0)[0]
    assert after < before
    # keras.losses functions work on arrays and return per-sample values, as in Keras.
    logits = model.predict(x_train[:4] / 255.0)
    val = keras.losses.sparse_categorical_crossentropy(y_train[:4], logits, from_logits=True)
    z = logits.astype(np.float64)
    ref = np.log(np.exp(z).sum(1)) - z[np.arange(4), y_train[:4]]
    assert val.shape == (4,)
    np.testing.assert_allclose(val, ref, rtol=1e-5)
