"""Sequential: summary, build, predict/evaluate, History, validation_split, loss paths, callbacks."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from convolab import backend, keras
from convolab.callbacks import Callback, EarlyStopping, LambdaCallback, TerminateOnNaN
from convolab.losses import SparseCategoricalCrossentropy

L = keras.layers


# ---------------------------------------------------------------------------
# The lesson's three models: summary()
# ---------------------------------------------------------------------------


def one_conv():
    return keras.models.Sequential(
        [
            keras.layers.Conv2D(filters=9, kernel_size=(5, 5), input_shape=(28, 28, 1), activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def two_conv():
    return keras.models.Sequential(
        [
            keras.layers.Conv2D(filters=10, kernel_size=(5, 5), input_shape=(28, 28, 1), activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(filters=20, kernel_size=(5, 5), activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def lenet():
    return keras.models.Sequential(
        [
            keras.layers.Conv2D(filters=6, kernel_size=5, strides=1, activation="relu", input_shape=(32, 32, 3)),
            keras.layers.MaxPooling2D(pool_size=2, strides=2),
            keras.layers.Conv2D(filters=16, kernel_size=5, strides=1, activation="relu"),
            keras.layers.MaxPooling2D(pool_size=2, strides=2),
            keras.layers.Flatten(),
            keras.layers.Dense(120, activation="relu"),
            keras.layers.Dense(84, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


SUMMARIES = {
    "one_conv": (
        one_conv,
        "52,084",
        [
            ("conv2d", "Conv2D", "(None, 24, 24, 9)", 234),
            ("flatten", "Flatten", "(None, 5184)", 0),
            ("dense", "Dense", "(None, 10)", 51850),
        ],
    ),
    "two_conv": (
        two_conv,
        "8,490",
        [
            ("conv2d", "Conv2D", "(None, 24, 24, 10)", 260),
            ("max_pooling2d", "MaxPooling2D", "(None, 12, 12, 10)", 0),
            ("conv2d_1", "Conv2D", "(None, 8, 8, 20)", 5020),
            ("max_pooling2d_1", "MaxPooling2D", "(None, 4, 4, 20)", 0),
            ("flatten", "Flatten", "(None, 320)", 0),
            ("dense", "Dense", "(None, 10)", 3210),
        ],
    ),
    "lenet": (
        lenet,
        "62,006",
        [
            ("conv2d", "Conv2D", "(None, 28, 28, 6)", 456),
            ("max_pooling2d", "MaxPooling2D", "(None, 14, 14, 6)", 0),
            ("conv2d_1", "Conv2D", "(None, 10, 10, 16)", 2416),
            ("max_pooling2d_1", "MaxPooling2D", "(None, 5, 5, 16)", 0),
            ("flatten", "Flatten", "(None, 400)", 0),
            ("dense", "Dense", "(None, 120)", 48120),
            ("dense_1", "Dense", "(None, 84)", 10164),
            ("dense_2", "Dense", "(None, 10)", 850),
        ],
    ),
}


@pytest.mark.parametrize("which", list(SUMMARIES))
def test_lesson_model_summary(which, capsys):
    make, total, rows = SUMMARIES[which]
    backend.clear_session()
    model = make()
    model.summary()
    text = capsys.readouterr().out
    assert 'Model: "sequential"' in text
    table = [line for line in text.splitlines() if re.match(r"^ \w+ \(\w+", line) and "Layer (type)" not in line]
    header = [line for line in text.splitlines() if "Layer (type)" in line]
    assert header == [" Layer (type)                 Output Shape              Param #"]
    assert len(table) == len(rows)
    for line, (name, cls, shape, params) in zip(table, rows):
        # Keras 2 cuts the first column at 28 characters ("max_pooling2d_1 (MaxPooling2"), as in the lesson.
        first = f"{name} ({cls})"[:28]
        assert line.startswith(" " + first), line
        assert shape in line, line
        assert line.rstrip().endswith(" " + str(params)), line
    assert f"Total params: {total}" in text.splitlines()
    assert f"Trainable params: {total}" in text.splitlines()
    assert "Non-trainable params: 0" in text.splitlines()
    n_total = int(total.replace(",", ""))
    assert model.count_params() == n_total
    assert [l.count_params() for l in model.layers] == [r[3] for r in rows]


def test_summary_print_fn_receives_the_table():
    backend.clear_session()
    got = []
    two_conv().summary(print_fn=got.append)
    text = "\n".join(got)
    assert "max_pooling2d_1 (MaxPooling2 (None, 4, 4, 20)" in text
    assert "Total params: 8,490" in text


def test_summary_before_any_data_needs_an_input_shape():
    model = keras.Sequential([L.Conv2D(2, 3), L.Flatten(), L.Dense(2)], name="nosh")
    with pytest.raises(ValueError, match=r"'nosh' has no input shape yet.*input_shape=.*keras.Input"):
        model.summary()
    model.build((None, 8, 8, 1))
    got = []
    model.summary(print_fn=got.append)
    # conv 3*3*1*2 + 2 = 20; flatten 6*6*2 = 72; dense 72*2 + 2 = 146
    assert "Total params: 166" in got[0]


# ---------------------------------------------------------------------------
# Construction: keras.Input, add, build
# ---------------------------------------------------------------------------


def test_input_first_then_add_builds_each_layer():
    model = keras.Sequential()
    model.add(keras.Input(shape=(10, 10, 3)))
    model.add(L.Conv2D(4, 3, padding="same"))
    assert model.layers[0].built and model.layers[0].output_shape == (None, 10, 10, 4)
    model.add(L.MaxPooling2D())
    model.add(L.Flatten())
    model.add(L.Dense(5))
    assert model.output_shape == (None, 5)
    assert model.input_shape == (None, 10, 10, 3)
    assert model.count_params() == (3 * 3 * 3 * 4 + 4) + (5 * 5 * 4 * 5 + 5)
    assert len(model.layers) == 4  # the Input is not a layer of the stack


def test_input_in_list_equals_input_shape_argument():
    a = keras.Sequential([keras.Input(shape=(6, 6, 2)), L.Conv2D(3, 3), L.Flatten(), L.Dense(2)])
    b = keras.Sequential([L.Conv2D(3, 3, input_shape=(6, 6, 2)), L.Flatten(), L.Dense(2)])
    assert [l.output_shape for l in a.layers] == [l.output_shape for l in b.layers]
    assert a.count_params() == b.count_params() == (9 * 2 * 3 + 3) + (4 * 4 * 3 * 2 + 2)


def test_deferred_build_from_data():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([L.Conv2D(2, 3), L.Flatten(), L.Dense(3)])
    assert not model.built
    x = np.random.default_rng(0).random((4, 7, 7, 2)).astype("float32")
    y = model.predict(x)
    assert model.built and model.input_shape == (None, 7, 7, 2)
    assert y.shape == (4, 3)
    assert model.layers[0].params["kernel"].shape == (3, 3, 2, 2)


def test_first_trainable_layer_computes_no_input_gradient():
    model = two_conv()
    flags = [l.need_input_grad for l in model.layers]
    assert flags == [False, True, True, True, True, True]


# ---------------------------------------------------------------------------
# predict / evaluate
# ---------------------------------------------------------------------------


def _small_model(seed=0, last_activation=None, n_classes=4):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            L.Conv2D(3, 3, activation="relu", input_shape=(6, 6, 1)),
            L.Flatten(),
            L.Dense(n_classes, activation=last_activation),
        ]
    )


def _data(n=40, seed=0, n_classes=4):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 1)).astype("float32"), rng.integers(0, n_classes, n)


def test_predict_in_batches_equals_one_big_forward():
    model = _small_model(last_activation="softmax")
    x, _ = _data(37)
    whole = model.predict(x, batch_size=37)
    for bs in (1, 5, 32):
        np.testing.assert_allclose(model.predict(x, batch_size=bs), whole, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model(x), whole, rtol=1e-5, atol=1e-7)
    # Independent forward: relu(conv) -> flatten -> dense -> softmax, written with NumPy.
    k, b = model.layers[0].params["kernel"], model.layers[0].params["bias"]
    win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))  # (N, 4, 4, 1, 3, 3)
    conv = np.einsum("nijcab,abcf->nijf", win, k) + b
    z = np.maximum(conv, 0).reshape(len(x), -1) @ model.layers[2].params["kernel"] + model.layers[2].params["bias"]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(whole, p, rtol=1e-4, atol=1e-6)


def test_evaluate_returns_loss_and_accuracy_list_and_dict():
    model = _small_model(last_activation="softmax")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    x, y = _data(30)
    p = model.predict(x).astype(np.float64)
    loss_ref = -np.mean(np.log(p[np.arange(30), y]))
    acc_ref = np.mean(p.argmax(1) == y)
    res = model.evaluate(x, y, batch_size=7, verbose=0)
    assert isinstance(res, list) and len(res) == 2
    assert res[0] == pytest.approx(loss_ref, rel=1e-5)
    assert res[1] == pytest.approx(acc_ref, abs=1e-12)
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(d) == ["loss", "acc"]
    assert d["loss"] == pytest.approx(loss_ref, rel=1e-5)
    assert model.metrics_names == ["loss", "acc"]


def test_evaluate_without_metrics_returns_a_float():
    model = _small_model()
    model.compile(loss=SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(10)
    res = model.evaluate(x, y, verbose=0)
    z = model.predict(x).astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert isinstance(res, float)
    assert res == pytest.approx(-logp[np.arange(10), y].mean(), rel=1e-5)


def test_compile_defaults_to_rmsprop_like_keras():
    model = _small_model()
    model.compile(loss="sparse_categorical_crossentropy")
    assert type(model.optimizer).__name__ == "RMSprop"
    assert model.optimizer.learning_rate == 0.001


# ---------------------------------------------------------------------------
# History and validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["acc", "accuracy"])
def test_history_keys_follow_the_metric_spelling(metric):
    model = _small_model()
    model.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=True), metrics=[metric])
    x, y = _data(40)
    hist = model.fit(x[:30], y[:30], validation_data=(x[30:], y[30:]), epochs=3, batch_size=8, verbose=0)
    assert set(hist.history) == {"loss", metric, "val_loss", "val_" + metric}
    assert all(len(v) == 3 for v in hist.history.values())
    assert hist.epoch == [0, 1, 2]
    assert model.history is hist
    # The last val_ values are the model evaluated on the validation data after the last epoch.
    res = model.evaluate(x[30:], y[30:], verbose=0)
    assert hist.history["val_loss"][-1] == pytest.approx(res[0], rel=1e-6)
    assert hist.history["val_" + metric][-1] == pytest.approx(res[1], abs=1e-12)
    assert all(0.0 <= a <= 1.0 for a in hist.history[metric])


def test_history_without_validation_has_no_val_keys():
    model = _small_model()
    model.compile(optimizer="sgd", loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x, y = _data(16)
    hist = model.fit(x, y, epochs=2, verbose=0)
    assert set(hist.history) == {"loss", "accuracy"}


class _Params(Callback):
    def on_train_begin(self, logs=None):
        self.seen = dict(self.params)


def test_validation_split_takes_the_last_fraction():
    model = _small_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.05), loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"]
    )
    x, y = _data(40)
    cb = _Params()
    hist = model.fit(x, y, validation_split=0.25, batch_size=1, epochs=1, verbose=0, callbacks=[cb])
    assert cb.seen["steps"] == 30  # 30 training samples, batch_size 1
    res = model.evaluate(x[-10:], y[-10:], verbose=0)
    assert hist.history["val_loss"][0] == pytest.approx(res[0], rel=1e-6)
    other = model.evaluate(x[:10], y[:10], verbose=0)
    assert other[0] != pytest.approx(res[0], rel=1e-6)


def test_validation_split_rounds_like_keras():
    model = _small_model()
    model.compile(optimizer="sgd", loss=SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(10)
    cb = _Params()
    model.fit(x, y, validation_split=0.25, batch_size=1, epochs=1, verbose=0, callbacks=[cb])
    assert cb.seen["steps"] == 7


# ---------------------------------------------------------------------------
# Loss paths: fused softmax + cross-entropy, categorical vs sparse
# ---------------------------------------------------------------------------


def _dense_pair(seed=0):
    """Two models with identical weights: Dense(10, softmax) and Dense(10) (logits)."""
    keras.utils.set_random_seed(seed)
    a = keras.Sequential([L.Flatten(input_shape=(4, 4, 1)), L.Dense(10, activation="softmax")])
    b = keras.Sequential([L.Flatten(input_shape=(4, 4, 1)), L.Dense(10)])
    b.set_weights(a.get_weights())
    return a, b


def _xy10(n=24, seed=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4, 4, 1)).astype("float32"), rng.integers(0, 10, n)


def test_fused_softmax_crossentropy_equals_from_logits_and_hand_gradient():
    a, b = _dense_pair()
    unfused_loss = SparseCategoricalCrossentropy()
    c = keras.Sequential([L.Flatten(input_shape=(4, 4, 1)), L.Dense(10, activation="softmax")])
    c.set_weights(a.get_weights())
    a.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    b.compile(optimizer=keras.optimizers.SGD(0.5), loss=SparseCategoricalCrossentropy(from_logits=True))
    unfused_loss.fuses_softmax = False  # force the probability path: softmax, clip, log
    c.compile(optimizer=keras.optimizers.SGD(0.5), loss=unfused_loss)
    x, y = _xy10()
    w, bias = (v.astype(np.float64) for v in a.get_weights())
    xf = x.reshape(len(x), -1).astype(np.float64)
    z = xf @ w + bias
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss_ref = -np.mean(np.log(p[np.arange(len(x)), y]))
    onehot = np.eye(10)[y]
    dz = (p - onehot) / len(x)
    w_ref, b_ref = w - 0.5 * xf.T @ dz, bias - 0.5 * dz.sum(0)

    la, lb, lc = a.train_on_batch(x, y), b.train_on_batch(x, y), c.train_on_batch(x, y)
    assert la == pytest.approx(loss_ref, abs=1e-6)
    assert lb == pytest.approx(loss_ref, abs=1e-6)
    assert lc == pytest.approx(loss_ref, abs=1e-6)
    for m in (a, b, c):
        np.testing.assert_allclose(m.get_weights()[0], w_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m.get_weights()[1], b_ref, rtol=1e-5, atol=1e-6)


def test_fused_softmax_loss_is_exact_for_extreme_logits():
    """Dense(softmax) + sparse CE is computed from the logits (as Keras's TF backend does):
    no clipping at -log(1e-7) = 16.1 when the true class gets a tiny probability."""
    a, _ = _dense_pair(seed=2)
    w, b = a.get_weights()
    a.set_weights([w * 200.0, b])
    a.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _xy10()
    w64 = w.astype(np.float64) * 200.0
    z = x.reshape(len(x), -1).astype(np.float64) @ w64 + b
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    ref = -logp[np.arange(len(x)), y].mean()
    assert ref > 50  # far beyond the clipped maximum
    assert a.evaluate(x, y, verbose=0) == pytest.approx(ref, rel=1e-4)
    assert a.train_on_batch(x, y) == pytest.approx(ref, rel=1e-4)


def test_categorical_with_to_categorical_equals_sparse():
    a, _ = _dense_pair(seed=4)
    c = keras.Sequential([L.Flatten(input_shape=(4, 4, 1)), L.Dense(10, activation="softmax")])
    c.set_weights(a.get_weights())
    a.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["acc"])
    c.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy", metrics=["acc"])
    x, y = _xy10()
    ra = a.evaluate(x, y, verbose=0)
    rc = c.evaluate(x, keras.utils.to_categorical(y, 10), verbose=0)
    assert rc[0] == pytest.approx(ra[0], abs=1e-6)
    assert rc[1] == ra[1]
    a.train_on_batch(x, y)
    c.train_on_batch(x, keras.utils.to_categorical(y, 10))
    for wa, wc in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_allclose(wc, wa, rtol=1e-5, atol=1e-7)


def test_to_categorical_values():
    np.testing.assert_array_equal(keras.utils.to_categorical([2, 0, 1]), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    out = keras.utils.to_categorical(np.array([[1], [3]]), num_classes=5)
    np.testing.assert_array_equal(out, [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0]])
    assert out.dtype == np.float32


# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------


class _Script(Callback):
    """Writes a scripted value into logs['score'] before EarlyStopping reads it."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]


class _Snapshots(Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def _trainable_model():
    model = _small_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_early_stopping_patience_and_restore_best_weights():
    model = _trainable_model()
    x, y = _data(16)
    snaps = _Snapshots()
    # best at epoch 1 (0.5); epochs 2 and 3 do not improve -> patience 2 stops after epoch 3.
    es = EarlyStopping(monitor="score", mode="min", patience=2, restore_best_weights=True)
    hist = model.fit(
        x,
        y,
        epochs=10,
        batch_size=4,
        verbose=0,
        callbacks=[_Script([1.0, 0.5, 0.7, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), snaps, es],
    )
    assert len(hist.history["loss"]) == 4
    assert es.stopped_epoch == 3 and es.best_epoch == 1 and es.best == 0.5
    for got, best in zip(model.get_weights(), snaps.weights[1]):
        np.testing.assert_array_equal(got, best)
    assert not all(np.array_equal(g, l) for g, l in zip(model.get_weights(), snaps.weights[3]))


def test_early_stopping_without_restore_keeps_last_weights():
    model = _trainable_model()
    x, y = _data(16)
    snaps = _Snapshots()
    es = EarlyStopping(monitor="score", patience=1)
    hist = model.fit(
        x, y, epochs=10, batch_size=4, verbose=0, callbacks=[_Script([1.0, 1.0, 1.0, 1.0] + [0.0] * 6), snaps, es]
    )
    assert len(hist.history["loss"]) == 2  # epoch 1 does not improve on epoch 0, patience 1
    for got, last in zip(model.get_weights(), snaps.weights[-1]):
        np.testing.assert_array_equal(got, last)


def test_early_stopping_auto_mode_maximises_accuracy():
    assert EarlyStopping(monitor="val_acc").mode == "max"
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping().mode == "min" and EarlyStopping().monitor == "val_loss"
    model = _trainable_model()
    x, y = _data(16)
    es = EarlyStopping(monitor="score", patience=1)
    es.mode = "max"
    es_hist = model.fit(x, y, epochs=10, verbose=0, callbacks=[_Script([0.5, 0.6, 0.6, 0.9] + [0.0] * 6), es])
    assert len(es_hist.history["loss"]) == 3


def test_early_stopping_min_delta():
    model = _trainable_model()
    x, y = _data(8)
    es = EarlyStopping(monitor="score", patience=1, min_delta=0.1)
    hist = model.fit(x, y, epochs=10, verbose=0, callbacks=[_Script([1.0, 0.95, 0.5] + [0.0] * 7), es])
    assert len(hist.history["loss"]) == 2  # 0.95 is not 0.1 better than 1.0


def test_terminate_on_nan_sets_stop_training():
    class Fake:
        stop_training = False

    cb = TerminateOnNaN()
    cb.set_model(Fake())
    cb.on_train_batch_end(0, {"loss": 0.3})
    assert cb.model.stop_training is False
    cb.on_train_batch_end(1, {"loss": float("inf")})
    assert cb.model.stop_training is True


def test_terminate_on_nan_in_fit(capsys):
    model = _trainable_model()
    x, y = _data(16)
    x[9] = np.nan
    with pytest.warns(RuntimeWarning, match=r"loss became nan at epoch 1, batch 3"):
        hist = model.fit(x, y, epochs=5, batch_size=4, shuffle=False, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(hist.history["loss"]) == 1
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_lambda_callback_sees_epochs_and_logs():
    model = _trainable_model()
    model.compile(optimizer="sgd", loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"])
    x, y = _data(20)
    epochs = []
    cb = LambdaCallback(on_epoch_end=lambda e, logs: epochs.append((e, dict(logs))))
    hist = model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb])
    assert [e for e, _ in epochs] == [0, 1, 2]
    assert [logs["loss"] for _, logs in epochs] == hist.history["loss"]
    assert [logs["acc"] for _, logs in epochs] == hist.history["acc"]


def test_lambda_callback_batch_hooks_are_called():
    model = _trainable_model()
    x, y = _data(20)
    batches = []
    cb = LambdaCallback(on_train_batch_end=lambda b, logs: batches.append((b, dict(logs))))
    hist = model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb])
    assert [b for b, _ in batches] == [0, 1, 2] * 3  # ceil(20 / 8) = 3 batches per epoch
    # The last batch's running logs are the epoch's logs.
    assert batches[-1][1]["loss"] == pytest.approx(hist.history["loss"][-1], rel=1e-12)


def test_subclassed_batch_hooks_are_called():
    seen = []

    class Batches(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_train_batch_end(self, batch, logs=None):
            seen.append(("end", batch, round(logs["loss"], 12)))

    model = _trainable_model()
    x, y = _data(20)
    hist = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[Batches()])
    assert [s[:2] for s in seen] == [(k, b) for _ in range(2) for b in range(3) for k in ("begin", "end")]
    assert seen[-1][2] == round(hist.history["loss"][-1], 12)


def test_lambda_callback_keras_signatures_with_logs():
    model = _trainable_model()
    x, y = _data(8)
    calls = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: calls.append(f"epoch_begin {epoch}"),
        on_train_end=lambda logs: calls.append("train_end"),
    )
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[cb])
    assert calls == ["train_begin", "epoch_begin 0", "epoch_begin 1", "train_end"]


def test_custom_callback_hooks_params_and_stop_training():
    events = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            events.append(("train_begin", self.params["epochs"], self.params["steps"], self.params["batch_size"]))

        def on_epoch_begin(self, epoch, logs=None):
            events.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            assert self.model is model
            events.append(("epoch_end", epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            events.append(("train_end",))

    model = _trainable_model()
    x, y = _data(20)
    hist = model.fit(
        x[:15], y[:15], validation_data=(x[15:], y[15:]), epochs=5, batch_size=4, verbose=0, callbacks=[Recorder()]
    )
    assert events == [
        ("train_begin", 5, 4, 4),
        ("epoch_begin", 0),
        ("epoch_end", 0, ["loss", "val_loss"]),
        ("epoch_begin", 1),
        ("epoch_end", 1, ["loss", "val_loss"]),
        ("train_end",),
    ]
    assert len(hist.history["loss"]) == 2


def test_callbacks_must_be_callback_instances():
    model = _trainable_model()
    x, y = _data(8)
    with pytest.raises(TypeError, match="callbacks must be convolab.callbacks.Callback instances"):
        model.fit(x, y, verbose=0, callbacks=[lambda *a: None])


def test_fit_verbose_prints_keras_lines(capsys):
    model = _trainable_model()
    model.compile(optimizer="sgd", loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"])
    x, y = _data(20)
    model.fit(x[:16], y[:16], validation_data=(x[16:], y[16:]), epochs=2, batch_size=8, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert re.search(r"loss: \d+\.\d{4} - acc: \d\.\d{4} - val_loss: \d+\.\d{4} - val_acc: \d\.\d{4}", out)


def test_fit_returns_epoch_mean_of_batch_losses():
    """With shuffle=False and lr tiny, the epoch loss is the sample-weighted mean of batch losses."""
    model = _small_model()
    model.compile(optimizer=keras.optimizers.SGD(1e-12), loss=SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(10)
    before = [model.evaluate(x[s : s + 4], y[s : s + 4], verbose=0) for s in (0, 4, 8)]
    hist = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    expect = (4 * before[0] + 4 * before[1] + 2 * before[2]) / 10
    assert hist.history["loss"][0] == pytest.approx(expect, rel=1e-5)
    assert not math.isclose(before[0], before[2], rel_tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.evaluate(x, y, verbose=0)


def test_save_overwrite_false_refuses_existing_file(tmp_path):
    from convolab import keras

    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    path = tmp_path / "m.convolab"
    model.save(path)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(path, overwrite=False)
    model.save(path, overwrite=True)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save_weights(path, overwrite=False)
