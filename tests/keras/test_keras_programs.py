"""Transcriptions of the kinds of programs published Keras code is made of, run on convolab.

Each is written as a Keras user writes it (keras.io guides, TensorFlow tutorials) and checked
against values worked out independently in the test, not against convolab itself.
"""

import csv

import numpy as np
import pytest

from convolab import keras

L = keras.layers
ops = keras.ops


def _images(n=64, seed=0):
    """A task a small convnet learns: is the bright square in the top or the bottom half?"""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 12, 12, 1)).astype("float32") * 0.2
    y = rng.integers(0, 2, n)
    for i in range(n):
        r = rng.integers(0, 4) + (6 if y[i] else 0)
        c = rng.integers(0, 9)
        x[i, r : r + 3, c : c + 3, 0] += 1.0
    return x, y


def test_toy_resnet_with_the_functional_api_learns():
    """keras.io "The Functional API" guide's toy ResNet, shrunk to 12x12 images."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(12, 12, 1), name="img")
    x = L.Conv2D(8, 3, activation="relu")(inputs)
    block_1_output = L.MaxPooling2D(2)(x)
    x = L.Conv2D(8, 3, activation="relu", padding="same")(block_1_output)
    x = L.Conv2D(8, 3, activation="relu", padding="same")(x)
    block_2_output = L.add([x, block_1_output])
    x = L.Conv2D(8, 3, activation="relu")(block_2_output)
    x = L.Flatten()(x)
    x = L.Dense(16, activation="relu")(x)
    outputs = L.Dense(2)(x)
    model = keras.Model(inputs, outputs, name="toy_resnet")
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["acc"],
    )
    x_train, y_train = _images(256)
    hist = model.fit(x_train, y_train, batch_size=32, epochs=6, verbose=0, validation_split=0.25)
    assert hist.history["loss"][-1] < hist.history["loss"][0] * 0.5
    x_test, y_test = _images(128, seed=1)
    assert model.evaluate(x_test, y_test, verbose=0, return_dict=True)["acc"] >= 0.9
    pred = model.predict(x_test, verbose=0)
    assert pred.shape == (128, 2)
    np.testing.assert_allclose(pred, model(x_test), rtol=1e-4, atol=1e-4)  # batches of 32 vs one batch


class Dense2(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")

    def call(self, inputs, training=None):
        return ops.matmul(inputs, self.w) + self.b


class WeightedMSE(keras.losses.Loss):
    def __init__(self, weight=2.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, y_true, y_pred):
        return self.weight * ops.mean(ops.square(y_pred - y_true), axis=-1)


def test_custom_layer_custom_loss_custom_metric_fit_a_line():
    """A custom layer, loss and metric: linear regression y = 3x - 1, solved exactly by SGD."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 1)).astype("float32")
    y = 3 * x - 1
    inputs = keras.Input(shape=(1,))
    model = keras.Model(inputs, Dense2(1)(inputs))

    def max_abs_error(y_true, y_pred):
        return np.max(np.abs(np.asarray(y_true) - np.asarray(y_pred)), axis=-1)

    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=WeightedMSE(2.0), metrics=[max_abs_error])
    hist = model.fit(x, y, batch_size=32, epochs=30, verbose=0)
    w, b = model.get_weights()
    np.testing.assert_allclose([w[0, 0], b[0]], [3.0, -1.0], atol=1e-3)
    assert hist.history["loss"][-1] < 1e-5
    assert "max_abs_error" in hist.history


def test_custom_loss_as_a_plain_function_equals_the_builtin_one():
    """compile(loss=f) with f written in keras.ops trains exactly like the built-in MSE."""
    rng = np.random.default_rng(1)
    x, y = rng.random((64, 5)).astype("float32"), rng.random((64, 2)).astype("float32")

    def my_mse(y_true, y_pred):
        return ops.mean(ops.square(y_pred - y_true), axis=-1)

    weights = []
    for loss in (my_mse, "mse"):
        keras.utils.set_random_seed(3)
        inputs = keras.Input(shape=(5,))
        model = keras.Model(inputs, L.Dense(2)(L.Dense(4, activation="tanh")(inputs)))
        model.compile(optimizer="sgd", loss=loss)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7)


def test_nested_sequential_and_softmax_on_top():
    """`probability_model = Sequential([model, Softmax()])` from the TensorFlow classification tutorial."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([L.Flatten(input_shape=(12, 12, 1)), L.Dense(16, activation="relu"), L.Dense(2)])
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    x, y = _images(128)
    model.fit(x, y, epochs=3, verbose=0)
    probability_model = keras.Sequential([model, L.Softmax()])
    logits = model.predict(x, verbose=0)
    probs = probability_model.predict(x, verbose=0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(axis=1, keepdims=True), rtol=1e-5)


def test_class_weight_schedule_and_loggers(tmp_path):
    """class_weight + an ExponentialDecay schedule + CSVLogger + TensorBoard in one fit."""
    pytest.importorskip("tensorboardX")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    keras.utils.set_random_seed(0)
    x, y = _images(96)
    inputs = keras.Input(shape=(12, 12, 1))
    outputs = L.Dense(2, activation="softmax")(L.Flatten()(L.Conv2D(4, 3, activation="relu")(inputs)))
    model = keras.Model(inputs, outputs)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.5)
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="sparse_categorical_crossentropy", metrics=["acc"])
    csv_path = tmp_path / "log.csv"
    hist = model.fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        verbose=0,
        class_weight={0: 1.0, 1: 3.0},
        callbacks=[keras.callbacks.CSVLogger(str(csv_path)), keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"))],
    )
    # 3 steps an epoch: after 2 epochs the schedule is at 0.05 * 0.5 ** (6 / 3)
    assert model.optimizer.iterations == 6
    np.testing.assert_allclose(float(schedule(6)), 0.05 * 0.25)
    rows = list(csv.DictReader(open(csv_path)))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], hist.history["loss"], rtol=1e-6)
    acc = EventAccumulator(str(tmp_path / "tb" / "train"))
    acc.Reload()
    np.testing.assert_allclose([e.value for e in acc.Scalars("epoch_loss")], hist.history["loss"], rtol=1e-6)


def test_class_weight_on_a_graph_is_the_weighted_mean():
    """One SGD step with class_weight equals the step on the per-sample weighted loss by hand."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 3)).astype("float64")
    y = np.array([0, 1, 1, 0, 1, 1, 1, 0])
    keras.backend.set_floatx("float64")
    try:
        inputs = keras.Input(shape=(3,))
        model = keras.Model(inputs, L.Dense(2)(inputs))
        model.compile(
            optimizer=keras.optimizers.SGD(1.0), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        w0, b0 = [a.copy() for a in model.get_weights()]
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False, class_weight={0: 2.0, 1: 0.5})
        z = x @ w0 + b0
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        sw = np.where(y == 0, 2.0, 0.5)
        dz = (p - np.eye(2)[y]) * sw[:, None] / len(x)  # Keras: sum(w * loss) / N
        np.testing.assert_allclose(model.get_weights()[0], w0 - x.T @ dz, rtol=1e-10)
        np.testing.assert_allclose(model.get_weights()[1], b0 - dz.sum(0), rtol=1e-10)
    finally:
        keras.backend.set_floatx("float32")


class Doubler(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = L.Dense(8, activation="relu")
        self.out = L.Dense(1)

    def call(self, inputs, training=False):
        return self.out(self.hidden(inputs))


def test_subclassed_model_fit_evaluate_predict():
    rng = np.random.default_rng(0)
    x = rng.random((200, 2)).astype("float32")
    y = (2 * x[:, :1] + x[:, 1:]).astype("float32")
    keras.utils.set_random_seed(0)
    model = Doubler()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    hist = model.fit(x, y, epochs=20, verbose=0)
    assert hist.history["loss"][-1] < 0.01
    assert model.evaluate(x, y, verbose=0) < 0.01
    assert model.predict(x[:3], verbose=0).shape == (3, 1)


def test_multi_input_multi_output_model_with_per_output_losses():
    """The keras.io functional-API guide's ticket model, shrunk: two inputs, two outputs, a loss
    dict, loss_weights and per-output metrics; the total loss is the weighted sum."""
    rng = np.random.default_rng(0)
    n = 96
    title = rng.random((n, 6)).astype("float32")
    body = rng.random((n, 4)).astype("float32")
    priority = (title[:, :1] + body[:, :1] > 1.0).astype("float32")  # binary target
    department = (title[:, 1] * 3).astype("int64").clip(0, 2)  # 3 classes
    keras.utils.set_random_seed(0)
    title_in = keras.Input(shape=(6,), name="title")
    body_in = keras.Input(shape=(4,), name="body")
    x = L.concatenate([L.Dense(8, activation="relu")(title_in), L.Dense(8, activation="relu")(body_in)])
    priority_out = L.Dense(1, activation="sigmoid", name="priority")(x)
    department_out = L.Dense(3, name="department")(x)
    model = keras.Model([title_in, body_in], [priority_out, department_out])
    assert model.output_names == ["priority", "department"]
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss={
            "priority": "binary_crossentropy",
            "department": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
        metrics={"department": ["acc"]},
    )
    hist = model.fit(
        {"title": title, "body": body} if False else [title, body],
        {"priority": priority, "department": department},
        epochs=15,
        batch_size=16,
        verbose=0,
    )
    assert set(hist.history) == {"loss", "priority_loss", "department_loss", "department_acc"}
    # the reported loss is the weighted sum of the outputs' losses (epoch means of batch means)
    np.testing.assert_allclose(
        hist.history["loss"],
        np.array(hist.history["priority_loss"]) + 0.2 * np.array(hist.history["department_loss"]),
        rtol=1e-5,
    )
    assert hist.history["loss"][-1] < hist.history["loss"][0] * 0.7
    p, d = model.predict([title, body], verbose=0)
    assert p.shape == (n, 1) and d.shape == (n, 3)
    logs = model.evaluate([title, body], [priority, department], verbose=0, return_dict=True)
    bce = -np.mean(
        priority * np.log(np.clip(p, 1e-7, 1 - 1e-7)) + (1 - priority) * np.log(np.clip(1 - p, 1e-7, 1 - 1e-7))
    )
    z = d - d.max(1, keepdims=True)
    ce = -np.mean(z[np.arange(n), department] - np.log(np.exp(z).sum(1)))
    np.testing.assert_allclose(
        [logs["priority_loss"], logs["department_loss"], logs["loss"]], [bce, ce, bce + 0.2 * ce], rtol=1e-4
    )
    assert logs["department_acc"] == pytest.approx(np.mean(d.argmax(1) == department))


def test_multi_output_model_saves_architecture_weights_and_compile_settings(tmp_path):
    a = keras.Input(shape=(3,))
    x = L.Dense(4)(a)
    model = keras.Model(a, [L.Dense(1, name="p")(x), L.Dense(2, name="q")(x)])
    model.compile(optimizer="adam", loss=["mse", "mse"], loss_weights=[1.0, 0.5])
    model.fit(np.ones((8, 3)), [np.ones((8, 1)), np.zeros((8, 2))], verbose=0)
    model.save(tmp_path / "m.convolab")
    loaded = keras.models.load_model(tmp_path / "m.convolab")
    for a_, b_ in zip(loaded.predict(np.ones((2, 3)), verbose=0), model.predict(np.ones((2, 3)), verbose=0)):
        np.testing.assert_array_equal(a_, b_)
    assert loaded.compiled and loaded.loss.weights == [1.0, 0.5] and loaded.optimizer.iterations == 1


def test_graph_evaluate_uses_the_logits_of_a_saturated_softmax_like_sequential():
    """Cross-entropy on a softmax output is computed from its logits in evaluate too: a functional
    model and the same Sequential report the same (large) loss where probabilities underflow."""
    keras.utils.set_random_seed(0)
    seq = keras.Sequential([keras.Input(shape=(2,)), L.Dense(3, activation="softmax")])
    inputs = keras.Input(shape=(2,))
    dense = L.Dense(3, activation="softmax")
    graph = keras.Model(inputs, dense(inputs))
    w = np.array([[40.0, 0.0, -40.0], [0.0, 0.0, 0.0]], dtype="float32")
    for m in (seq, graph):
        m.set_weights([w, np.zeros(3, "float32")])
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.array([[1.0, 0.0]], "float32"), np.array([2])
    expected = 80.0 + np.log1p(np.exp(-40.0) + np.exp(-80.0))  # -log softmax(z)[2], z = (40, 0, -40)
    assert seq.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert graph.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)
