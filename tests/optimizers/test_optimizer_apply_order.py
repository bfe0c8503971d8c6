"""``optimizer.apply(grads, trainable_variables)`` in Keras 3's order (issue 19).

keras.io's "Writing a training loop from scratch" guide calls
``optimizer.apply(grads, model.trainable_weights)``; ``apply_gradients(zip(grads, vars))`` stays.
Each step is checked against plain SGD worked out here.
"""

import warnings

import numpy as np
import pytest

from convolab import keras
from convolab.keras import layers, ops


def _data(n=16, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def _model():
    inputs = keras.Input(shape=(4,))
    return keras.Model(inputs, layers.Dense(1)(inputs))


def _by_hand(w, b, x, y, lr):
    r = x.astype(np.float64) @ w + b - y
    return w - lr * 2.0 * x.T @ r / r.size, b - lr * 2.0 * r.sum(0) / r.size


@pytest.mark.parametrize("spelling", ["apply", "apply_gradients"])
def test_training_loop_from_scratch_as_keras_io_writes_it(spelling):
    x, y = _data()
    model = _model()
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    w, b = [a.astype(np.float64) for a in model.get_weights()]
    losses = []
    for _ in range(3):
        with keras.GradientTape() as tape:
            logits = model(x, training=True)
            loss_value = ops.mean((logits - y) ** 2)
        grads = tape.gradient(loss_value, model.trainable_weights)
        if spelling == "apply":
            optimizer.apply(grads, model.trainable_weights)
        else:
            optimizer.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(loss_value))
        w, b = _by_hand(w, b, x, y, 0.1)
        np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(model.get_weights()[1], b, rtol=1e-4, atol=1e-6)
    assert optimizer.iterations == 3
    assert losses[2] < losses[0]


def test_apply_takes_plain_arrays_gradients_first():
    w = np.array([1.0, 2.0])
    keras.optimizers.SGD(learning_rate=0.5).apply([np.array([1.0, -2.0])], [w])
    np.testing.assert_allclose(w, [0.5, 3.0])


def test_swapped_arguments_are_refused_before_any_variable_moves():
    model = _model()
    before = [v.numpy() for v in model.trainable_weights]
    grads = [np.ones(v.shape, np.float32) for v in model.trainable_weights]
    with pytest.raises(TypeError, match=r"gradients first.*optimizer.apply\(grads, model.trainable_weights\)"):
        keras.optimizers.SGD().apply(model.trainable_weights, grads)
    for v, old in zip(model.trainable_weights, before):
        np.testing.assert_array_equal(v.numpy(), old)


def test_variables_are_required():
    with pytest.raises(TypeError, match="trainable_variables"):
        keras.optimizers.Adam().apply([np.ones(2)])


def test_a_missing_gradient_is_skipped_with_a_warning():
    a, b = np.array([1.0]), np.array([1.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras.optimizers.SGD(learning_rate=1.0).apply([None, np.array([1.0])], [a, b])
    assert any("gradients do not exist for 1 of 2" in str(w.message) for w in caught)
    np.testing.assert_array_equal(a, [1.0])
    np.testing.assert_array_equal(b, [0.0])
