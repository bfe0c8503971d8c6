"""Weights are Keras Variables (issue 19 item 4): ``layer.weights``, ``trainable_weights``,
``layer.kernel`` and ``add_weight`` give the same :class:`Variable` objects, with Keras 3's
``name``/``path``/``numpy()``/``assign*``/``value``/``trainable``; NumPy takes them as arrays
outside a tape; ``get_weights`` stays NumPy. The programs are written as Keras users write them.
"""

import numpy as np
import pytest

from convolab import keras
from convolab.autodiff.tensor import Variable
from convolab.keras import layers, ops


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu"), layers.Dense(2)])


def test_trainable_weights_print_as_keras_programs_do(capsys):
    model = small_model()
    for w in model.trainable_weights:
        print(w.name, w.path, w.shape, w.dtype)
    first, second = (l.name for l in model.layers)
    assert capsys.readouterr().out.splitlines() == [
        f"kernel {first}/kernel (4, 3) float32",
        f"bias {first}/bias (3,) float32",
        f"kernel {second}/kernel (3, 2) float32",
        f"bias {second}/bias (2,) float32",
    ]
    assert all(isinstance(w, Variable) for w in model.weights)
    assert model.weights[0].dtype == "float32" and model.weights[0].trainable


def test_the_same_variable_every_time():
    model = small_model()
    dense = model.layers[0]
    assert dense.weights[0] is dense.weights[0] is dense.kernel is model.weights[0]
    assert dense.trainable_weights[1] is dense.bias is model.trainable_weights[1]
    assert model.layers[1].kernel is model.weights[2]
    assert dense.kernel.value is dense.params["kernel"]  # the array the optimizer updates


def test_numpy_is_a_copy_and_the_variable_follows_training():
    model = small_model()
    model.compile("sgd", "mse")
    kernel = model.layers[0].kernel
    before = kernel.numpy()
    x = np.random.default_rng(0).random((32, 4), np.float32)
    model.fit(x, x[:, :2], epochs=2, batch_size=8, verbose=0)  # Sequential's fused engine
    assert model.layers[0].kernel is kernel
    assert not np.array_equal(before, kernel.numpy())  # the kept handle reads the trained weight
    np.testing.assert_array_equal(kernel.numpy(), model.get_weights()[0])
    assert model.optimizer.get_state(kernel) is not None  # state keyed by the variable, as in Keras


def test_assign_assign_add_assign_sub():
    layer = layers.Dense(2)
    layer.build((None, 3))
    layer.kernel.assign(np.ones((3, 2)))
    layer.bias.assign([1.0, 2.0])
    layer.kernel.assign_add(np.full((3, 2), 2.0))
    layer.bias.assign_sub(1.0)  # a scalar broadcasts, as in Keras
    np.testing.assert_array_equal(layer.get_weights()[0], np.full((3, 2), 3.0, np.float32))
    np.testing.assert_array_equal(layer(np.ones((1, 3), np.float32)), [[9.0, 10.0]])
    with pytest.raises(
        ValueError,
        match=r"Variable 'dense\w*/kernel'.assign: the variable has shape \(3, 2\); "
        r"got a value of shape \(2, 3\)",
    ):
        layer.kernel.assign(np.ones((2, 3)))
    with pytest.raises(TypeError, match="not written by index"):
        layer.kernel[0, 0] = 1.0


def test_numpy_takes_a_variable_as_an_array_outside_a_tape():
    layer = layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")
    layer.build((None, 3))
    k = layer.kernel
    assert np.asarray(k) is k.value
    x = np.full((1, 3), 2.0, np.float32)
    np.testing.assert_array_equal(x @ k, [[6.0, 6.0]])
    np.testing.assert_array_equal(k * 2 + 1, np.full((3, 2), 3.0))
    np.testing.assert_array_equal(np.abs(-k), np.ones((3, 2)))  # a ufunc
    assert np.mean(k) == 1.0 and float(np.sum(k)) == 6.0 and k[0, 1] == 1.0
    np.testing.assert_allclose(k, np.ones((3, 2)))


def test_arithmetic_on_a_tape_records_even_with_an_array_on_the_left():
    layer = layers.Dense(2)
    layer.build((None, 3))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with keras.GradientTape() as tape:
        y = ops.sum(x @ layer.kernel + layer.bias)  # ndarray @ Variable: recorded
    gk, gb = tape.gradient(y, [layer.kernel, layer.bias])
    np.testing.assert_allclose(gk, np.repeat(x.sum(0)[:, None], 2, 1))
    np.testing.assert_allclose(gb, [2.0, 2.0])
    with keras.GradientTape():
        with pytest.raises(TypeError, match="inside a GradientTape would lose its gradient"):
            np.exp(layer.kernel)


def test_custom_training_loop_as_keras_writes_it():
    model = small_model()
    optimizer = keras.optimizers.SGD(0.1)
    x = np.random.default_rng(1).random((16, 4), np.float32)
    y = x[:, :2] * 2
    losses = []
    for _ in range(20):
        with keras.GradientTape() as tape:
            loss = ops.mean(ops.square(y - model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_frozen_layer_variables_are_not_trainable():
    model = small_model()
    model.layers[0].trainable = False
    assert [v.trainable for v in model.weights] == [False, False, True, True]
    assert model.trainable_weights == model.layers[1].trainable_weights
    assert [v.path for v in model.non_trainable_weights] == [v.path for v in model.layers[0].weights]


def test_get_weights_are_arrays_and_set_weights_takes_variables():
    a, b = small_model(0), small_model(1)
    assert all(type(w) is np.ndarray for w in a.get_weights())
    b.set_weights(a.weights)  # Variables, as Keras accepts them
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    before = b.get_weights()
    bad = [w.numpy() for w in a.weights]
    bad[-1] = np.zeros(5)
    with pytest.raises(
        ValueError, match=r"weight 3 \('dense\w*/bias'\) has shape \(2,\); got an array of shape \(5,\)"
    ):
        b.set_weights(bad)
    for w0, w1 in zip(before, b.get_weights()):  # checked before any was written
        np.testing.assert_array_equal(w0, w1)


class Scale(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = layers.Dense(2, name="inner")

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(2,), initializer="ones", name="scale")
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")

    def call(self, x):
        return self.inner(x) * self.scale


def test_a_users_layer_with_add_weight_and_a_sublayer():
    layer = Scale(name="scale_layer")
    layer(np.ones((1, 3), np.float32))
    assert layer.weights[0] is layer.scale and layer.weights[1] is layer.count
    assert [w.path for w in layer.weights] == ["scale_layer/scale", "scale_layer/count", "inner/kernel", "inner/bias"]
    assert [w.name for w in layer.trainable_weights] == ["scale", "kernel", "bias"]
    assert [w.name for w in layer.non_trainable_weights] == ["count"]
    assert [w.shape for w in layer.get_weights()] == [(2,), (), (3, 2), (2,)]  # the sublayer's too
    layer.set_weights([np.full(2, 3.0), np.array(1.0), np.ones((3, 2)), np.zeros(2)])
    np.testing.assert_array_equal(layer(np.ones((1, 3), np.float32)), [[9.0, 9.0]])
    assert layer.count_params() == 2 + 1 + 6 + 2
    layer.count.assign_add(1.0)
    assert float(layer.count.numpy()) == 2.0
