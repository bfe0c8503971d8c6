"""Calling a functional model directly on NumPy data, as Keras 3 takes it: a dict keyed by input name for
a model with several inputs, and data one trailing axis of 1 short (``(N, 28, 28)`` into
``Input((28, 28, 1))``) or over, adjusted as Keras's ``Functional._adjust_input_rank`` does in ``call``."""

from __future__ import annotations

import numpy as np
import pytest

from convolab import keras
from convolab.autodiff import Variable

L = keras.layers
rng = np.random.default_rng(11)


def _two_inputs():
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    y = L.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(seed=0))(L.Concatenate()([a, b]))
    return keras.Model([a, b], y)


def test_a_dict_keyed_by_input_name_is_the_list_in_input_order():
    model = _two_inputs()
    xa, xb = rng.random((4, 3)), rng.random((4, 2))
    want = model([xa, xb])
    np.testing.assert_array_equal(model({"b": xb, "a": xa}), want)
    np.testing.assert_array_equal(model({"a": xa, "b": xb, "unused": xa}), want)  # other keys ignored, as Keras
    np.testing.assert_allclose(model.predict({"a": xa, "b": xb}, verbose=0), want, rtol=1e-6)


def test_a_dict_missing_an_input_names_them():
    model = _two_inputs()
    with pytest.raises(ValueError, match=r"keys must name the model's inputs \['a', 'b'\].*missing \['b'\]"):
        model({"a": rng.random((4, 3))})


def test_a_one_input_model_takes_a_dict_too():
    x = keras.Input((3,), name="pixels")
    model = keras.Model(x, L.Dense(1)(x))
    data = rng.random((2, 3))
    np.testing.assert_array_equal(model({"pixels": data}), model(data))


def test_data_one_axis_of_1_short_gains_it_as_fit_and_predict_do():
    inputs = keras.Input((28, 28, 1))
    y = L.Dense(3)(L.Flatten()(L.Conv2D(2, 3, kernel_initializer=keras.initializers.GlorotUniform(seed=0))(inputs)))
    model = keras.Model(inputs, y)
    x = rng.random((2, 28, 28)).astype("float32")
    got = model(x)
    np.testing.assert_array_equal(got, model(x[..., None]))
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_data_one_axis_of_1_over_loses_it():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, L.Dense(2)(inputs))
    x = rng.random((3, 4))
    np.testing.assert_array_equal(model(x[..., None]), model(x))


def test_data_that_does_not_fit_after_adjusting_is_reported_as_given():
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, L.Flatten()(inputs))
    with pytest.raises(ValueError, match=r"expects shape \(None, 28, 28, 1\); got data of shape \(2, 28, 27\)"):
        model(np.zeros((2, 28, 27)))


def test_dict_inputs_on_the_tape_get_gradients():
    model = _two_inputs()
    xa, xb = Variable(rng.random((4, 3))), rng.random((4, 2))
    with keras.GradientTape() as tape:
        loss = keras.ops.sum(model({"a": xa, "b": xb}))
    grads = tape.gradient(loss, [xa] + model.trainable_weights)
    assert all(g is not None for g in grads)
    assert grads[0].shape == (4, 3)
