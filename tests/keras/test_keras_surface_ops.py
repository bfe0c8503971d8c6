"""Issue 19's functions: the new activations (by name in layers, in keras.activations and keras.ops),
keras.ops.array / moments / conv / conv_transpose, keras.random and keras.initializers. Values from
Keras's documented formulas, float64 central-difference gradients (op by op and on the tape), and a
Keras-style custom training loop run through the public API."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convolab import keras
from convolab.autodiff import GradientTape, Variable
from convolab.nn.activations import ACTIVATIONS, NEEDS_INPUT, activation_backward, activation_forward
from support.gradcheck import numerical_gradient, rel_error

rng = np.random.default_rng(2019)
A = keras.activations
NEW = (
    "gelu",
    "elu",
    "selu",
    "swish",
    "silu",
    "leaky_relu",
    "hard_sigmoid",
    "softplus",
    "softsign",
    "exponential",
    "mish",
)
X = np.array([-3.0, -1.0, -0.25, 0.5, 2.0])


def _phi(v):
    return 0.5 * (1 + math.erf(v / math.sqrt(2)))


FORMULAS = {  # Keras's documentation, element by element
    "gelu": lambda v: v * _phi(v),
    "elu": lambda v: v if v > 0 else math.exp(v) - 1,
    "selu": lambda v: 1.0507009873554805 * (v if v > 0 else 1.6732632423543772 * (math.exp(v) - 1)),
    "swish": lambda v: v / (1 + math.exp(-v)),
    "silu": lambda v: v / (1 + math.exp(-v)),
    "leaky_relu": lambda v: v if v > 0 else 0.2 * v,
    "hard_sigmoid": lambda v: min(max(v / 6 + 0.5, 0.0), 1.0),
    "softplus": lambda v: math.log1p(math.exp(v)),
    "softsign": lambda v: v / (1 + abs(v)),
    "exponential": math.exp,
    "mish": lambda v: v * math.tanh(math.log1p(math.exp(v))),
}


@pytest.mark.parametrize("name", NEW)
def test_activation_values_match_kerass_formulas(name):
    assert name in ACTIVATIONS
    expected = [FORMULAS[name](v) for v in X]
    assert np.allclose(activation_forward(name, X), expected, rtol=1e-12, atol=1e-15)
    assert np.allclose(A.get(name)(X), expected)
    assert A.serialize(A.get(name)) == name


def test_hand_values():
    assert np.array_equal(A.hard_sigmoid(np.array([-3.0, 0.0, 3.0])), [0.0, 0.5, 1.0])
    assert A.gelu(np.array([0.0]))[0] == 0.0
    assert A.gelu(np.array([1.0]))[0] == pytest.approx(0.8413447460685429)  # Phi(1)
    assert A.gelu(np.array([1.0]), approximate=True)[0] == pytest.approx(
        0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715)))
    )
    assert np.array_equal(A.leaky_relu(np.array([-10.0, 5.0]), negative_slope=0.5), [-5.0, 5.0])
    assert np.allclose(A.elu(np.array([-1.0]), alpha=2.0), [2 * (math.exp(-1) - 1)])
    assert A.softplus(np.array([1000.0]))[0] == 1000.0  # no overflow


@pytest.mark.parametrize("name", NEW)
def test_activation_gradients_float64(name):
    x = rng.standard_normal((4, 5)) * 2
    x[np.abs(x) < 1e-3] = 0.3
    if name == "hard_sigmoid":
        x[np.abs(np.abs(x) - 3) < 1e-3] = 1.0  # keep off the corners
    y = activation_forward(name, x)
    dy = rng.standard_normal(x.shape)
    dx = activation_backward(name, dy.copy(), y, x if name in NEEDS_INPUT else None)
    num = numerical_gradient(lambda v: activation_forward(name, v), x.copy(), dy)
    assert rel_error(dx, num) < 1e-7


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: A.gelu(t, approximate=True),
        lambda t: A.elu(t, alpha=0.7),
        lambda t: A.leaky_relu(t, 0.1),
        keras.ops.mish,
        keras.ops.selu,
        keras.ops.swish,
    ],
)
def test_activation_gradients_on_the_tape(fn):
    x = rng.standard_normal((3, 4))
    x[np.abs(x) < 1e-3] = 0.3
    v = Variable(x.copy())
    dy = rng.standard_normal(x.shape)
    with GradientTape() as tape:
        y = fn(v)
    (g,) = tape.gradient(y, [v], output_gradients=dy)
    assert rel_error(g, numerical_gradient(lambda t: fn(t), x.copy(), dy)) < 1e-7


@pytest.mark.parametrize("name", ["gelu", "swish", "mish", "elu", "softplus"])
def test_layers_take_the_new_activations_by_name(name):
    layer = keras.layers.Dense(3, activation=name, dtype="float64")
    x = rng.standard_normal((4, 5))
    y = layer(x)
    assert np.allclose(y, activation_forward(name, x @ layer.params["kernel"] + layer.params["bias"]))
    dy = rng.standard_normal(y.shape)
    layer(x)
    dx = layer.backward(dy)
    assert rel_error(dx, numerical_gradient(lambda v: layer(v), x.copy(), dy)) < 1e-6
    act = keras.layers.Activation(name, dtype="float64")
    act(x)
    assert (
        rel_error(
            act.backward(dy[:, :1].repeat(5, 1)), numerical_gradient(lambda v: act(v), x.copy(), dy[:, :1].repeat(5, 1))
        )
        < 1e-7
    )


def test_ops_array_and_moments():
    assert keras.ops.array([1.0, 2.0]).dtype == np.float32
    assert keras.ops.array([1, 2]).dtype.kind == "i"
    assert keras.ops.array([1.0], dtype="float64").dtype == np.float64
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    mean, var = keras.ops.moments(x, axes=[0])
    assert np.array_equal(mean, [2.0, 4.0]) and np.array_equal(var, [1.0, 4.0])
    mean, var = keras.ops.moments(x, axes=[0, 1], keepdims=True, synchronized=True)
    assert mean.shape == (1, 1) and var[0, 0] == pytest.approx(np.var(x))
    v = Variable(x.copy())
    with GradientTape() as tape:
        m, s = keras.ops.moments(v, axes=[1])
        total = keras.ops.sum(m) + keras.ops.sum(s)
    (g,) = tape.gradient(total, [v])
    num = numerical_gradient(lambda t: np.sum(t.mean(axis=1)) + np.sum(t.var(axis=1)), x.copy(), np.array(1.0))
    assert rel_error(g, num) < 1e-7


def test_ops_conv_and_conv_transpose_values_and_tape_gradients():
    x2 = rng.standard_normal((2, 5, 5, 3))
    w2 = rng.standard_normal((3, 3, 3, 4))
    y = keras.ops.conv(x2, w2, strides=2, padding="same")
    layer = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False, dtype="float64")
    layer.build((None, 5, 5, 3))
    layer.set_weights([w2])
    assert np.allclose(y, layer(x2))
    x1 = np.array([[1.0, 2.0, 3.0, 4.0]])[..., None]
    assert np.array_equal(keras.ops.conv(x1, np.ones((2, 1, 1)), padding="valid")[0, :, 0], [3.0, 5.0, 7.0])
    # conv_transpose is conv's adjoint
    wt = rng.standard_normal((3, 3, 3, 4))
    z = rng.standard_normal((2, 3, 3, 4))
    t = keras.ops.conv_transpose(z, wt, strides=2, padding="same", output_padding=None)
    assert t.shape == (2, 6, 6, 3)
    u = rng.standard_normal(t.shape)
    assert np.sum(keras.ops.conv(u, wt, strides=2, padding="same") * z) == pytest.approx(np.sum(u * t), rel=1e-10)
    for fn, args in (
        (lambda a, b: keras.ops.conv(a, b, strides=(1, 2), padding="same"), (x2, w2)),
        (lambda a, b: keras.ops.conv_transpose(a, b, strides=2, padding="valid"), (z, wt)),
    ):
        va, vb = Variable(args[0].copy()), Variable(args[1].copy())
        with GradientTape() as tape:
            out = fn(va, vb)
        dy = rng.standard_normal(out.shape)
        ga, gb = tape.gradient(out, [va, vb], output_gradients=dy)
        assert rel_error(ga, numerical_gradient(lambda a: fn(a, args[1]), args[0].copy(), dy)) < 1e-7
        assert rel_error(gb, numerical_gradient(lambda b: fn(args[0], b), args[1].copy(), dy)) < 1e-7


def test_random_seeds_as_keras():
    R = keras.random
    assert np.array_equal(R.normal((3,), seed=5), R.normal((3,), seed=5))  # an int seed: the same draw
    gen = R.SeedGenerator(7)
    a, b = R.uniform((4,), seed=gen), R.uniform((4,), seed=gen)
    assert not np.array_equal(a, b)  # a SeedGenerator advances
    gen2 = R.SeedGenerator(7)
    assert np.array_equal(R.uniform((4,), seed=gen2), a)
    u = R.uniform((1000,), minval=2.0, maxval=3.0, seed=1)
    assert u.dtype == np.float32 and u.min() >= 2.0 and u.max() < 3.0
    n = R.normal((20000,), mean=1.0, stddev=2.0, seed=2)
    assert abs(n.mean() - 1.0) < 0.05 and abs(n.std() - 2.0) < 0.05
    assert np.abs(R.truncated_normal((5000,), stddev=1.0, seed=3)).max() <= 2.0
    r = R.randint((100,), 0, 3, seed=4)
    assert r.dtype == np.int32 and set(np.unique(r)) <= {0, 1, 2}
    s = R.shuffle(np.arange(10), seed=5)
    assert sorted(s) == list(range(10)) and not np.array_equal(s, np.arange(10))
    d = R.dropout(np.ones((100, 100)), rate=0.25, seed=6)
    assert set(np.unique(d)) <= {0.0, 1.0 / 0.75} and abs((d == 0).mean() - 0.25) < 0.02
    with pytest.raises(ValueError, match="rate"):
        R.dropout(np.ones(3), rate=1.0)
    with pytest.raises(TypeError, match="seed"):
        R.normal((2,), seed="x")


def test_initializers_exported_by_class_and_name():
    I = keras.initializers
    assert np.array_equal(I.Constant(2.5)((2, 3)), np.full((2, 3), 2.5, dtype="float32"))
    assert np.array_equal(I.Zeros()((2,)), [0.0, 0.0]) and np.array_equal(I.Ones()((2,)), [1.0, 1.0])
    assert np.array_equal(I.GlorotUniform(seed=1)((4, 5)), I.GlorotUniform(seed=1)((4, 5)))
    limit = math.sqrt(6 / (400 + 300))
    g = I.GlorotUniform(seed=2)((400, 300))
    assert np.abs(g).max() <= limit and g.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    h = I.HeNormal(seed=3)((500, 400))
    assert h.std() == pytest.approx(math.sqrt(2 / 500), rel=0.03)
    assert I.RandomNormal(mean=1.0, stddev=0.1, seed=4)((10000,)).mean() == pytest.approx(1.0, abs=0.01)
    assert I.get("he_normal") is I.get("HeNormal")
    assert callable(I.get("TruncatedNormal"))
    dense = keras.layers.Dense(2, kernel_initializer=I.Constant(0.5), bias_initializer=I.Ones())
    assert np.array_equal(dense(np.ones((1, 3))), [[2.5, 2.5]])


def test_keras_program_custom_training_loop():
    """The keras.io "writing a training loop from scratch" shape: GradientTape, keras.ops, keras.random."""
    keras.utils.set_random_seed(0)
    x = rng.standard_normal((128, 8)).astype("float32")
    y = (x[:, :4].sum(axis=1) > 0).astype("int64")
    inputs = keras.Input(shape=(8,))
    h = keras.layers.Dense(16, activation="gelu", kernel_initializer=keras.initializers.HeNormal(seed=1))(inputs)
    h = keras.layers.Lambda(lambda t: keras.ops.silu(t))(h)
    outputs = keras.layers.Dense(2)(h)
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.Adam(learning_rate=0.02)
    seed = keras.random.SeedGenerator(1337)
    losses = []
    for _ in range(30):
        idx = keras.random.randint((32,), 0, 128, seed=seed)
        with GradientTape() as tape:
            logits = model(x[idx], training=True)
            logits = keras.random.dropout(logits, rate=0.1, seed=seed)
            # keras.ops's loss (built-in Loss objects on tape tensors are issue 19's item 5, not here)
            loss = keras.ops.mean(keras.ops.sparse_categorical_crossentropy(y[idx], logits, from_logits=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(np.asarray(getattr(loss, "value", loss))))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_ops_gelu_defaults_to_the_tanh_approximation_as_keras_ops_does():
    """keras.ops.gelu(x, approximate=True) but keras.activations.gelu(x, approximate=False): the
    values of Keras's docs (ops: -0.15880796 at -1; activations: -0.15865529)."""
    from convolab import keras

    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    np.testing.assert_allclose(keras.ops.gelu(x), [-0.00363752, -0.15880796, 0.0, 0.841192, 2.9963627], atol=1e-6)
    np.testing.assert_allclose(keras.ops.gelu(x, approximate=False), keras.activations.gelu(x), rtol=1e-12)
    np.testing.assert_allclose(
        keras.activations.gelu(x), [-0.00404951, -0.15865529, 0.0, 0.8413447, 2.9959507], atol=1e-6
    )
    # as a layer's activation, the function is called with its own default: the approximation
    dense = keras.layers.Dense(1, activation=keras.ops.gelu, kernel_initializer="ones", use_bias=False)
    np.testing.assert_allclose(dense(x[:, None]).ravel(), keras.ops.gelu(x), rtol=1e-6)
