"""keras.activations and the Activation/ReLU/Softmax/Rescaling layers on arrays of any rank
(Keras takes a 1-D vector without a batch axis), while model building keeps its shape checks;
keras.backend's image data format."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from convolab import keras
from convolab.autodiff import GradientTape, Variable
from convolab.layers import Activation, Dense, ReLU, Rescaling, Softmax

L = keras.layers


def _rng(label):
    return np.random.default_rng(zlib.crc32(label.encode()))


# ---------------------------------------------------------------------------
# activations on any rank, called directly (Keras allows 1-D and 0-D arrays)
# ---------------------------------------------------------------------------


def _softmax_ref(v):
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_softmax_layer_on_a_1d_vector_like_keras():
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(keras.layers.Softmax()(v), [0.09003057, 0.24472847, 0.66524096], rtol=1e-7)
    np.testing.assert_allclose(keras.activations.softmax(v), _softmax_ref(v), rtol=1e-15)
    layer = Softmax()
    y = layer(v)
    dy = np.array([1.0, 0.0, -1.0])
    dx = layer.backward(dy)
    jac = np.diag(y) - np.outer(y, y)  # softmax's Jacobian, written out
    np.testing.assert_allclose(dx, jac @ dy, rtol=1e-12, atol=1e-15)


_ANY_RANK = [
    (name, shape)
    for name in ("linear", "relu", "sigmoid", "tanh", "softmax")
    for shape in [(), (5,), (2, 3), (2, 3, 4, 2), (1, 2, 1, 2, 3)]
    if not (name == "softmax" and shape == ())
]  # softmax needs an axis: see below


@pytest.mark.parametrize("name,shape", _ANY_RANK, ids=str)
def test_activation_functions_and_layers_take_any_rank(name, shape):
    rng = _rng(f"anyrank-{name}-{shape}")
    x = rng.standard_normal(shape)
    ref = {
        "linear": x,
        "relu": np.maximum(x, 0),
        "sigmoid": 1 / (1 + np.exp(-x)),
        "tanh": np.tanh(x),
        "softmax": _softmax_ref(x) if shape else None,
    }[name]
    fn = getattr(keras.activations, name)
    np.testing.assert_allclose(fn(x), ref, rtol=1e-14, atol=1e-15)
    assert np.shape(fn(x)) == shape
    layer = Activation(name)
    np.testing.assert_allclose(layer(x), ref, rtol=1e-14, atol=1e-15)
    assert layer.backward(np.ones(shape)).shape == shape
    if name == "relu":
        np.testing.assert_allclose(ReLU()(x), ref, rtol=0, atol=0)
        np.testing.assert_allclose(
            keras.activations.relu(x, negative_slope=0.1, max_value=1.0, threshold=0.2),
            ReLU(negative_slope=0.1, max_value=1.0, threshold=0.2)(x),
        )


def test_activation_functions_cast_integers_and_keep_floats():
    assert keras.activations.relu(np.array([-1, 2])).dtype == np.float32
    assert keras.activations.softmax(np.array([1, 2, 3])).dtype == np.float32
    assert keras.activations.sigmoid(np.array([0.0], np.float64)).dtype == np.float64
    np.testing.assert_array_equal(keras.activations.relu([-1.0, 0.5]), [0.0, 0.5])  # lists too
    assert Softmax()(np.array([1, 2, 3])).dtype == np.float32
    np.testing.assert_allclose(
        keras.activations.softmax(np.array([[1.0, 2.0], [3.0, 5.0]]), axis=0),
        _softmax_ref(np.array([[1.0, 3.0], [2.0, 5.0]])).T,
    )


def test_softmax_of_a_scalar_is_refused():
    with pytest.raises(
        ValueError, match=re.escape("Softmax 'sm' expects input with at least 1 axis") + ".*got shape \\(\\)"
    ):
        Softmax(name="sm")(np.float64(3.0))
    with pytest.raises(ValueError, match=r"Activation 'act'.*at least 1 axis"):
        Activation("softmax", name="act")(2.0)
    with pytest.raises(ValueError, match="axis"):
        keras.activations.softmax(np.array(1.0))
    with pytest.raises(ValueError, match="axis=2"):
        keras.activations.softmax(np.ones((2, 2)), axis=2)


def test_model_building_keeps_its_shape_checks():
    # Direct calls take any rank; a model still needs a batch axis and a feature axis.
    for layer in (Activation("relu", name="a1"), Softmax(name="s1"), ReLU(name="r1"), Rescaling(2.0, name="k1")):
        with pytest.raises(ValueError, match=re.escape(f"{layer.describe()} expects input with a batch axis")):
            keras.Sequential([layer]).build((None,))
    model = keras.Sequential([L.Dense(3, input_shape=(4,)), L.Softmax()])
    with pytest.raises(ValueError, match="batch axis"):
        model.predict(np.ones(4, np.float32))


def test_a_layer_called_directly_on_a_vector_still_fits_a_model():
    layer = Activation("tanh")
    layer(np.array([0.5, -0.5]))
    model = keras.Sequential([L.Dense(3, input_shape=(4,)), layer])
    assert model.predict(np.ones((2, 4), np.float32), verbose=0).shape == (2, 3)


def test_keras_activations_get_serialize_and_as_layer_arguments():
    A = keras.activations
    assert A.get("relu") is A.relu and A.get(None) is A.linear and A.get(A.tanh) is A.tanh
    assert A.get("Softmax") is A.softmax
    assert A.serialize(A.sigmoid) == "sigmoid" and A.deserialize("tanh") is A.tanh
    with pytest.raises(ValueError, match="valid: linear, relu"):
        A.get("swishh")  # swish itself is known since issue 19
    assert Dense(3, activation=A.relu).activation == "relu"
    assert Activation(A.softmax).activation == "softmax"
    with pytest.raises(ValueError, match=r"Dense 'dd': unknown activation"):
        Dense(3, activation=3, name="dd")  # any callable is an activation (issue 19), a number is not


@pytest.mark.parametrize("name", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_activation_functions_on_tape_tensors_record_their_gradient(name):
    # A tape Tensor must not be flattened to an array (its gradient would be lost): the
    # functions hand it to keras.ops, and the gradient matches the NumPy op's backward.
    x0 = _rng(f"tape-{name}").standard_normal((2, 4))
    v = Variable(x0.copy())
    fn = getattr(keras.activations, name)
    dy = np.linspace(-1.0, 1.0, 8).reshape(2, 4)
    with GradientTape() as tape:
        y = fn(v)
        loss = keras.ops.sum(keras.ops.multiply(y, dy))
    (grad,) = tape.gradient(loss, [v])
    layer = Activation(name)
    np.testing.assert_allclose(np.asarray(y), layer(x0), rtol=1e-12)
    np.testing.assert_allclose(grad, layer.backward(dy), rtol=1e-12, atol=1e-15)
    if name == "relu":
        with pytest.raises(NotImplementedError, match="plain ReLU"):
            keras.activations.relu(v, negative_slope=0.1)


# ---------------------------------------------------------------------------
# keras.backend
# ---------------------------------------------------------------------------


def test_backend_image_data_format_floatx_epsilon():
    assert keras.backend.image_data_format() == "channels_last"
    keras.backend.set_image_data_format("channels_last")
    assert keras.backend.image_data_format() == "channels_last"
    with pytest.raises(ValueError, match=r"only 'channels_last'.*got 'channels_first'"):
        keras.backend.set_image_data_format("channels_first")
    assert keras.backend.image_data_format() == "channels_last"
    assert keras.backend.floatx() == "float32" and keras.backend.epsilon() == 1e-7
