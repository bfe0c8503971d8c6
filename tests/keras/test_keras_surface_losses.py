"""Issue 19's losses, reductions, metrics and schedule: KLDivergence, every Keras 3 reduction on the
built-in losses, BinaryCrossentropy and MeanAbsolutePercentageError metrics, InverseTimeDecay. Values
from Keras's documented examples and formulas, float64 gradient checks, and a Keras program."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convolab import keras
from convolab.models.plan import worth_sharding
from convolab.nn.kl_divergence import kl_divergence, kl_divergence_values
from support.gradcheck import numerical_gradient, rel_error

rng = np.random.default_rng(1919)
Y_TRUE = np.array([[0.0, 1.0], [0.0, 0.0]])
Y_PRED = np.array([[1.0, 1.0], [1.0, 0.0]])


def test_kl_divergence_matches_kerass_docstring_and_formula():
    # keras.io's KLDivergence example: y_true [[0, 1], [0, 0]], y_pred [[0.6, 0.4], [0.4, 0.6]] -> 0.458
    yt, yp = np.array([[0, 1], [0, 0]]), np.array([[0.6, 0.4], [0.4, 0.6]])
    assert keras.losses.KLDivergence()(yt, yp) == pytest.approx(0.458, abs=5e-4)
    eps = 1e-7
    t, p = np.clip(yt, eps, 1), np.clip(yp, eps, 1)
    per_sample = np.sum(t * np.log(t / p), axis=-1)
    assert np.allclose(keras.losses.kl_divergence(yt, yp), per_sample)
    assert keras.losses.KLDivergence()(yt, yp) == pytest.approx(per_sample.mean())
    assert keras.losses.get("kl_divergence").name == "kl_divergence"
    assert keras.losses.KLDivergence(reduction="sum")(yt, yp) == pytest.approx(per_sample.sum())


def test_kl_divergence_gradient_float64():
    pred = rng.uniform(0.05, 0.95, (4, 3))
    target = rng.uniform(0.0, 1.0, (4, 3))
    w = rng.uniform(0.1, 2.0, 4)
    _, grad = kl_divergence(pred, target, w)
    num = numerical_gradient(lambda p: np.array(kl_divergence(p, target, w)[0]), pred.copy(), np.array(1.0))
    assert rel_error(grad, num) < 1e-7
    values, _ = kl_divergence_values(pred, target)
    assert values.shape == (4,)


def test_reductions_give_kerass_documented_values():
    # keras.io's MeanSquaredError page: 0.5 by default, 1.0 with 'sum', [0.5, 0.5] with 'none',
    # 0.25 with sample_weight [0.7, 0.3]
    mse = keras.losses.MeanSquaredError
    assert mse()(Y_TRUE, Y_PRED) == pytest.approx(0.5)
    assert mse(reduction="sum_over_batch_size")(Y_TRUE, Y_PRED, sample_weight=[0.7, 0.3]) == pytest.approx(0.25)
    assert mse(reduction="sum")(Y_TRUE, Y_PRED) == pytest.approx(1.0)
    assert mse(reduction="mean")(Y_TRUE, Y_PRED) == pytest.approx(0.5)
    assert np.allclose(mse(reduction="none")(Y_TRUE, Y_PRED), [0.5, 0.5])
    assert np.allclose(mse(reduction=None)(Y_TRUE, Y_PRED, sample_weight=[0.7, 0.3]), [0.35, 0.15])
    # the weighted sum over the sum of the weights
    w = np.array([0.7, 0.1])
    assert mse(reduction="mean_with_sample_weight")(Y_TRUE, Y_PRED, sample_weight=w) == pytest.approx(
        (0.5 * 0.7 + 0.5 * 0.1) / 0.8
    )
    assert mse(reduction="mean_with_sample_weight")(Y_TRUE, Y_PRED, sample_weight=[0, 0]) == 0.0
    # binary cross-entropy, keras.io's example values: 0.815 / 1.630 / [0.916, 0.714]
    bce_true, bce_pred = np.array([[0, 1], [0, 0]]), np.array([[0.6, 0.4], [0.4, 0.6]])
    assert keras.losses.BinaryCrossentropy(reduction="sum")(bce_true, bce_pred) == pytest.approx(1.630, abs=1e-3)
    assert np.allclose(keras.losses.BinaryCrossentropy(reduction="none")(bce_true, bce_pred), [0.916, 0.714], atol=1e-3)
    sce = keras.losses.SparseCategoricalCrossentropy(reduction="sum")
    probs = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    assert sce([1, 2], probs) == pytest.approx(-math.log(0.95) - math.log(0.1), rel=1e-5)


@pytest.mark.parametrize("reduction", ["sum", "none", "mean_with_sample_weight", "mean"])
@pytest.mark.parametrize(
    "loss_cls", [keras.losses.MeanSquaredError, keras.losses.CategoricalCrossentropy, keras.losses.KLDivergence]
)
def test_reduced_gradients_float64(reduction, loss_cls):
    loss = loss_cls(reduction=reduction)
    pred = rng.uniform(0.1, 0.9, (5, 3))
    pred /= pred.sum(axis=1, keepdims=True)
    y = np.eye(3)[rng.integers(0, 3, 5)]
    w = rng.uniform(0.2, 1.5, 5)
    value, grad = loss.compute(pred, y, sample_weight=w)
    num = numerical_gradient(lambda p: np.array(loss.compute(p, y, sample_weight=w)[0]), pred.copy(), np.array(1.0))
    assert rel_error(grad, num) < 1e-7
    default = loss_cls().compute(pred, y, sample_weight=w)[0]
    expected = {
        "sum": default * 5,
        "none": default * 5,
        "mean": default,
        "mean_with_sample_weight": default * 5 / w.sum(),
    }[reduction]
    assert value == pytest.approx(expected)


def test_unknown_reduction_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="MeanSquaredError: `reduction` must be one of .*'sum'.*got 'avg'"):
        keras.losses.MeanSquaredError(reduction="avg")


def test_a_sum_reduction_never_shards():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.MeanSquaredError(reduction="sum"))
    assert not worth_sharding(model, 4096, 8)


def test_metrics_binary_crossentropy_and_mape():
    # keras.io's BinaryCrossentropy metric example: 0.81492424; MAPE example: 250000000.0
    m = keras.metrics.BinaryCrossentropy()
    m.update_state([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
    assert float(m.result()) == pytest.approx(0.81492424, rel=1e-5)
    m = keras.metrics.MeanAbsolutePercentageError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
    assert float(m.result()) == pytest.approx(250000000.0, rel=1e-6)
    assert np.allclose(keras.metrics.mean_absolute_percentage_error([[2.0, 4.0]], [[1.0, 5.0]]), [37.5])
    logits = keras.metrics.BinaryCrossentropy(from_logits=True)
    logits.update_state([[1.0]], [[0.0]])
    assert float(logits.result()) == pytest.approx(math.log(2.0), rel=1e-6)


def test_inverse_time_decay_formula_and_staircase():
    s = keras.optimizers.schedules.InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert [s(k) for k in (0, 5, 10, 30)] == pytest.approx([0.1, 0.1 / 1.25, 0.1 / 1.5, 0.1 / 2.5])
    st = keras.optimizers.schedules.InverseTimeDecay(0.1, 10, 0.5, staircase=True)
    assert [st(k) for k in (0, 9, 10, 19, 20)] == pytest.approx([0.1, 0.1, 0.1 / 1.5, 0.1 / 1.5, 0.05])
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(st))
    assert again(15) == st(15) and again.get_config() == st.get_config()
    with pytest.raises(ValueError, match="InverseTimeDecay"):
        keras.optimizers.schedules.InverseTimeDecay(0.1, 0, 0.5)


def test_keras_program_kl_divergence_reductions_metrics_and_schedule(tmp_path):
    """A distribution-matching regressor as a Keras user writes it, saved and loaded."""
    keras.utils.set_random_seed(3)
    x = rng.standard_normal((128, 6)).astype("float32")
    logits = x @ rng.standard_normal((6, 4))
    target = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    model = keras.Sequential(
        [
            keras.Input(shape=(6,)),
            keras.layers.Dense(16, activation="gelu"),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    lr = keras.optimizers.schedules.InverseTimeDecay(initial_learning_rate=0.05, decay_steps=8, decay_rate=0.5)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss=keras.losses.KLDivergence(),
        metrics=[keras.metrics.MeanAbsolutePercentageError(), keras.metrics.BinaryCrossentropy()],
    )
    hist = model.fit(x, target, epochs=6, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0] * 0.7
    assert set(hist.history) == {"loss", "mean_absolute_percentage_error", "binary_crossentropy"}
    # reduction='sum' trains on the sum: the same direction, 32 times the step of the mean for SGD
    w0 = [w.copy() for w in model.get_weights()]
    for reduction, scale in (("sum_over_batch_size", 32.0), ("sum", 1.0)):
        model.set_weights(w0)
        model.compile(
            optimizer=keras.optimizers.SGD(0.001 * scale), loss=keras.losses.KLDivergence(reduction=reduction)
        )
        model.fit(x[:32], target[:32], epochs=1, batch_size=32, shuffle=False, verbose=0)
        if reduction == "sum_over_batch_size":
            after_mean = [w.copy() for w in model.get_weights()]
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(after_mean, model.get_weights()))
    path = tmp_path / "kl.convolab"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.loss).__name__ == "KLDivergence" and loaded.loss.reduction == "sum"
    assert np.allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_compile_config_with_a_reduction_and_the_new_metrics_saves(tmp_path):
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    lr = keras.optimizers.schedules.InverseTimeDecay(0.01, 4, 0.5, staircase=True)
    model.compile(
        optimizer=keras.optimizers.SGD(lr),
        loss=keras.losses.MeanSquaredError(reduction="sum"),
        metrics=[keras.metrics.MeanAbsolutePercentageError(), keras.metrics.BinaryCrossentropy()],
    )
    path = tmp_path / "m.convolab"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.loss.reduction == "sum"
    assert loaded.optimizer.get_config()["learning_rate"]["class_name"] == "InverseTimeDecay"
