"""BatchNormalization: Keras's arguments, weights, moving statistics on every engine path."""

from __future__ import annotations

import numpy as np
import pytest

from convolab import keras
from convolab.autodiff import GradientTape
from convolab.models import parallel
from convolab.models.plan import worth_sharding
from convolab.models.runner import Runner

MOMENTUM = 0.75  # dyadic: the moving-average arithmetic below is exact in float64


def _x(shape=(8, 3), seed=0, dtype="float64"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _expected_moving(h, momentum=MOMENTUM, mean0=0.0, var0=1.0):
    flat = h.reshape(-1, h.shape[-1])
    return mean0 * momentum + flat.mean(axis=0) * (1 - momentum), var0 * momentum + flat.var(axis=0) * (1 - momentum)


def test_keras_defaults_and_weights():
    bn = keras.layers.BatchNormalization()
    assert (bn.axis, bn.momentum, bn.epsilon, bn.center, bn.scale) == (-1, 0.99, 1e-3, True, True)
    bn.build((None, 4, 4, 3))
    assert list(bn.params) == ["gamma", "beta", "moving_mean", "moving_variance"]  # Keras's order
    np.testing.assert_array_equal(bn.params["gamma"], np.ones(3))
    np.testing.assert_array_equal(bn.params["moving_variance"], np.ones(3))
    np.testing.assert_array_equal(bn.params["beta"], np.zeros(3))
    assert [w.value is bn.params[k] for w, k in zip(bn.trainable_weights, ["gamma", "beta"])] == [True, True]
    assert [w.value is bn.params[k] for w, k in zip(bn.non_trainable_weights, ["moving_mean", "moving_variance"])] == [
        True,
        True,
    ]
    assert [v.path for v in bn.non_trainable_variables] == [f"{bn.name}/moving_mean", f"{bn.name}/moving_variance"]
    lone = keras.layers.BatchNormalization(center=False, scale=False)
    lone.build((None, 5))
    assert list(lone.params) == ["moving_mean", "moving_variance"] and lone.trainable_weights == []
    cfg = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn").get_config()
    again = keras.layers.BatchNormalization.from_config(cfg)
    assert again.get_config() == cfg and cfg["momentum"] == 0.9 and cfg["gamma_initializer"] == "ones"


@pytest.mark.parametrize(
    "kwargs,error,words",
    [
        (dict(momentum=1.5), ValueError, "`momentum` must be a float in [0, 1]; got 1.5"),
        (dict(epsilon=0), ValueError, "`epsilon` must be a positive float; got 0"),
        (dict(axis=[1, 2]), TypeError, "`axis` must be an int"),
        (dict(gamma_regularizer="l3"), ValueError, "gamma_regularizer"),
        (dict(beta_initializer="nope"), ValueError, "nope"),
    ],
)
def test_bad_arguments_name_the_layer(kwargs, error, words):
    with pytest.raises(error) as e:
        keras.layers.BatchNormalization(name="bn", **kwargs)
    assert "BatchNormalization 'bn'" in str(e.value) and words in str(e.value)


def test_only_the_last_axis_and_a_known_channel_count():
    with pytest.raises(
        ValueError,
        match=r"BatchNormalization 'bn'.*last \(channel\) axis.*axis=3 .*"
        r"\(None, 4, 4, 3\); got axis=1",
    ):
        keras.layers.BatchNormalization(axis=1, name="bn").build((None, 4, 4, 3))
    keras.layers.BatchNormalization(axis=3).build((None, 4, 4, 3))  # the same axis, counted from the front
    with pytest.raises(ValueError, match=r"BatchNormalization 'bn2' expects input with a batch axis.*got shape \(3,\)"):
        keras.layers.BatchNormalization(name="bn2")(np.ones(3))


def test_training_call_normalises_with_the_batch_and_updates_moving_statistics():
    x = _x((6, 2, 2, 3))
    bn = keras.layers.BatchNormalization(momentum=MOMENTUM, dtype="float64")
    y = bn(x, training=True)
    flat = y.reshape(-1, 3)
    np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-12)
    mean, var = _expected_moving(x)
    np.testing.assert_allclose(bn.params["moving_mean"], mean, rtol=1e-14)
    np.testing.assert_allclose(bn.params["moving_variance"], var, rtol=1e-14)  # biased batch variance
    y2 = bn(x, training=True)  # a second update starts from the first
    np.testing.assert_allclose(y2, y, rtol=1e-12)
    flat_x = x.reshape(-1, 3)
    np.testing.assert_allclose(bn.params["moving_mean"], mean * MOMENTUM + flat_x.mean(0) * (1 - MOMENTUM), rtol=1e-14)


def test_inference_uses_moving_statistics_and_updates_nothing():
    bn = keras.layers.BatchNormalization(epsilon=1.0, dtype="float64")
    bn.build((None, 2))
    bn.set_weights([np.array([2.0, 1.0]), np.array([0.5, 0.0]), np.array([1.0, -1.0]), np.array([3.0, 0.0])])
    before = bn.get_weights()
    y = bn(np.array([[5.0, 0.0]]))  # (5 - 1) / sqrt(3 + 1) * 2 + 0.5 and (0 + 1) / sqrt(0 + 1)
    np.testing.assert_array_equal(y, [[4.5, 1.0]])
    for a, b in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_frozen_layer_runs_in_inference_mode_even_in_training():
    x = _x((8, 3), seed=1)
    bn = keras.layers.BatchNormalization(dtype="float64")
    bn(x, training=True)
    bn.trainable = False
    before = bn.get_weights()
    np.testing.assert_array_equal(bn(x, training=True), bn(x, training=False))
    for a, b in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4


def _dense_bn_model(functional=False, dtype="float64"):
    keras.utils.set_random_seed(3)
    layers = [
        keras.layers.Dense(4, dtype=dtype),
        keras.layers.BatchNormalization(momentum=MOMENTUM, dtype=dtype),
        keras.layers.Dense(2, activation="softmax", dtype=dtype),
    ]
    if functional:
        inp = keras.Input((5,), dtype=dtype)
        h = inp
        for layer in layers:
            h = layer(h)
        model = keras.Model(inp, h)
    else:
        model = keras.Sequential([keras.Input((5,), dtype=dtype)] + layers)
    model.compile(keras.optimizers.SGD(learning_rate=10.0), "sparse_categorical_crossentropy")
    return model, layers


@pytest.mark.parametrize("functional", [False, True], ids=["sequential-fast-path", "functional-tape"])
def test_one_step_updates_moving_statistics_once_and_the_optimizer_never_does(functional):
    model, (dense, bn, _) = _dense_bn_model(functional)
    x, y = _x((16, 5), seed=2), np.arange(16) % 2
    h = x @ dense.params["kernel"] + dense.params["bias"]  # what the BatchNormalization sees
    gamma = bn.params["gamma"].copy()
    model.train_on_batch(x, y)
    mean, var = _expected_moving(h)
    np.testing.assert_allclose(bn.params["moving_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(bn.params["moving_variance"], var, rtol=1e-12)
    assert not np.array_equal(bn.params["gamma"], gamma)  # the trainable ones did move
    assert model.optimizer.get_state(bn.params["moving_mean"]) is None  # never in the optimizer's hands
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(bn.params["moving_mean"], mean, rtol=1e-12)


def test_on_the_tape_the_real_layer_is_updated_once_per_call():
    bn = keras.layers.BatchNormalization(momentum=MOMENTUM, dtype="float64")
    x = _x((8, 3), seed=5)
    with GradientTape() as tape:
        y = bn(x, training=True)
        keras.ops.sum(keras.ops.multiply(y, y))
    mean, var = _expected_moving(x)
    np.testing.assert_allclose(bn.params["moving_mean"], mean, rtol=1e-14)
    np.testing.assert_allclose(bn.params["moving_variance"], var, rtol=1e-14)
    del tape


def test_shared_layer_called_twice_updates_twice():
    bn = keras.layers.BatchNormalization(momentum=MOMENTUM, dtype="float64")
    x1, x2 = _x((8, 3), seed=6), _x((8, 3), seed=7)
    with GradientTape():
        bn(x1, training=True)
        bn(x2, training=True)
    m1, v1 = _expected_moving(x1)
    m2, v2 = _expected_moving(x2, mean0=m1, var0=v1)
    np.testing.assert_allclose(bn.params["moving_mean"], m2, rtol=1e-14)
    np.testing.assert_allclose(bn.params["moving_variance"], v2, rtol=1e-14)


def test_models_with_batch_statistics_are_not_sharded():
    model, (dense, bn, _) = _dense_bn_model()
    assert parallel.has_batch_statistics(model)
    assert not worth_sharding(model, 1024, 4)
    with pytest.raises(ValueError, match=r"Runner: Sequential model .* holds BatchNormalization '.*'"):
        Runner(model, shards=2)
    # fit with threads asked for: one whole-batch update, as Keras computes it on one device
    x, y = _x((64, 5), seed=8), np.arange(64) % 2
    h = x @ dense.params["kernel"] + dense.params["bias"]
    parallel.set_num_threads(4)
    try:
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    finally:
        parallel.set_num_threads(None)
    mean, var = _expected_moving(h)
    np.testing.assert_allclose(bn.params["moving_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(bn.params["moving_variance"], var, rtol=1e-12)


def test_summary_counts_moving_statistics_as_non_trainable():
    model, _ = _dense_bn_model()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 50" in text and "Trainable params: 42" in text and "Non-trainable params: 8" in text
