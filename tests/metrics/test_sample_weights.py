"""Weighted losses (Keras 3's sum(w_i * loss_i) / N), the new losses, class_weight/sample_weight in
fit/evaluate, target shapes for regression losses, thread shards, and saving compile settings.

Expected values are worked out by hand on small inputs or recomputed here with plain NumPy;
gradients are checked against central differences in float64 (tests/support/gradcheck.py).
"""

import math
import warnings

import numpy as np
import pytest

from convolab import keras, losses
from convolab.models import parallel, runner, stack_step
from convolab.nn import losses as ops
from convolab.saving import ModelFileError, schema
from support.gradcheck import numerical_gradient, rel_error


def _scalar_grad(f, x):
    return numerical_gradient(lambda v: np.array(f(v)), x.copy(), np.array(1.0))


def _probs(rng, n, k):
    p = rng.uniform(0.2, 1.0, size=(n, k))
    return p / p.sum(axis=1, keepdims=True)


# -- the ops: hand values and float64 gradient checks -----------------------------------
def test_binary_crossentropy_hand_values_and_clip():
    p = np.array([[0.25], [0.75]])
    t = np.array([[0.0], [1.0]])
    loss, g = ops.binary_crossentropy(p, t)
    assert loss == pytest.approx(-np.log(0.75), rel=1e-14)
    np.testing.assert_allclose(g, [[1 / 0.75 / 2], [-1 / 0.75 / 2]], rtol=1e-14)
    # weights change the numerator only: (1 * l + 3 * l) / 2
    loss_w, g_w = ops.binary_crossentropy(p, t, sample_weight=np.array([1.0, 3.0]))
    assert loss_w == pytest.approx(2 * -np.log(0.75), rel=1e-14)
    np.testing.assert_allclose(g_w, [[1 / 0.75 / 2], [-3 / 0.75 / 2]], rtol=1e-14)
    # clipped to [1e-7, 1 - 1e-7]: finite loss, no gradient outside
    loss0, g0 = ops.binary_crossentropy(np.array([[0.0], [1.0]]), np.array([[1.0], [1.0]]))
    assert loss0 == pytest.approx((-np.log(1e-7) - np.log(1 - 1e-7)) / 2, rel=1e-12)
    np.testing.assert_array_equal(g0, [[0.0], [0.0]])


def test_binary_crossentropy_label_smoothing_and_mean_over_last_axis():
    bce = keras.losses.BinaryCrossentropy(label_smoothing=0.2)
    # t = 1 -> 0.9, t = 0 -> 0.1; two outputs per sample: the mean over them
    p = np.array([[0.75, 0.5]])
    t = np.array([[1.0, 0.0]])
    hand = (-(0.9 * np.log(0.75) + 0.1 * np.log(0.25)) - (0.1 * np.log(0.5) + 0.9 * np.log(0.5))) / 2
    assert bce(t, p) == pytest.approx(hand, rel=1e-12)
    np.testing.assert_allclose(keras.losses.binary_crossentropy(t, p, label_smoothing=0.2), [hand], rtol=1e-12)


def test_binary_crossentropy_from_logits_is_stable_and_matches_probabilities():
    z = np.array([[-2.0, 0.5], [3.0, -0.25]])
    t = np.array([[0.0, 1.0], [1.0, 1.0]])
    s = 1 / (1 + np.exp(-z))
    hand = np.mean(-(t * np.log(s) + (1 - t) * np.log(1 - s)), axis=-1)
    np.testing.assert_allclose(keras.losses.binary_crossentropy(t, z, from_logits=True), hand, rtol=1e-12)
    loss, g = ops.sigmoid_binary_crossentropy_with_logits(np.array([[800.0], [-800.0]]), np.array([[0.0], [0.0]]))
    assert loss == pytest.approx(400.0) and np.all(np.isfinite(g))


def test_mean_absolute_error_hand_value():
    loss, g = ops.mean_absolute_error(np.array([[1.0, -3.0], [2.0, 2.0]]), np.array([[0.0, 0.0], [2.0, 0.0]]))
    assert loss == pytest.approx((2.0 + 1.0) / 2)
    np.testing.assert_allclose(g, [[0.25, -0.25], [0.0, 0.25]])  # sign / (D * N); 0 where equal


def _weights(rng, n):
    return rng.uniform(0.0, 3.0, size=n)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "case", ["bce", "bce_logits", "mae", "mse_rank3", "sparse", "categorical", "softmax_sparse", "softmax_dense"]
)
def test_loss_gradients_match_central_differences(case, weighted):
    rng = np.random.default_rng(hash(case) % 2**32)
    n = 5
    w = _weights(rng, n) if weighted else None
    if case == "bce":
        x, t = rng.uniform(0.1, 0.9, size=(n, 3)), rng.uniform(0, 1, size=(n, 3))
        fn = ops.binary_crossentropy
    elif case == "bce_logits":
        x, t = rng.standard_normal((n, 3)) * 3, rng.uniform(0, 1, size=(n, 3))
        fn = ops.sigmoid_binary_crossentropy_with_logits
    elif case == "mae":
        t = rng.standard_normal((n, 2, 3))
        x = t + rng.choice([-1, 1], size=t.shape) * rng.uniform(0.1, 1.0, size=t.shape)  # away from the kink
        fn = ops.mean_absolute_error
    elif case == "mse_rank3":
        x, t = rng.standard_normal((n, 2, 3)), rng.standard_normal((n, 2, 3))
        fn = ops.mean_squared_error
    elif case == "sparse":
        x, t = _probs(rng, n, 4), rng.integers(0, 4, n)
        fn = ops.sparse_categorical_crossentropy
    elif case == "categorical":
        x, t = _probs(rng, n, 4) * 2.0, np.eye(4)[rng.integers(0, 4, n)]
        fn = ops.categorical_crossentropy
    elif case == "softmax_sparse":
        x, t = rng.standard_normal((n, 4)), rng.integers(0, 4, n)
        fn = lambda v, tt, sample_weight=None: ops.softmax_crossentropy_with_logits(v, tt, True, sample_weight)
    else:
        x, t = rng.standard_normal((n, 4)), rng.uniform(0, 1, size=(n, 4))
        fn = lambda v, tt, sample_weight=None: ops.softmax_crossentropy_with_logits(v, tt, False, sample_weight)
    loss, g = fn(x, t, sample_weight=w)
    ng = _scalar_grad(lambda v: fn(v, t, sample_weight=w)[0], x)
    assert rel_error(g, ng) < 1e-6


def test_weighted_reduction_is_keras_sum_over_batch_size():
    p = _probs(np.random.default_rng(1), 4, 3)
    y = np.array([0, 2, 1, 1])
    per_sample = -np.log(p[np.arange(4), y])
    w = np.array([1.0, 0.0, 2.0, 0.5])
    loss = keras.losses.SparseCategoricalCrossentropy()
    np.testing.assert_allclose(loss.call(y, p), per_sample, rtol=1e-12)
    assert loss(y, p, sample_weight=w) == pytest.approx(np.sum(w * per_sample) / 4, rel=1e-12)  # not / sum(w)
    assert loss(y, p, sample_weight=np.full(4, 2.0)) == pytest.approx(2 * np.mean(per_sample), rel=1e-12)
    assert loss(y, p, sample_weight=w[:, None]) == pytest.approx(np.sum(w * per_sample) / 4, rel=1e-12)
    with pytest.raises(
        ValueError,
        match=r"`sample_weight` must have shape \(4,\) \(one weight per sample\); "
        r"got shape \(3,\)",
    ):
        loss(y, p, sample_weight=w[:3])


# -- compile(loss=...) with Keras's functions ----------------------------------------------
@pytest.mark.parametrize(
    "fn, cls",
    [
        (keras.losses.categorical_crossentropy, losses.CategoricalCrossentropy),
        (keras.losses.sparse_categorical_crossentropy, losses.SparseCategoricalCrossentropy),
        (keras.losses.mean_squared_error, losses.MeanSquaredError),
        (keras.losses.mse, losses.MeanSquaredError),
        (keras.losses.mean_absolute_error, losses.MeanAbsoluteError),
        (keras.losses.binary_crossentropy, losses.BinaryCrossentropy),
    ],
)
def test_keras_loss_functions_map_to_classes(fn, cls):
    model = _model(3)
    model.compile(optimizer="sgd", loss=fn)
    assert type(model.loss) is cls
    assert model.loss.name == cls.name  # as Keras names it after the function (mse is mean_squared_error)


def test_custom_loss_function_is_wrapped_for_the_tape():
    """Any other function is a Keras loss function written with keras.ops: it trains on the tape
    (tests/keras/test_keras_programs.py trains with one)."""

    def my_loss(y_true, y_pred):
        return keras.ops.mean((y_true - y_pred) ** 2, axis=-1)

    model = _model(3)
    model.compile(optimizer="sgd", loss=my_loss)
    assert isinstance(model.loss, losses.LossFunctionWrapper) and model.loss.name == "my_loss"
    assert not model.loss.has_gradient()


# -- target shapes for regression losses (Keras's squeeze_or_expand_to_same_rank) --------------
@pytest.mark.parametrize("loss", ["mse", "mae", "binary_crossentropy"])
def test_regression_targets_follow_keras_rank_rules(loss):
    x = np.random.default_rng(0).random((6, 4, 4, 1))
    y = np.random.default_rng(1).random(6)
    model = _model(1, activation="sigmoid")
    model.compile(optimizer="sgd", loss=loss)
    flat = model.evaluate(x, y, verbose=0)  # (N,) for an (N, 1) output: expanded
    assert flat == model.evaluate(x, y[:, None], verbose=0) == model.evaluate(x, y[:, None, None], verbose=0)
    model4 = _model(4)
    model4.compile(optimizer="sgd", loss=loss)
    y4 = np.random.default_rng(2).random((6, 4))
    assert model4.evaluate(x, y4[..., None], verbose=0) == model4.evaluate(x, y4, verbose=0)  # trailing 1 squeezed
    with pytest.raises(
        ValueError,
        match=r"expects targets of shape \(N, 4\) .*got shape \(6,\) \(these look like "
        r"class indices: use keras.utils.to_categorical",
    ):
        model4.evaluate(x, np.arange(6) % 4, verbose=0)
    for bad in [(6, 1), (6, 3), (6, 4, 2)]:
        with pytest.raises(ValueError, match=rf"expects targets of shape \(N, 4\).*got shape \({bad[0]}, {bad[1]}"):
            model4.evaluate(x, np.zeros(bad), verbose=0)


# -- models: evaluate and fit with weights ---------------------------------------------------
def _model(classes, activation="softmax", seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.layers.Flatten(input_shape=(4, 4, 1), dtype="float64"),
            keras.layers.Dense(classes, activation=activation, dtype="float64"),
        ]
    )


def _data(n=24, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 4, 4, 1)), rng.integers(0, classes, n)


def test_evaluate_with_sample_weight_weights_loss_and_weighted_metrics_only():
    x, y = _data()
    w = np.random.default_rng(5).uniform(0, 2, len(y))
    model = _model(3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["acc"], weighted_metrics=["acc"])
    logs = model.evaluate(x, y, sample_weight=w, batch_size=5, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    per_sample = -np.log(p[np.arange(len(y)), y])
    hit = p.argmax(1) == y
    assert logs["loss"] == pytest.approx(np.sum(w * per_sample) / len(y), rel=1e-12)
    assert logs["acc"] == pytest.approx(np.mean(hit), abs=1e-12)  # metrics= ignore the weights (Keras 3)
    assert logs["weighted_acc"] == pytest.approx(np.sum(w * hit) / np.sum(w), abs=1e-12)
    assert list(logs) == ["loss", "acc", "weighted_acc"]


@pytest.mark.parametrize(
    "loss, activation, target",
    [
        ("sparse_categorical_crossentropy", "softmax", "labels"),  # the fused softmax path
        ("categorical_crossentropy", "softmax", "onehot"),
        ("mse", "linear", "onehot"),
        ("binary_crossentropy", "sigmoid", "onehot"),
        ("mae", "linear", "onehot"),
    ],
)
def test_weighted_model_gradient_matches_central_differences(loss, activation, target):
    x, y = _data(n=7)
    yt = y if target == "labels" else np.eye(3)[y]
    w = np.random.default_rng(3).uniform(0, 2, len(y))
    model = _model(3, activation=activation)
    model.compile(optimizer="sgd", loss=loss)
    x, yp = model._prepare(x, yt)
    fused = stack_step.fused_softmax(model)
    _, _, dout = stack_step.loss_and_grad(model.layers, model.loss, x, yp, True, fused, w)
    stack_step.backward(model.layers, dout, model._first_trainable, fused)
    dense = model.layers[-1]
    kernel = dense.params["kernel"]

    def weighted_loss(k):
        kernel[...] = k
        return model.loss(yt, model.predict(x, verbose=0), sample_weight=w)

    ng = _scalar_grad(weighted_loss, kernel.copy())
    assert rel_error(dense.grads["kernel"], ng) < 1e-6


def test_fit_sample_weight_step_matches_hand_gradient():
    """One full-batch SGD step on a linear model with MSE: dW = X^T (2 (P - Y) w / (N K))."""
    x, y = _data(n=6)
    yt = np.eye(3)[y]
    w = np.array([1.0, 0.0, 2.0, 0.5, 1.5, 3.0])
    model = _model(3, activation="linear")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    k0, b0 = model.get_weights()
    xf = x.reshape(6, -1)
    p = xf @ k0 + b0
    d = 2 * (p - yt) * w[:, None] / (6 * 3)
    hist = model.fit(x, yt, sample_weight=w, batch_size=6, epochs=1, shuffle=False, verbose=0)
    k1, b1 = model.get_weights()
    np.testing.assert_allclose(k1, k0 - 0.1 * xf.T @ d, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b1, b0 - 0.1 * d.sum(0), rtol=1e-12, atol=1e-14)
    assert hist.history["loss"][0] == pytest.approx(np.sum(w * np.mean((p - yt) ** 2, 1)) / 6, rel=1e-12)


def test_class_weight_zero_trains_on_the_other_classes_alone():
    """Predicted exactly: with class 0 weighted 0, a full-batch step is the unweighted step on the
    other samples alone with the learning rate scaled by their share n1 / N (the divisor stays N)."""
    x, y = _data(n=12, classes=2)
    n1 = int(np.sum(y == 1))
    a = _model(2)
    a.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    a.fit(x, y, class_weight={0: 0.0}, batch_size=12, epochs=1, shuffle=False, verbose=0)
    b = _model(2)
    b.compile(optimizer=keras.optimizers.SGD(0.5 * n1 / 12), loss="sparse_categorical_crossentropy")
    b.fit(x[y == 1], y[y == 1], batch_size=12, epochs=1, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=1e-15)


def test_class_weight_shifts_predictions_towards_the_weighted_class():
    """Overlapping, imbalanced classes: weighting the rare class 10x makes the model predict it more."""
    rng = np.random.default_rng(0)
    n = 200
    y = (rng.random(n) < 0.15).astype(int)
    x = (rng.standard_normal((n, 4, 4, 1)) + 0.6 * y[:, None, None, None]).astype(np.float64)
    predicted_rare = {}
    for cw in (None, {0: 1.0, 1: 10.0}):
        model = _model(2)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
        model.fit(x, y, class_weight=cw, epochs=20, verbose=0)
        predicted_rare[cw is not None] = int(np.sum(model.predict(x, verbose=0).argmax(1) == 1))
    assert predicted_rare[True] > predicted_rare[False] + 20


def test_class_weight_equals_the_same_sample_weight_for_each_target_form():
    x, y = _data(n=10)
    cw = {0: 0.5, 2: 3.0}  # class 1 is missing: weight 1
    w = np.array([cw.get(int(c), 1.0) for c in y])
    for loss, yt in (("sparse_categorical_crossentropy", y), ("categorical_crossentropy", np.eye(3)[y])):
        runs = []
        for kwargs in ({"class_weight": cw}, {"sample_weight": w}):
            model = _model(3)
            model.compile(optimizer=keras.optimizers.SGD(0.3), loss=loss)
            runs.append((model.fit(x, yt, batch_size=4, epochs=2, verbose=0, **kwargs).history, model.get_weights()))
        assert runs[0][0] == runs[1][0]
        for a, b in zip(runs[0][1], runs[1][1]):
            np.testing.assert_array_equal(a, b)


def test_validation_weights_from_split_and_from_a_triple():
    x, y = _data(n=20)
    w = np.random.default_rng(9).uniform(0.5, 2, 20)
    model = _model(3)
    model.compile(
        optimizer=keras.optimizers.SGD(1e-12), loss="sparse_categorical_crossentropy", weighted_metrics=["acc"]
    )
    hist = model.fit(x, y, sample_weight=w, validation_split=0.25, epochs=1, verbose=0)
    ref = model.evaluate(x[15:], y[15:], sample_weight=w[15:], verbose=0, return_dict=True)
    assert hist.history["val_loss"][0] == pytest.approx(ref["loss"], rel=1e-9)
    assert hist.history["val_acc"][0] == pytest.approx(ref["acc"], abs=1e-12)
    hist = model.fit(x, y, validation_data=(x[:8], y[:8], w[:8]), epochs=1, verbose=0)
    ref = model.evaluate(x[:8], y[:8], sample_weight=w[:8], verbose=0, return_dict=True)
    assert hist.history["val_loss"][0] == pytest.approx(ref["loss"], rel=1e-9)


def test_weight_argument_errors():
    x, y = _data(n=6)
    model = _model(3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"cannot pass both `class_weight` and `sample_weight`"):
        model.fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(6), verbose=0)
    with pytest.raises(ValueError, match=r"fit: `sample_weight` must have shape \(6,\).*got shape \(6, 2\)"):
        model.fit(x, y, sample_weight=np.ones((6, 2)), verbose=0)
    with pytest.raises(ValueError, match=r"evaluate: `sample_weight` must be finite; got \[nan\]"):
        model.evaluate(x, y, sample_weight=np.array([1, 1, np.nan, 1, 1, 1]), verbose=0)
    with pytest.raises(TypeError, match=r"`class_weight` must be a dict \{class index: weight\}; got list"):
        model.fit(x, y, class_weight=[1.0, 2.0], verbose=0)
    with pytest.raises(ValueError, match=r"`class_weight` keys must be int class indices; got 'cat'"):
        model.fit(x, y, class_weight={"cat": 2.0}, verbose=0)
    with pytest.raises(ValueError, match=r"`class_weight\[1\]` must be a finite number; got inf"):
        model.fit(x, y, class_weight={1: math.inf}, verbose=0)
    with pytest.raises(
        ValueError,
        match=r"`validation_data` must be a tuple \(x_val, y_val\) or \(x_val, y_val, "
        r"val_sample_weight\); got tuple of length 4",
    ):
        model.fit(x, y, validation_data=(x, y, None, None), verbose=0)


# -- thread shards ---------------------------------------------------------------------------
class Counter(keras.metrics.Metric):
    def __init__(self, name="counter"):
        super().__init__(name=name)
        self.n = self.add_variable((), "zeros", dtype="float64", name="n")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.n.assign_add(np.sum(np.asarray(y_pred)[:, 0] > 0.3))

    def result(self):
        return self.n


def test_thread_shards_give_the_same_logs_as_one_thread(monkeypatch):
    x, y = _data(n=40)
    w = np.random.default_rng(4).uniform(0, 2, 40)
    monkeypatch.setattr(parallel, "MIN_SHARD_FLOPS", 0)  # shard even this small model
    calls = {1: [], 2: []}
    real = runner.Runner.train_step

    def spy(self, *a, **k):
        out = real(self, *a, **k)
        calls[n].append(self.n)  # the shards this step was cut into
        return out

    monkeypatch.setattr(runner.Runner, "train_step", spy)
    runs = {}
    try:
        for n in (1, 2):
            parallel.set_num_threads(n)
            model = _model(3)
            model.compile(
                optimizer=keras.optimizers.SGD(0.2),
                loss="sparse_categorical_crossentropy",
                metrics=["acc", Counter()],
                weighted_metrics=["acc"],
            )
            hist = model.fit(
                x, y, sample_weight=w, batch_size=16, epochs=2, verbose=0, validation_data=(x[:12], y[:12], w[:12])
            )
            runs[n] = (hist.history, model.get_weights())
    finally:
        parallel.set_num_threads(None)
    assert set(calls[1]) == {1} and set(calls[2]) == {2}  # the two-thread run cut its batches in two
    h1, h2 = runs[1][0], runs[2][0]
    assert list(h1) == list(h2)
    for key in h1:
        np.testing.assert_allclose(h2[key], h1[key], rtol=1e-12, err_msg=key)
    for a, b in zip(runs[1][1], runs[2][1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


# -- saving ------------------------------------------------------------------------------------
def test_save_load_metric_objects_new_losses_and_weighted_metrics(tmp_path):
    x, y = _data(n=16, classes=2)
    cases = [
        (
            keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
            "linear",
            [keras.metrics.BinaryAccuracy(threshold=0.3), "acc"],
            ["binary_accuracy"],
            y[:, None].astype(float),
        ),
        (
            "mae",
            "linear",
            [keras.metrics.MeanSquaredError(name="m2"), keras.metrics.mean_absolute_error],
            [keras.metrics.MeanAbsoluteError()],
            y[:, None].astype(float),
        ),
    ]
    for i, (loss, activation, metrics, weighted, yt) in enumerate(cases):
        model = _model(1, activation=activation)
        model.compile(optimizer="adam", loss=loss, metrics=metrics, weighted_metrics=weighted)
        model.fit(x, yt, epochs=1, verbose=0)
        path = tmp_path / f"m{i}.convolab"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded.loss) is type(model.loss)
        assert loaded.loss.get_config() == model.loss.get_config()
        assert loaded.metrics_names == model.metrics_names
        assert [m.get_config() for m in loaded.metrics_list + loaded.weighted_metrics_list] == [
            m.get_config() for m in model.metrics_list + model.weighted_metrics_list
        ]
        w = np.linspace(0.5, 1.5, 16)
        assert loaded.evaluate(x, yt, sample_weight=w, verbose=0, return_dict=True) == model.evaluate(
            x, yt, sample_weight=w, verbose=0, return_dict=True
        )


def test_sparse_top_k_metric_object_round_trips(tmp_path):
    model = _model(3)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.sparse_categorical_crossentropy,
        metrics=[keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2")],
    )
    model.save(tmp_path / "t.convolab")
    loaded = keras.models.load_model(tmp_path / "t.convolab")
    assert loaded.metrics_list[0].k == 2 and loaded.metrics_names == ["loss", "top2"]


def test_unregistered_custom_metrics_are_saved_by_name_with_a_warning(tmp_path):
    # As Keras: the file names the function; loading without it warns and leaves the model
    # uncompiled (issue 19); with custom_objects it compiles again. Lambdas are left out.
    def my_metric(y_true, y_pred):
        return np.zeros(len(y_pred))

    model = _model(3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["acc", my_metric, lambda t, p: p])
    with pytest.warns(UserWarning, match=r"metric 'my_metric', which is not registered.*metric a lambda.*left out"):
        model.save(tmp_path / "c.convolab")
    with pytest.warns(UserWarning, match=r"could not be compiled.*'my_metric'"):
        assert not keras.models.load_model(tmp_path / "c.convolab").compiled
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.models.load_model(tmp_path / "c.convolab", custom_objects={"my_metric": my_metric})
    assert loaded.metrics_names == ["loss", "acc", "my_metric"]


def test_schema_refuses_metric_classes_outside_the_allow_list():
    from convolab import optimizers

    comp = {
        "optimizer": optimizers.serialize(keras.optimizers.SGD()),
        "loss": {"class_name": "MeanAbsoluteError", "config": {"name": "mean_absolute_error"}},
        "metrics": [{"class_name": "BinaryAccuracy", "config": {"name": "b", "dtype": "float32", "threshold": 0.5}}],
    }
    assert schema.compile_schema(comp, "compile")["metrics"][0]["class_name"] == "BinaryAccuracy"
    bad = dict(comp, metrics=[{"class_name": "os.system", "config": {}}])
    with pytest.raises(ModelFileError, match=r"compile.metrics\[0\].class_name: expected one of Accuracy"):
        schema.compile_schema(bad, "compile")
    bad = dict(
        comp, metrics=[{"class_name": "BinaryAccuracy", "config": {"name": "b", "dtype": "float32", "threshold": 1.0}}]
    )
    with pytest.raises(ModelFileError, match=r"threshold: expected a finite number in \(0, 1\)"):
        schema.compile_schema(bad, "compile")
    bad = dict(
        comp,
        loss={
            "class_name": "BinaryCrossentropy",
            "config": {"name": "b", "from_logits": False, "label_smoothing": 2.0},
        },
    )
    with pytest.raises(ModelFileError, match=r"label_smoothing: expected a finite number in \[0, 1\]"):
        schema.compile_schema(bad, "compile")
