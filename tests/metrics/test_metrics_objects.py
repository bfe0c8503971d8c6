"""keras.metrics: Metric objects, per-sample functions and how fit/evaluate use them.

Every expected value is worked out by hand in the test (small inputs) or recomputed here from
``model.predict`` with plain NumPy, never taken from convolab's own metric code.
"""

import numpy as np
import pytest

from convolab import keras

M = keras.metrics


# -- per-sample functions ------------------------------------------------------------
def test_functions_return_per_sample_values():
    probs = np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0.0], [0.5, 0.2, 0.3]])
    np.testing.assert_array_equal(M.sparse_categorical_accuracy(np.array([1, 2, 0]), probs), [1, 0, 1])
    np.testing.assert_array_equal(M.sparse_categorical_accuracy(np.array([[1], [2], [0]]), probs), [1, 0, 1])
    onehot = np.eye(3)[[1, 2, 0]]
    np.testing.assert_array_equal(M.categorical_accuracy(onehot, probs), [1, 0, 1])
    # binary: y_pred > 0.5 against the targets as they are (not thresholded), mean over the last axis
    np.testing.assert_array_equal(
        M.binary_accuracy(np.array([[1, 0], [1, 1]]), np.array([[0.7, 0.2], [0.4, 0.9]])), [1.0, 0.5]
    )
    np.testing.assert_array_equal(
        M.binary_accuracy(np.array([1, 0]), np.array([[0.3], [0.27]]), threshold=0.25), [1.0, 0.0]
    )
    np.testing.assert_allclose(M.mean_squared_error(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])), [2.5])
    np.testing.assert_allclose(M.mean_absolute_error(np.array([[1.0, -3.0]]), np.array([[0.0, 0.0]])), [2.0])
    # (N,) targets for a (N, 1) output: Keras expands the targets
    np.testing.assert_allclose(M.mean_squared_error(np.array([1.0, 2.0]), np.array([[1.5], [2.0]])), [0.25, 0.0])


def test_top_k_counts_ties_in_and_nan_never():
    probs = np.array(
        [
            [0.1, 0.5, 0.4, 0.0],  # label 2 ranks 2nd
            [0.3, 0.3, 0.3, 0.1],  # label 0 ties for 1st: rank 1
            [0.2, 0.2, 0.2, 0.4],  # label 1: one score above: rank 2
            [np.nan, 0.1, 0.2, 0.3],
        ]
    )  # NaN at the label is never in the top k
    labels = np.array([2, 0, 1, 0])
    np.testing.assert_array_equal(M.sparse_top_k_categorical_accuracy(labels, probs, k=1), [0, 1, 0, 0])
    np.testing.assert_array_equal(M.sparse_top_k_categorical_accuracy(labels, probs, k=2), [1, 1, 1, 0])
    np.testing.assert_array_equal(M.top_k_categorical_accuracy(np.eye(4)[labels], probs, k=2), [1, 1, 1, 0])


# -- Metric objects -------------------------------------------------------------------
@pytest.mark.parametrize(
    "metric, y_true, y_pred, weights, plain, weighted",
    [
        # Keras's documented examples, worked out by hand
        (M.Accuracy(), [[1], [2], [3], [4]], [[0], [2], [3], [4]], [1, 1, 0, 0], 0.75, 0.5),
        (M.BinaryAccuracy(), [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], [1, 0, 0, 1], 0.75, 0.5),
        (M.CategoricalAccuracy(), [[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], [0.7, 0.3], 0.5, 0.3),
        (M.SparseCategoricalAccuracy(), [[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], [0.7, 0.3], 0.5, 0.3),
        (
            M.TopKCategoricalAccuracy(k=1),
            [[0, 0, 1], [0, 1, 0]],
            [[0.1, 0.9, 0.8], [0.05, 0.95, 0]],
            [0.7, 0.3],
            0.5,
            0.3,
        ),
        (M.SparseTopKCategoricalAccuracy(k=1), [2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], [0.7, 0.3], 0.5, 0.3),
        # (1 + 4) / 2 and (1 * 1 + 4 * 3) / (1 + 3)
        (M.MeanSquaredError(), [[0.0], [0.0]], [[1.0], [2.0]], [1, 3], 2.5, 13 / 4),
        (M.MeanAbsoluteError(), [[0.0, 0.0], [1.0, 1.0]], [[1.0, 3.0], [1.0, 2.0]], [2, 2], 1.25, 1.25),
    ],
)
def test_metric_objects_hand_values(metric, y_true, y_pred, weights, plain, weighted):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred, dtype=np.float64)
    metric.update_state(y_true, y_pred)
    assert metric.result() == pytest.approx(plain, abs=1e-12)
    metric.reset_state()
    assert metric.result() == 0.0
    metric.update_state(y_true, y_pred, sample_weight=np.asarray(weights, dtype=np.float64))
    assert metric.result() == pytest.approx(weighted, abs=1e-12)


def test_mean_accumulates_over_calls_and_weights_count():
    m = M.Mean()
    m.update_state([1, 3, 5, 7])
    m.update_state([10])
    assert m.result() == pytest.approx(26 / 5)
    m.reset_state()
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert m.result() == 2.0
    m.update_state(np.array([[2.0, 4.0]]))  # trailing axes are averaged: one sample of value 3
    assert m.result() == pytest.approx((1 + 3 + 3) / 3)
    assert m(np.array([0.0])) == pytest.approx(7 / 4)  # __call__: update, then result


def test_metric_accumulates_over_batches_not_a_mean_of_batch_means():
    m = M.SparseCategoricalAccuracy()
    probs = np.eye(3)
    m.update_state(np.array([0, 1, 2]), probs)  # 3 of 3
    m.update_state(np.array([1]), probs[:1])  # 0 of 1
    assert m.result() == pytest.approx(3 / 4)  # a mean of batch means would say 0.5


def test_metric_argument_checks():
    with pytest.raises(ValueError, match=r"threshold.*\(0, 1\); got threshold=1.5"):
        M.BinaryAccuracy(threshold=1.5)
    with pytest.raises(ValueError, match=r"`k` must be an int >= 1; got k=0"):
        M.TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match=r"Unknown metric 'f1'"):
        M.get("f1")


def test_configs_and_names():
    assert M.BinaryAccuracy(threshold=0.3).get_config() == {
        "name": "binary_accuracy",
        "dtype": "float32",
        "threshold": 0.3,
    }
    assert M.SparseTopKCategoricalAccuracy(k=2, name="top2").get_config() == {
        "name": "top2",
        "dtype": "float32",
        "k": 2,
    }
    assert M.MeanMetricWrapper(np.abs).name == "mean_metric_wrapper"
    assert M.TopKCategoricalAccuracy.from_config({"name": "t", "dtype": "float32", "k": 3}).k == 3


# -- a user's Metric subclass and functions in fit/evaluate --------------------------------
class PrecisionOfClass1(keras.metrics.Metric):
    """Precision for class 1 with plain NumPy state: not a mean of per-sample values."""

    def __init__(self, name="precision_of_class1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_pos = self.add_variable(shape=(), initializer="zeros", name="tp")
        self.pred_pos = self.add_variable(shape=(), initializer="zeros", name="pp")

    def update_state(self, y_true, y_pred, sample_weight=None):
        pred = np.argmax(y_pred, axis=-1) == 1
        true = np.asarray(y_true).reshape(-1) == 1
        self.true_pos.assign_add(np.sum(pred & true))
        self.pred_pos.assign_add(np.sum(pred))

    def result(self):
        return self.true_pos / self.pred_pos if float(self.pred_pos) else 0.0


class SamplesSeen(keras.metrics.Metric):
    """A counter with a plain attribute and its own reset_state."""

    def __init__(self, name="samples_seen"):
        super().__init__(name=name)
        self.n = 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.n += len(y_pred)

    def result(self):
        return self.n

    def reset_state(self):
        self.n = 0


def meanAbsDiff(y_true, y_pred):  # noqa: N802  (a camelCase name: Keras snake-cases it)
    return np.abs(np.asarray(y_pred)[np.arange(len(y_pred)), np.asarray(y_true)] - 1.0)


def batch_max_prob(y_true, y_pred):  # one scalar per batch: Keras counts it as one sample
    return np.max(y_pred)


def _data(n=30, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 4, 4, 1)), rng.integers(0, classes, n)


def _model(classes=3, seed=0, activation="softmax"):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.layers.Flatten(input_shape=(4, 4, 1), dtype="float64"),
            keras.layers.Dense(classes, activation=activation, dtype="float64"),
        ]
    )


def test_custom_metric_subclass_and_functions_in_fit_and_evaluate():
    x, y = _data()
    model = _model()
    model.compile(
        optimizer=keras.optimizers.SGD(1e-12),
        loss="sparse_categorical_crossentropy",
        metrics=["acc", PrecisionOfClass1(), SamplesSeen(), meanAbsDiff, batch_max_prob],
    )
    # batches of 7: 7, 7, 7, 7, 2 -- uneven, so a mean of batch values would differ
    hist = model.fit(x, y, batch_size=7, epochs=2, shuffle=False, verbose=0, validation_data=(x[:11], y[:11]))
    assert list(hist.history) == [
        "loss",
        "acc",
        "precision_of_class1",
        "samples_seen",
        "mean_abs_diff",
        "batch_max_prob",
        "val_loss",
        "val_acc",
        "val_precision_of_class1",
        "val_samples_seen",
        "val_mean_abs_diff",
        "val_batch_max_prob",
    ]
    p = model.predict(x, verbose=0)  # SGD(1e-12): the predictions did not move
    pred = p.argmax(1)
    # the whole epoch's values, by hand
    assert hist.history["samples_seen"] == [30, 30]  # reset at each epoch
    assert hist.history["val_samples_seen"] == [11, 11]
    assert hist.history["acc"][-1] == pytest.approx(np.mean(pred == y), abs=1e-9)
    assert hist.history["precision_of_class1"][-1] == pytest.approx(
        np.sum((pred == 1) & (y == 1)) / np.sum(pred == 1), abs=1e-7
    )  # its variables are float32, as Keras
    assert hist.history["mean_abs_diff"][-1] == pytest.approx(np.mean(1 - p[np.arange(30), y]), abs=1e-9)
    batch_maxima = [p[s : s + 7].max() for s in range(0, 30, 7)]
    assert hist.history["batch_max_prob"][-1] == pytest.approx(np.mean(batch_maxima), abs=1e-9)
    assert hist.history["loss"][-1] == pytest.approx(-np.mean(np.log(p[np.arange(30), y])), rel=1e-9)
    logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    assert logs["samples_seen"] == 30  # reset for each evaluate
    assert logs["precision_of_class1"] == pytest.approx(hist.history["precision_of_class1"][-1], abs=1e-9)
    assert model.evaluate(x[:11], y[:11], verbose=0, return_dict=True)["loss"] == pytest.approx(
        hist.history["val_loss"][-1], rel=1e-9
    )


def test_metric_objects_classes_and_strings_in_compile():
    x, y = _data(n=12, classes=4)
    model = _model(classes=4)
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        metrics=[
            M.SparseTopKCategoricalAccuracy(k=2),
            M.SparseCategoricalAccuracy,
            "acc",
            "acc",
            M.sparse_categorical_accuracy,
            "sparse_top_k_categorical_accuracy",
        ],
    )
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == [
        "loss",
        "sparse_top_k_categorical_accuracy",
        "sparse_categorical_accuracy",
        "acc",
        "acc_1",
        "sparse_categorical_accuracy_1",
        "sparse_top_k_categorical_accuracy_1",
    ]
    p = model.predict(x, verbose=0)
    top2 = np.argsort(-p, axis=1)[:, :2]
    assert logs["sparse_top_k_categorical_accuracy"] == pytest.approx(np.mean([y[i] in top2[i] for i in range(12)]))
    assert (
        logs["acc"] == logs["acc_1"] == logs["sparse_categorical_accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
    )
    assert model.metrics_names == list(logs)


def test_acc_resolution_with_the_new_losses():
    x, y = _data(n=20, classes=2)
    model = _model(classes=1, activation="sigmoid")
    model.compile(optimizer="sgd", loss=keras.losses.BinaryCrossentropy(), metrics=["accuracy"])
    logs = model.evaluate(x, y.astype(np.float64), verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)[:, 0]
    assert logs["accuracy"] == pytest.approx(np.mean((p > 0.5) == (y == 1)))
    # (N, 1) labels against 3 outputs with a loss that does not decide: Keras's sparse rule
    model3 = _model(classes=3)
    model3.compile(optimizer="sgd", loss="mae", metrics=["acc"])
    onehot = np.eye(3)[_data(n=20)[1]]
    p3 = model3.predict(x, verbose=0)
    logs3 = model3.evaluate(x, onehot, verbose=0, return_dict=True)
    assert logs3["acc"] == pytest.approx(np.mean(p3.argmax(1) == onehot.argmax(1)))


def test_unknown_metric_entries_fail_at_compile():
    model = _model()
    with pytest.raises(ValueError, match=r"Unknown metric 'f1'; valid: acc, accuracy"):
        model.compile(loss="sparse_categorical_crossentropy", metrics=["f1"])
    with pytest.raises(ValueError, match=r"`metrics` must be a list of metrics; got int"):
        model.compile(loss="sparse_categorical_crossentropy", metrics=3)
