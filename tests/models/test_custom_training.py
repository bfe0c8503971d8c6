"""Custom training as Keras 3 users write it (issue 19, item 5).

keras.io's "Customizing what happens in fit()" (a ``compute_loss`` override, a ``train_step``
override with the metrics loop, a ``test_step``), a VAE-style model that adds its own loss with
``self.add_loss`` and is compiled without one, Keras's loss objects called on tape tensors, and
models with no trainable weight. Each result is checked against NumPy worked out here.
"""

import numpy as np
import pytest

from convolab import keras
from convolab.keras import layers, ops
from support.gradcheck import numerical_gradient, rel_error


def _regression(n=32, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def _sgd_mse_step(w, b, x, y, lr):
    """One SGD step of mean((x @ w + b - y) ** 2), by hand."""
    r = x.astype(np.float64) @ w + b - y
    return w - lr * 2.0 * x.T @ r / r.size, b - lr * 2.0 * r.sum(0) / r.size


# -- compute_loss ------------------------------------------------------------------------------


class MSEByHand(keras.Model):
    """keras.io's Keras 3 guide: compile() without a loss, compute_loss written with keras.ops."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return ops.mean((y_pred - y) ** 2)


def test_compute_loss_override_trains_without_a_compiled_loss():
    x, y = _regression()
    inputs = keras.Input(shape=(5,))
    model = MSEByHand(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    w, b = [a.astype(np.float64) for a in model.get_weights()]
    hist = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    losses = []
    for i in range(0, 32, 8):
        losses.append(np.mean((x[i : i + 8] @ w + b - y[i : i + 8]) ** 2))
        w, b = _sgd_mse_step(w, b, x[i : i + 8], y[i : i + 8], 0.1)
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.get_weights()[1], b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(hist.history["loss"][0], np.mean(losses), rtol=1e-4)
    # evaluate uses it too (training=False), on the trained weights
    expected = np.mean((x @ model.get_weights()[0] + model.get_weights()[1] - y) ** 2)
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=32, verbose=0), expected, rtol=1e-4)


def test_compute_loss_may_call_super_and_add_a_term():
    class L2Output(keras.Model):  # the guide's habit: super().compute_loss(...) plus a term of one's own
        def compute_loss(self, x, y, y_pred, sample_weight):
            return super().compute_loss(x, y, y_pred, sample_weight) + 0.5 * ops.mean(y_pred**2)

    x, y = _regression()
    inputs = keras.Input(shape=(5,))
    model = L2Output(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    w, b = model.get_weights()
    pred = x @ w + b
    expected = np.mean((pred - y) ** 2) + 0.5 * np.mean(pred**2)
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=32, verbose=0), expected, rtol=1e-5)


def test_compile_without_loss_and_nothing_to_compute_says_so():
    x, y = _regression(8)
    inputs = keras.Input(shape=(5,))
    model = keras.Model(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"Functional model '.*': no loss to compute.*add_loss.*compute_loss"):
        model.fit(x, y, verbose=0)


# -- train_step / test_step -------------------------------------------------------------------


class GuideModel(keras.Model):
    """keras.io "Customizing what happens in fit()", the first train_step, with keras.GradientTape."""

    def train_step(self, data):
        self.calls.append("train")
        x, y = data
        with keras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        self.calls.append("test")
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_train_step_override_as_the_guide_writes_it():
    x, y = _regression()
    inputs = keras.Input(shape=(5,))
    model = GuideModel(inputs, layers.Dense(1)(inputs))
    model.calls = []
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    w, b = [a.astype(np.float64) for a in model.get_weights()]
    hist = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert set(hist.history) == {"loss", "mae"} and len(hist.history["loss"]) == 2
    maes = []
    for _ in range(2):
        maes.append([])
        for i in range(0, 32, 16):
            maes[-1].append(np.mean(np.abs(x[i : i + 16] @ w + b - y[i : i + 16])))
            w, b = _sgd_mse_step(w, b, x[i : i + 16], y[i : i + 16], 0.05)
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-4, atol=1e-6)
    # the metrics are reset each epoch: the second epoch's mae is that epoch's alone
    np.testing.assert_allclose(hist.history["mae"], [np.mean(m) for m in maes], rtol=1e-4)
    logs = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    pred = x @ model.get_weights()[0] + model.get_weights()[1]
    np.testing.assert_allclose(logs["loss"], np.mean((pred - y) ** 2), rtol=1e-4)
    np.testing.assert_allclose(logs["mae"], np.mean(np.abs(pred - y)), rtol=1e-4)
    assert model.calls == ["train"] * 4 + ["test"]


def test_train_step_with_its_own_trackers_and_metrics_property():
    class OwnTrackers(keras.Model):  # the guide's second example: trackers of its own, no compiled loss
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")

        def train_step(self, data):
            x, y = data
            with keras.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = ops.mean(keras.losses.mean_squared_error(y, y_pred))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            self.loss_tracker.update_state(loss)
            self.mae_metric.update_state(y, y_pred)
            return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    x, y = _regression()
    inputs = keras.Input(shape=(5,))
    model = OwnTrackers(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    w, b = [a.astype(np.float64) for a in model.get_weights()]
    hist = model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    losses = []
    for _ in range(3):
        losses.append(np.mean((x @ w + b - y) ** 2))
        w, b = _sgd_mse_step(w, b, x, y, 0.05)
    np.testing.assert_allclose(hist.history["loss"], losses, rtol=1e-4)  # reset every epoch
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-4, atol=1e-6)


# -- add_loss: a VAE-style model compiled without a loss ---------------------------------------


class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        return z_mean + ops.exp(0.5 * z_log_var) * 0.0  # deterministic here, so the test can recompute it


class TinyVAE(keras.Model):
    """keras.io's VAE shape: the KL term is added with self.add_loss in call(); the reconstruction
    loss with a built-in Loss object called on the tape."""

    def __init__(self):
        super().__init__()
        self.mean = layers.Dense(2, name="z_mean")
        self.log_var = layers.Dense(2, name="z_log_var")
        self.sample = Sampling()
        self.decode = layers.Dense(6, activation="sigmoid", name="decoder")

    def call(self, x):
        z_mean, z_log_var = self.mean(x), self.log_var(x)
        kl = -0.5 * ops.mean(ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1))
        self.add_loss(kl)
        reconstruction = self.decode(self.sample([z_mean, z_log_var]))
        self.add_loss(keras.losses.BinaryCrossentropy()(x, reconstruction))
        return reconstruction


def _vae_loss_by_hand(model, x):
    wm, bm, wv, bv, wd, bd = [a.astype(np.float64) for a in model.get_weights()]
    z_mean, z_log_var = x @ wm + bm, x @ wv + bv
    kl = -0.5 * np.mean(np.sum(1 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=1))
    p = np.clip(1 / (1 + np.exp(-(z_mean @ wd + bd))), 1e-7, 1 - 1e-7)
    bce = -np.mean(x * np.log(p) + (1 - x) * np.log(1 - p))
    return kl + bce


def test_vae_style_add_loss_model_fits_on_x_alone():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).random((64, 6)).astype("float32")
    model = TinyVAE()
    model.compile(optimizer=keras.optimizers.Adam(0.02))
    model(x[:1])  # build
    np.testing.assert_allclose(model.evaluate(x, batch_size=64, verbose=0), _vae_loss_by_hand(model, x), rtol=1e-4)
    hist = model.fit(x, epochs=15, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < 0.8 * hist.history["loss"][0]
    np.testing.assert_allclose(model.evaluate(x, batch_size=64, verbose=0), _vae_loss_by_hand(model, x), rtol=1e-4)


# -- Loss objects on tape tensors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "loss, y",
    [
        (lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True), np.array([0, 2, 1, 2])),
        (lambda: keras.losses.CategoricalCrossentropy(), np.eye(3)[[1, 0, 2, 2]]),
        (lambda: keras.losses.MeanSquaredError(reduction="sum"), np.arange(12.0).reshape(4, 3) / 10),
        (lambda: keras.losses.BinaryCrossentropy(from_logits=True), np.eye(3)[[1, 0, 2, 2]]),
    ],
)
def test_loss_object_on_tape_tensors_has_the_numerical_gradient(loss, y):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 5))
    kernel = rng.normal(size=(5, 3)) * 0.5
    d = layers.Dense(3, use_bias=False, dtype="float64")
    d.build((None, 5))
    softmax = isinstance(loss(), keras.losses.CategoricalCrossentropy)
    weights = np.array([1.0, 0.5, 2.0, 0.0])

    def value(k):
        d.set_weights([k])
        out = d(x)
        return loss()(y, ops.softmax(out) if softmax else out, sample_weight=weights)

    with keras.GradientTape() as tape:
        d.set_weights([kernel])
        out = d(x)
        total = loss()(y, ops.softmax(out) if softmax else out, sample_weight=weights)
    grad = tape.gradient(total, d.trainable_weights)[0]  # a float here raised before: no tape tensor
    numeric = numerical_gradient(lambda k: np.asarray(value(k)), kernel.copy(), 1.0)
    assert rel_error(np.asarray(grad), numeric) < 1e-6


def test_unreduced_loss_and_loss_functions_on_tape_tensors():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 5)), np.array([1, 0, 2, 2])
    kernel = rng.normal(size=(5, 3))
    d = layers.Dense(3, use_bias=False, dtype="float64")
    d.build((None, 5))
    g = rng.normal(size=4)  # a random upstream gradient on the per-sample values

    def per_sample(k, fn):
        d.set_weights([k])
        return np.asarray(fn(y, d(x)))

    for fn in (
        keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none"),
        lambda t, p: keras.losses.sparse_categorical_crossentropy(t, p, from_logits=True),
    ):
        d.set_weights([kernel])
        with keras.GradientTape() as tape:
            values = fn(y, d(x))
            total = ops.sum(values * g)
        grad = tape.gradient(total, d.trainable_weights)[0]
        numeric = numerical_gradient(lambda k: per_sample(k, fn), kernel.copy(), g)
        assert rel_error(np.asarray(grad), numeric) < 1e-6


def test_loss_object_inside_call_trains_through_add_loss():
    class AutoEncoder(keras.Model):
        def __init__(self):
            super().__init__()
            self.enc, self.dec = layers.Dense(3), layers.Dense(6)

        def call(self, x):
            out = self.dec(self.enc(x))
            self.add_loss(keras.losses.MeanSquaredError()(x, out))  # on tape tensors in fit
            return out

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(4).random((32, 6)).astype("float32")
    model = AutoEncoder()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    hist = model.fit(x, epochs=20, batch_size=8, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    np.testing.assert_allclose(
        model.evaluate(x, verbose=0, batch_size=32), np.mean((model.predict(x, verbose=0) - x) ** 2), rtol=1e-4
    )


# -- no trainable weights -----------------------------------------------------------------------


def test_model_without_trainable_weights_fits_and_evaluates():
    x = np.random.default_rng(5).normal(size=(12, 4)).astype("float32")
    y = np.array([0, 1, 2, 3] * 3)
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, layers.Activation("softmax")(inputs))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    hist = model.fit(x, y, epochs=2, batch_size=12, verbose=0)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(12), y]))
    np.testing.assert_allclose(hist.history["loss"], [expected, expected], rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0)[0], expected, rtol=1e-5)


def test_frozen_functional_model_fits_without_updating():
    x, y = _regression(16)
    inputs = keras.Input(shape=(5,))
    model = keras.Model(inputs, layers.Dense(1)(inputs))
    model.trainable = False
    model.compile(optimizer="sgd", loss="mse")
    w0 = model.get_weights()
    hist = model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(w0, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    expected = np.mean((x @ w0[0] + w0[1] - y) ** 2)
    np.testing.assert_allclose(hist.history["loss"], [expected, expected], rtol=1e-5)


def test_a_tracker_held_in_an_attribute_reports_in_the_logs():
    """Keras 3's logs are get_metrics_result() over model.metrics, which takes in the Metric
    objects a model holds as attributes: a tracker a compute_loss override updates is logged under
    its name in fit's history and evaluate's dict, and reset at each epoch with the others."""
    from convolab import keras

    class Tracked(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.size_tracker = keras.metrics.Mean(name="pred_size")

        def call(self, x):
            return self.dense(x)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            self.size_tracker.update_state(keras.ops.mean(keras.ops.abs(y_pred)))
            return keras.ops.mean(keras.ops.square(y_pred - y))

    x = np.linspace(-1, 1, 32, dtype="float32").reshape(-1, 1)
    y = 2 * x
    model = Tracked()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    assert set(hist.history) == {"loss", "pred_size"}
    w, b = (v.numpy() for v in model.dense.weights)
    logs = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["pred_size"], np.abs(x @ w + b).mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], ((x @ w + b - y) ** 2).mean(), rtol=1e-5)
