"""Layers: float64 gradient checks through each layer, and Keras's defaults and weight handling.

The pure ops have their own tests (tests/nn/); here every check goes through the
layer object (``build`` -> ``call(training=True)`` -> ``backward``), so a layer that wires
an op wrongly (wrong cache, wrong activation order, gradients stored under the wrong key,
a backward that writes into its caller's gradient) fails here.
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest

from convolab import backend
from convolab.layers import (
    Activation,
    AveragePooling2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    ReLU,
    Softmax,
)
from convolab.random import set_random_seed
from support.gradcheck import numerical_gradient, rel_error
from support.layer_gradients import TOL, check_layer_gradients


def _rng(label):
    return np.random.default_rng(zlib.crc32(label.encode()))


# ---------------------------------------------------------------------------
# Conv2D
# ---------------------------------------------------------------------------

_CONV_STRIDES = [1, 2, (2, 1)]
_CONV_PADDINGS = ["valid", "same"]
_CONV_KERNELS = [1, 3, (2, 3)]
_CONV_CN = [(1, 1), (3, 2), (3, 1), (1, 2)]  # (channels, batch), rotated through the geometry table


def _conv_cases():
    cases = []
    for i, (s, p, k) in enumerate(itertools.product(_CONV_STRIDES, _CONV_PADDINGS, _CONV_KERNELS)):
        c, n = _CONV_CN[i % len(_CONV_CN)]
        cases.append((s, p, k, c, n, "linear", (5, 6)))
    # Every activation, on a geometry with padding and stride (the fused activation's backward).
    for act in ("linear", "relu", "sigmoid", "tanh", "softmax"):
        cases.append((2, "same", 3, 3, 2, act, (5, 5)))
        cases.append((1, "valid", (2, 3), 1, 1, act, (4, 5)))
    return cases


def _conv_id(case):
    s, p, k, c, n, act, hw = case
    return f"s{s}-{p}-k{k}-c{c}-n{n}-{act}-{hw[0]}x{hw[1]}".replace(" ", "")


@pytest.mark.parametrize("case", _conv_cases(), ids=_conv_id)
def test_conv2d_layer_gradients(case):
    strides, padding, k, c, n, act, (h, w) = case
    rng = _rng(_conv_id(case))
    layer = Conv2D(
        2, k, strides=strides, padding=padding, activation=act, dtype="float64", bias_initializer="random_normal"
    )
    layer.build((None, h, w, c))
    x = rng.standard_normal((n, h, w, c))
    check_layer_gradients(layer, x, rng)


def test_conv2d_without_bias_has_only_kernel_and_its_gradient():
    rng = _rng("nobias")
    layer = Conv2D(3, 2, use_bias=False, dtype="float64")
    layer.build((None, 4, 4, 2))
    assert list(layer.params) == ["kernel"]
    assert layer.count_params() == 2 * 2 * 2 * 3
    check_layer_gradients(layer, rng.standard_normal((2, 4, 4, 2)), rng)


def test_conv2d_layer_forward_matches_explicit_sum():
    """One output pixel written out by hand: activation(sum over window and channels + bias)."""
    rng = _rng("conv-explicit")
    layer = Conv2D(
        2, (2, 3), strides=(2, 1), padding="valid", activation="tanh", dtype="float64", bias_initializer="random_normal"
    )
    layer.build((None, 5, 6, 3))
    x = rng.standard_normal((1, 5, 6, 3))
    y = layer(x)
    k, b = layer.params["kernel"], layer.params["bias"]
    # Output (i=1, j=2) reads rows 2..3 and columns 2..4.
    for f in range(2):
        z = sum(x[0, 2 + di, 2 + dj, ch] * k[di, dj, ch, f] for di in range(2) for dj in range(3) for ch in range(3))
        assert y[0, 1, 2, f] == pytest.approx(math.tanh(z + b[f]), rel=1e-12)


# ---------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("x_shape", [(3, 4), (2, 3, 4)], ids=["2d", "3d"])
def test_dense_layer_gradients(act, x_shape):
    rng = _rng(f"dense-{act}-{x_shape}")
    layer = Dense(3, activation=act, dtype="float64", bias_initializer="random_normal")
    layer.build((None,) + x_shape[1:])
    check_layer_gradients(layer, rng.standard_normal(x_shape), rng)


def test_dense_3d_input_acts_on_last_axis():
    rng = _rng("dense3d")
    layer = Dense(5, dtype="float64", bias_initializer="random_normal")
    x = rng.standard_normal((2, 3, 4))
    y = layer(x)
    assert layer.params["kernel"].shape == (4, 5)
    expect = np.einsum("nti,io->nto", x, layer.params["kernel"]) + layer.params["bias"]
    np.testing.assert_allclose(y, expect, rtol=1e-12)


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


def _distinct(rng, shape):
    """Distinct values at least 0.01 apart, so no max-pool window has a tie within the FD step."""
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(np.float64) * 0.01 - n * 0.005).reshape(shape)


_POOL_CASES = [
    (pool, strides, padding) for pool, strides, padding in itertools.product([2, 3], [None, 1, 2], ["valid", "same"])
]


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D], ids=["max", "avg"])
@pytest.mark.parametrize("pool,strides,padding", _POOL_CASES)
def test_pooling_layer_gradients(cls, pool, strides, padding):
    rng = _rng(f"{cls.__name__}-{pool}-{strides}-{padding}")
    layer = cls(pool_size=pool, strides=strides, padding=padding)
    x = _distinct(rng, (2, 5, 6, 2))
    layer.build((None, 5, 6, 2))
    check_layer_gradients(layer, x, rng)


def test_maxpool_default_strides_equal_pool_size_values():
    """Keras: strides=None means strides=pool_size: non-overlapping 3x3 blocks of a 6x6 image."""
    x = np.arange(36, dtype=np.float64).reshape(1, 6, 6, 1)
    layer = MaxPooling2D(pool_size=3)
    assert layer.strides == (3, 3)
    y = layer(x)
    # Block maxima are the bottom-right corners: rows 2, 5 and columns 2, 5.
    np.testing.assert_array_equal(y[0, :, :, 0], [[14.0, 17.0], [32.0, 35.0]])
    avg = AveragePooling2D(pool_size=(3, 3))(x)
    np.testing.assert_array_equal(avg[0, :, :, 0], [[7.0, 10.0], [25.0, 28.0]])


def test_maxpool_keras_defaults():
    layer = MaxPooling2D()
    assert layer.pool_size == (2, 2) and layer.strides == (2, 2) and layer.padding == "valid"
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(layer(x)[0, :, :, 0], [[5.0, 7.0], [13.0, 15.0]])


def test_maxpool_backward_routes_gradient_to_the_maximum():
    x = np.array([[1.0, 9.0], [3.0, 2.0]]).reshape(1, 2, 2, 1)
    layer = MaxPooling2D()
    layer(x)
    dx = layer.backward(np.full((1, 1, 1, 1), 5.0))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 5.0], [0.0, 0.0]])


# ---------------------------------------------------------------------------
# Flatten, Activation, ReLU, Softmax
# ---------------------------------------------------------------------------


def test_flatten_is_c_order_nhwc_and_gradients():
    rng = _rng("flatten")
    x = rng.standard_normal((2, 3, 4, 2))
    layer = Flatten()
    y = layer(x)
    assert y.shape == (2, 24)
    # Keras flattens channels-last in C order: element (h, w, c) goes to h*W*C + w*C + c.
    assert y[1, 1 * 4 * 2 + 3 * 2 + 1] == x[1, 1, 3, 1]
    check_layer_gradients(layer, x, rng)


@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_activation_layer_gradients(act):
    rng = _rng(f"act-{act}")
    layer = Activation(act)
    x = rng.standard_normal((2, 3, 4))
    layer.build((None, 3, 4))
    check_layer_gradients(layer, x, rng)


def test_activation_layer_values():
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_allclose(Activation("relu")(x), [[0.0, 0.0, 2.0]])
    np.testing.assert_allclose(Activation("sigmoid")(x), [[1 / (1 + math.e), 0.5, 1 / (1 + math.exp(-2))]])
    np.testing.assert_allclose(Activation("tanh")(x), [[math.tanh(-1), 0.0, math.tanh(2)]])
    np.testing.assert_allclose(Activation(None)(x), x)


def _relu_ref(v, max_value, negative_slope, threshold):
    """Keras's ReLU for one number, written out (threshold >= 0)."""
    if v > threshold:
        out = v
    else:
        out = negative_slope * (v - threshold)
    if max_value is not None:
        out = min(out, max_value)
    return out


_RELU_ARGS = [
    dict(),
    dict(negative_slope=0.2),
    dict(max_value=0.8),
    dict(threshold=0.3),
    dict(max_value=1.0, negative_slope=0.1, threshold=0.25),
]


@pytest.mark.parametrize("kwargs", _RELU_ARGS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()) or "default")
def test_relu_layer_values_and_gradients(kwargs):
    rng = _rng(f"relu-{kwargs}")
    layer = ReLU(**kwargs)
    x = rng.uniform(-2.0, 2.0, (3, 7))
    # Keep away from the kinks so the central difference is exact.
    kinks = [kwargs.get("threshold", 0.0)] + ([kwargs["max_value"]] if "max_value" in kwargs else [])
    for kink in kinks:
        x[np.abs(x - kink) < 1e-3] += 2e-3
    y = layer(x)
    ref = np.vectorize(
        lambda v: _relu_ref(v, kwargs.get("max_value"), kwargs.get("negative_slope", 0.0), kwargs.get("threshold", 0.0))
    )(x)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-15)
    layer.build((None, 7))
    check_layer_gradients(layer, x, rng)


def test_relu_layer_hand_values():
    x = np.array([[-2.0, 0.1, 0.5, 3.0]])
    np.testing.assert_allclose(ReLU(negative_slope=0.5)(x), [[-1.0, 0.1, 0.5, 3.0]])
    np.testing.assert_allclose(ReLU(max_value=1.0)(x), [[0.0, 0.1, 0.5, 1.0]])
    np.testing.assert_allclose(ReLU(threshold=0.2)(x), [[0.0, 0.0, 0.5, 3.0]])
    np.testing.assert_allclose(ReLU(negative_slope=0.5, threshold=1.0)(x), [[-1.5, -0.45, -0.25, 3.0]])


def test_relu_threshold_is_strict_like_keras():
    y = ReLU(threshold=1.0)(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(y, [[0.0, 2.0]])


def test_relu_negative_threshold_rejected_like_keras():
    with pytest.raises(ValueError, match="threshold"):
        ReLU(threshold=-1.0)


def test_softmax_layer_values_and_gradients():
    rng = _rng("softmax")
    x = rng.standard_normal((2, 3, 5))
    layer = Softmax()
    y = layer(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=-1, keepdims=True), rtol=1e-12)
    check_layer_gradients(layer, x, rng)


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.25, 0.5])
def test_dropout_backward_uses_the_forward_mask(rate):
    rng = _rng(f"dropout-mask-{rate}")
    x = rng.uniform(0.5, 1.5, (4, 50))  # never zero, so y == 0 exactly where dropped
    layer = Dropout(rate, seed=7)
    y = layer(x, training=True)
    kept = y != 0
    scale = 1.0 / (1.0 - rate)
    np.testing.assert_allclose(y[kept], x[kept] * scale, rtol=1e-6)
    assert 0 < kept.mean() < 1
    dy = rng.standard_normal(x.shape)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dx[~kept], 0.0)
    np.testing.assert_allclose(dx[kept], dy[kept] * scale, rtol=1e-6)


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_gradient_with_frozen_mask(rate):
    """Each evaluation uses a fresh Dropout with the same seed: the same mask every time."""
    rng = _rng(f"dropout-grad-{rate}")
    x = rng.standard_normal((3, 5, 4))
    layer = Dropout(rate, seed=11, dtype="float64")
    y = layer.call(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)

    def f(v):
        return Dropout(rate, seed=11).call(v, training=True)

    np.testing.assert_array_equal(f(x), y)  # same seed, same mask
    num = numerical_gradient(f, x, dy)
    assert rel_error(dx, num) < TOL


def test_dropout_seed_repeatable_and_rate_respected():
    x = np.ones((200, 100))
    a = Dropout(0.3, seed=1)(x, training=True)
    b = Dropout(0.3, seed=1)(x, training=True)
    c = Dropout(0.3, seed=2)(x, training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    dropped = (a == 0).mean()
    assert abs(dropped - 0.3) < 0.02
    np.testing.assert_allclose(np.unique(a), [0.0, 1 / 0.7], rtol=1e-6)


def test_dropout_is_identity_at_inference():
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    layer = Dropout(0.5, seed=0)
    y = layer(x)  # training defaults to False, as in Keras
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.ones_like(x))


# ---------------------------------------------------------------------------
# Keras defaults, weights and names
# ---------------------------------------------------------------------------


def test_conv2d_keras_defaults():
    layer = Conv2D(4, 3)
    assert layer.kernel_size == (3, 3)
    assert layer.strides == (1, 1)
    assert layer.padding == "valid"
    assert layer.use_bias is True
    assert layer.activation == "linear"
    layer.build((None, 6, 6, 2))
    assert layer.params["kernel"].shape == (3, 3, 2, 4)  # (kh, kw, in, out)
    assert layer.params["kernel"].dtype == np.float32
    np.testing.assert_array_equal(layer.params["bias"], np.zeros(4, np.float32))
    assert layer.output_shape == (None, 4, 4, 4)


@pytest.mark.parametrize("kernel,c,f", [((3, 3), 16, 32), ((5, 2), 3, 40)])
def test_conv2d_glorot_uniform_range(kernel, c, f):
    set_random_seed(3)
    layer = Conv2D(f, kernel)
    layer.build((None, 12, 12, c))
    w = layer.params["kernel"].astype(np.float64)
    kh, kw = kernel
    fan_in, fan_out = kh * kw * c, kh * kw * f
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    # Thousands of uniform draws reach close to the limit, and have its variance.
    assert np.abs(w).max() > 0.98 * limit
    assert w.std() == pytest.approx(limit / math.sqrt(3.0), rel=0.05)
    assert abs(w.mean()) < 0.05 * limit


def test_dense_glorot_uniform_range_and_zero_bias():
    set_random_seed(5)
    layer = Dense(30)
    layer.build((None, 90))
    w = layer.params["kernel"]
    limit = math.sqrt(6.0 / (90 + 30))
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    assert np.abs(w).max() > 0.98 * limit
    np.testing.assert_array_equal(layer.params["bias"], 0.0)


@pytest.mark.parametrize(
    "kwargs,expect",
    [
        (dict(kernel_size=3, strides=2), ((3, 3), (2, 2))),
        (dict(kernel_size=(3, 3), strides=(2, 2)), ((3, 3), (2, 2))),
        (dict(kernel_size=[2, 3], strides=[1, 2]), ((2, 3), (1, 2))),
        (dict(kernel_size=(5, 1), strides=(3, 1)), ((5, 1), (3, 1))),
    ],
)
def test_int_or_tuple_arguments(kwargs, expect):
    layer = Conv2D(2, **kwargs)
    assert (layer.kernel_size, layer.strides) == expect
    layer.build((None, 9, 9, 1))
    assert layer.params["kernel"].shape == expect[0] + (1, 2)


def test_pool_int_or_tuple_arguments():
    assert MaxPooling2D(3).pool_size == (3, 3)
    assert MaxPooling2D((2, 3), strides=1).strides == (1, 1)
    assert AveragePooling2D([2, 3], strides=(1, 2)).strides == (1, 2)


def test_weights_indexing_and_kernel_layout():
    """``layer.weights[0][..., 0, i]`` is filter i seen by input channel 0: a (kh, kw) array."""
    layer = Conv2D(3, (5, 4), dtype="float64")
    layer.build((None, 8, 8, 2))
    k = layer.weights[0]
    assert k.shape == (5, 4, 2, 3)
    assert layer.weights[1].shape == (3,)
    # Put a known filter into slot (channel 0, filter 2) and read it back through the lesson's indexing.
    pattern = np.arange(20, dtype=np.float64).reshape(5, 4)
    new = np.zeros(k.shape)
    new[..., 0, 2] = pattern
    k.assign(new)  # a Keras Variable is written whole
    np.testing.assert_array_equal(layer.weights[0][..., 0, 2], pattern)
    # And the layer really convolves with it: a one-hot input pixel picks out one kernel entry.
    x = np.zeros((1, 8, 8, 2))
    x[0, 2, 1, 0] = 1.0
    y = layer(x)
    # output (0, 0) sees input pixel (2, 1) through kernel entry (2, 1).
    assert y[0, 0, 0, 2] == pattern[2, 1]
    assert y[0, 0, 0, 0] == 0.0 and y[0, 0, 0, 1] == 0.0


def test_get_weights_returns_copies():
    layer = Conv2D(2, 3)
    layer.build((None, 5, 5, 1))
    ws = layer.get_weights()
    before = layer.params["kernel"].copy()
    ws[0][...] = 123.0
    ws[1][...] = 7.0
    np.testing.assert_array_equal(layer.params["kernel"], before)
    np.testing.assert_array_equal(layer.params["bias"], 0.0)


def test_set_weights_copies_values_and_checks_shapes():
    layer = Conv2D(2, 3, name="cv")
    layer.build((None, 5, 5, 1))
    k = np.full((3, 3, 1, 2), 0.5, np.float32)
    b = np.array([1.0, -1.0], np.float32)
    layer.set_weights([k, b])
    k[...] = 9.0  # the layer keeps its own copy
    np.testing.assert_array_equal(layer.params["kernel"], 0.5)
    np.testing.assert_array_equal(layer.params["bias"], [1.0, -1.0])
    with pytest.raises(ValueError, match=r"Conv2D 'cv'.*kernel.*\(3, 3, 1, 2\).*\(3, 3, 2, 2\)"):
        layer.set_weights([np.zeros((3, 3, 2, 2)), b])
    with pytest.raises(ValueError, match=r"Conv2D 'cv' expects a list of 2 weight arrays; got 1"):
        layer.set_weights([k])
    # A failed set_weights leaves the old values.
    np.testing.assert_array_equal(layer.params["kernel"], 0.5)


@pytest.mark.parametrize(
    "layer_fn,in_shape,out_shape",
    [
        (lambda: Conv2D(4, 3), (None, 7, 9, 3), (None, 5, 7, 4)),
        (lambda: Conv2D(4, 3, strides=2, padding="same"), (None, 7, 9, 3), (None, 4, 5, 4)),
        (lambda: Conv2D(4, (2, 3), strides=(2, 1)), (None, 7, 9, 3), (None, 3, 7, 4)),
        (lambda: Conv2D(6, 5), (None, 32, 32, 3), (None, 28, 28, 6)),
        (lambda: MaxPooling2D(), (None, 7, 9, 3), (None, 3, 4, 3)),
        (lambda: MaxPooling2D(3, strides=1, padding="same"), (None, 7, 9, 3), (None, 7, 9, 3)),
        (lambda: AveragePooling2D(2, padding="same"), (None, 7, 9, 3), (None, 4, 5, 3)),
        (lambda: Flatten(), (None, 4, 4, 20), (None, 320)),
        (lambda: Dense(10), (None, 320), (None, 10)),
        (lambda: Dense(10), (None, 3, 320), (None, 3, 10)),
    ],
)
def test_compute_output_shape_without_data(layer_fn, in_shape, out_shape):
    layer = layer_fn()
    assert layer.compute_output_shape(in_shape) == out_shape
    assert not layer.built and layer.params == {}


def test_automatic_names_and_clear_session():
    backend.clear_session()
    names = [
        Conv2D(1, 1).name,
        Conv2D(1, 1).name,
        MaxPooling2D().name,
        Dense(1).name,
        Conv2D(1, 1).name,
        Flatten().name,
        MaxPooling2D().name,
    ]
    assert names == ["conv2d", "conv2d_1", "max_pooling2d", "dense", "conv2d_2", "flatten", "max_pooling2d_1"]
    assert Conv2D(1, 1, name="mine").name == "mine"
    backend.clear_session()
    assert Conv2D(1, 1).name == "conv2d"
    assert AveragePooling2D().name == "average_pooling2d"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv2D(3, 3, dtype="float64", bias_initializer="random_normal"),
        lambda: Dense(3, activation="tanh", dtype="float64"),
    ],
    ids=["conv2d", "dense"],
)
def test_need_input_grad_false_skips_dx_but_keeps_weight_gradients(make):
    rng = _rng("needdx")
    layer = make()
    x = rng.standard_normal((2, 5, 5, 2)) if isinstance(layer, Conv2D) else rng.standard_normal((2, 4))
    layer.build((None,) + x.shape[1:])
    y = layer.call(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx_full = layer.backward(dy)
    full = {k: v.copy() for k, v in layer.grads.items()}
    layer.need_input_grad = False
    layer.call(x, training=True)
    assert layer.backward(dy) is None
    assert dx_full is not None
    for key in full:
        np.testing.assert_allclose(layer.grads[key], full[key], rtol=1e-12)
