"""The vectorised erf/erfc (nn/erf.py) against ``math.erf``/``math.erfc`` on a dense grid with the
tails, and exact GELU (``keras.activations.gelu``, ``Activation('gelu')``) through the public API:
values against ``x * Phi(x)`` from ``math.erf``, float32 and float64, and a float64 gradient check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convolab import keras
from convolab.autodiff import GradientTape, Variable
from convolab.nn.erf import erf, erfc
from support.gradcheck import numerical_gradient, rel_error

#: a dense grid over [-30, 30], the region boundaries (0.46875, 4) on both sides, and tiny values
GRID = np.unique(
    np.concatenate(
        [
            np.linspace(-30.0, 30.0, 120_001),
            np.nextafter(0.46875, [-1.0, 1.0]),
            np.nextafter(4.0, [-1.0, 1.0]),
            -np.nextafter(0.46875, [-1.0, 1.0]),
            -np.nextafter(4.0, [-1.0, 1.0]),
            [0.46875, 4.0, -0.46875, -4.0, 26.543, 27.0, 27.3, 5e-324, -5e-324, 0.0, -0.0],
            np.geomspace(1e-300, 1.0, 2000),
            -np.geomspace(1e-300, 1.0, 2000),
        ]
    )
)


def _ref(fn, x):
    return np.array([fn(float(v)) for v in np.ravel(x)]).reshape(np.shape(x))


def _max_rel(got, want, floor=1e-300):
    """The largest relative error where ``|want| > floor``, and the largest absolute one elsewhere."""
    big = np.abs(want) > floor
    rel = (np.abs(got - want)[big] / np.abs(want[big])).max()
    tiny = np.abs(got - want)[~big].max() if (~big).any() else 0.0
    return rel, tiny


def test_erf_matches_math_erf_to_1e_15_on_a_dense_grid_with_tails():
    rel, tiny = _max_rel(erf(GRID), _ref(math.erf, GRID))
    assert rel < 1e-15
    assert tiny < 1e-300


def test_erfc_matches_math_erfc_to_1e_15_where_it_is_a_normal_number():
    rel, tiny = _max_rel(erfc(GRID), _ref(math.erfc, GRID))
    assert rel < 2e-15
    assert tiny < 1e-300  # subnormal results: absolute error only


def test_erf_special_values_shape_and_odd_symmetry():
    got = erf(np.array([np.inf, -np.inf, np.nan, 0.0, -0.0]))
    np.testing.assert_array_equal(got[[0, 1, 3]], [1.0, -1.0, 0.0])
    assert np.isnan(got[2]) and np.signbit(got[4])
    np.testing.assert_array_equal(erfc(np.array([np.inf, -np.inf])), [0.0, 2.0])
    assert np.isnan(erfc(np.array([np.nan]))[0])
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) * 3
    assert erf(x).shape == (3, 4, 5) and erf(x).dtype == np.float64
    np.testing.assert_array_equal(erf(-x), -erf(x))
    np.testing.assert_allclose(erf(x) + erfc(x), 1.0, rtol=0, atol=2e-16)
    # more values than one block (nn/erf.py works block by block): every block is computed
    long = np.linspace(-6, 6, 100_003)
    rel, _ = _max_rel(erf(long), _ref(math.erf, long))
    assert rel < 1e-15


def _gelu_ref(x):
    """``x Phi(x)``, Phi from ``math.erfc`` (accurate in the negative tail, where 1 + erf cancels)."""
    return np.array([v * 0.5 * math.erfc(-v / math.sqrt(2.0)) for v in np.ravel(x)]).reshape(np.shape(x))


# The tail's relative error is the argument's rounding times d log erfc / du ~ 2u^2 (u = -x/sqrt 2):
# about 2e-13 at x = -30 in float64 and 1e-5 at x = -12 in float32.
@pytest.mark.parametrize("dtype, rtol", [("float64", 3e-13), ("float32", 3e-5)])
def test_keras_gelu_exact_matches_x_phi_x(dtype, rtol):
    x = np.concatenate([np.linspace(-8, 8, 4001), [-30.0, -12.0, 12.0, 30.0]]).astype(dtype)
    want = _gelu_ref(x.astype(np.float64))
    if dtype == "float32":
        want[x < -13] = 0.0  # x Phi(x) is below float32's smallest number there
    for got in (
        keras.activations.gelu(x, approximate=False),
        keras.activations.gelu(x),  # approximate=False is Keras 3's default
        keras.activations.get("gelu")(x),
    ):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300 if dtype == "float64" else 1e-37)
    layer = keras.layers.Activation("gelu", dtype=dtype)
    np.testing.assert_allclose(layer(x.reshape(5, -1)[:, :801]), want.reshape(5, -1)[:, :801], rtol=rtol, atol=1e-30)


def test_keras_gelu_negative_tail_is_not_cancelled_to_zero():
    # 1 + erf(-8 / sqrt 2) is 0 in float32: GELU's tail must come from erfc instead
    got = keras.activations.gelu(np.array([-8.0, -10.0], dtype="float32"))
    assert np.all(got < 0)
    np.testing.assert_allclose(got, _gelu_ref(np.array([-8.0, -10.0])), rtol=3e-5)


def test_keras_gelu_exact_gradient_float64():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6)) * 3
    dy = rng.standard_normal(x.shape)
    v = Variable(x)
    with GradientTape() as tape:
        loss = keras.ops.sum(keras.ops.multiply(keras.activations.gelu(v, approximate=False), dy))
    (grad,) = tape.gradient(loss, [v])
    num = numerical_gradient(lambda a: keras.activations.gelu(a, approximate=False), x.copy(), dy)
    assert rel_error(np.asarray(grad), num) < 1e-8


def test_activation_layer_gelu_backward_float64():
    rng = np.random.default_rng(4)
    layer = keras.layers.Activation("gelu", dtype="float64")
    x = rng.standard_normal((3, 7)) * 2.5
    layer(x)
    y = layer.call(x, training=True)
    dy = rng.standard_normal(y.shape)
    layer.need_input_grad = True
    dx = layer.backward(dy)
    num = numerical_gradient(lambda a: layer.call(a, training=True), x.copy(), dy)
    assert rel_error(dx, num) < 1e-8
