"""Which accuracy ``metrics=['acc']`` means is decided by the loss's type and the shapes,
never by the loss's name (defect 3: ``SparseCategoricalCrossentropy(name='xent')`` reported
categorical accuracy of integer labels, a different number on the same predictions)."""

import numpy as np
import pytest

from convolab import keras


def _model(units):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.layers.Flatten(input_shape=(4, 4, 1)), keras.layers.Dense(units)])


def _data(n=64, classes=5):
    rng = np.random.default_rng(0)
    return rng.random((n, 4, 4, 1)).astype(np.float32), rng.integers(0, classes, n)


@pytest.mark.parametrize("name", [None, "xent", "categorical_crossentropy", "my loss"])
@pytest.mark.parametrize("metric", ["acc", "accuracy"])
def test_sparse_loss_accuracy_ignores_the_name(name, metric):
    x, y = _data()
    model = _model(5)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, **({} if name is None else {"name": name}))
    model.compile(optimizer="sgd", loss=loss, metrics=[metric])
    logs = model.evaluate(x, y, return_dict=True, verbose=0)
    expected = np.mean(model.predict(x, verbose=0).argmax(axis=1) == y)  # worked out by hand
    assert logs[metric] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", [None, "sparse_categorical_crossentropy", "cce"])
def test_categorical_loss_accuracy_ignores_the_name(name):
    x, y = _data()
    onehot = np.eye(5, dtype=np.float32)[y]
    model = _model(5)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, **({} if name is None else {"name": name}))
    model.compile(optimizer="sgd", loss=loss, metrics=["acc"])
    logs = model.evaluate(x, onehot, return_dict=True, verbose=0)
    assert logs["acc"] == pytest.approx(np.mean(model.predict(x, verbose=0).argmax(1) == y), abs=1e-12)


def test_mse_on_one_hot_targets_uses_categorical_accuracy():
    x, y = _data()
    onehot = np.eye(5, dtype=np.float32)[y]
    model = _model(5)
    model.compile(optimizer="sgd", loss="mse", metrics=["accuracy"])
    logs = model.evaluate(x, onehot, return_dict=True, verbose=0)
    assert logs["accuracy"] == pytest.approx(np.mean(model.predict(x, verbose=0).argmax(1) == y), abs=1e-12)


def test_single_output_is_binary_accuracy():
    x, y = _data(classes=2)
    model = _model(1)
    model.compile(optimizer="sgd", loss="mse", metrics=["acc"])
    logs = model.evaluate(x, y.astype(np.float32)[:, None], return_dict=True, verbose=0)
    p = model.predict(x, verbose=0)[:, 0]
    assert logs["acc"] == pytest.approx(np.mean((p > 0.5) == (y > 0.5)), abs=1e-12)
