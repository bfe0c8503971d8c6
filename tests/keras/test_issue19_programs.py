"""Issue 19, "Keras programs as people write them": one published Keras 3 program per group.

Each test transcribes the shape of a program from keras.io, the TensorFlow tutorials or a Keras
docstring (its address is in the docstring), shrunk to small synthetic data, written with
``from convolab import keras`` exactly as the original is written with ``import keras``. Each
checks learned behaviour and at least one value worked out independently here with NumPy.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import convolab
from convolab import keras
from convolab.keras import layers, ops


def _squares(n=96, size=12, seed=0):
    """Noisy images; label 1 when a bright 3x3 square sits in the bottom half, 0 in the top half."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 1)).astype("float32") * 0.2
    y = rng.integers(0, 2, n)
    half = size // 2
    for i in range(n):
        r = rng.integers(0, half - 2) + (half if y[i] else 0)
        c = rng.integers(0, size - 2)
        x[i, r : r + 3, c : c + 3, 0] += 0.8
    return x, y


def _bce(y, p, eps=1e-7):
    p = np.clip(p.astype(np.float64), eps, 1 - eps)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def _conv_loop(x, w, b, groups=1):
    """Plain 'valid' cross-correlation, NHWC input, (kh, kw, in/groups, out) kernel, a loop per group."""
    (n, h, wd, _), (kh, kw, cin, cout) = x.shape, w.shape
    out, go = np.zeros((n, h - kh + 1, wd - kw + 1, cout)), cout // groups
    for g, i, j in np.ndindex(groups, h - kh + 1, wd - kw + 1):
        patch = x[:, i : i + kh, j : j + kw, g * cin : (g + 1) * cin]
        out[:, i, j, g * go : (g + 1) * go] = np.tensordot(patch, w[..., g * go : (g + 1) * go], axes=3)
    return out + b


LOGITS_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# -- 1. Layers ------------------------------------------------------------------------------------


def test_convolutional_denoising_autoencoder():
    """https://keras.io/examples/vision/autoencoder/ : Conv2D/MaxPooling2D encoder,
    Conv2DTranspose(strides=2) decoder, sigmoid output, binary_crossentropy, fit(noisy, clean)."""
    keras.utils.set_random_seed(0)
    clean, _ = _squares(64, size=16)
    clean = np.clip(clean * 1.2, 0.0, 1.0)
    noisy = np.clip(clean + 0.4 * np.random.default_rng(1).normal(size=clean.shape), 0.0, 1.0).astype("float32")
    input = layers.Input(shape=(16, 16, 1))
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(input)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2DTranspose(8, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(8, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)
    autoencoder = keras.Model(input, x)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    hist = autoencoder.fit(x=noisy, y=clean, epochs=15, batch_size=16, shuffle=True, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0] - 0.1
    pred = autoencoder.predict(noisy, verbose=0)
    assert pred.shape == (64, 16, 16, 1)  # 16 -> 8 -> 4 -> 8 -> 16
    assert np.mean((pred - clean) ** 2) < np.mean((noisy - clean) ** 2)  # it denoises
    loss = autoencoder.evaluate(noisy, clean, batch_size=64, verbose=0)
    np.testing.assert_allclose(loss, _bce(clean, pred), rtol=1e-4)


def _token_task(n=128, length=20, vocab=10, seed=0):
    """Label 1 when the bigram (3, 7) occurs anywhere in the sequence."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, (n, length))
    y = rng.integers(0, 2, n)
    for i in range(n):
        x[i, :-1][(x[i, :-1] == 3) & (x[i, 1:] == 7)] = 0  # no accidental bigram
        if y[i]:
            p = rng.integers(0, length - 1)
            x[i, p : p + 2] = (3, 7)
    return x, y.astype("float32")


def test_text_cnn_with_conv1d_and_global_max_pooling():
    """https://keras.io/examples/nlp/text_classification_from_scratch/ : Conv1D stacks and
    GlobalMaxPooling1D over a token sequence, sigmoid output (tokens one-hot, see the next test)."""
    keras.utils.set_random_seed(0)
    x_tok, y = _token_task()
    x = np.eye(10, dtype="float32")[x_tok]
    inputs = keras.Input(shape=(None, 10))
    h = layers.Dropout(0.1)(inputs)
    h = layers.Conv1D(16, 2, padding="valid", activation="relu", strides=1)(h)
    h = layers.GlobalMaxPooling1D()(h)
    h = layers.Dense(16, activation="relu")(h)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(h)
    model = keras.Model(inputs, predictions)
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(0.02), metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=25, verbose=0)
    x_test, y_test = _token_task(seed=1)
    assert model.evaluate(np.eye(10, dtype="float32")[x_test], y_test, verbose=0)[1] > 0.85
    probe = np.array([[[1.0, -2.0], [5.0, 0.0], [-1.0, 3.0]]], "float32")
    np.testing.assert_array_equal(layers.GlobalMaxPooling1D()(probe), [[5.0, 3.0]])


def test_text_cnn_with_an_embedding_layer():
    """The same keras.io program as published: layers.Embedding(max_features, embedding_dim) first."""
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(10, 8)(inputs)
    x = layers.Conv1D(16, 2, activation="relu")(x)
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(layers.GlobalMaxPooling1D()(x)))
    x_tok, y = _token_task(32)
    assert model.predict(x_tok, verbose=0).shape == (32, 1)


def test_siamese_difference_with_activation_layers_resizing_lambda_average_subtract():
    """Layer docstrings (keras.io/api/layers/): LeakyReLU/ELU/PReLU, Resizing, Lambda,
    layers.average and layers.subtract, in a two-input 'are these the same image?' model."""
    keras.utils.set_random_seed(0)
    act = np.array([[-2.0, 0.0, 3.0]], "float32")
    np.testing.assert_allclose(layers.LeakyReLU(negative_slope=0.1)(act), [[-0.2, 0.0, 3.0]], rtol=1e-6)
    np.testing.assert_allclose(layers.ELU()(act), [[np.expm1(-2.0), 0.0, 3.0]], rtol=1e-6)
    np.testing.assert_allclose(layers.PReLU()(act), [[0.0, 0.0, 3.0]])  # alpha starts at zeros
    img = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    # bilinear 8 -> 4 with half-pixel centres samples between two pixels: a 2x2 mean
    np.testing.assert_allclose(
        layers.Resizing(4, 4)(img), img.reshape(2, 4, 2, 4, 2, 1).mean(axis=(2, 4)), rtol=1e-5, atol=1e-6
    )

    rng = np.random.default_rng(2)
    a = rng.random((160, 8, 8, 1)).astype("float32")
    same = rng.integers(0, 2, 160)
    b = np.where(same[:, None, None, None] == 1, a, rng.random(a.shape).astype("float32"))
    in_a, in_b = keras.Input((8, 8, 1), name="a"), keras.Input((8, 8, 1), name="b")
    small_a, small_b = layers.Resizing(4, 4)(in_a), layers.Resizing(4, 4)(in_b)
    diff = layers.Lambda(lambda t: ops.abs(t))(layers.subtract([small_a, small_b]))
    mean_ab = layers.average([small_a, small_b])
    h = layers.Flatten()(layers.concatenate([diff, mean_ab]))
    h = layers.PReLU()(layers.Dense(16)(h))
    h = layers.ELU()(layers.Dense(8)(h))
    h = layers.LeakyReLU(negative_slope=0.1)(h)
    out = layers.Dense(1, activation="sigmoid")(h)
    model = keras.Model([in_a, in_b], out)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit([a, b], same, batch_size=32, epochs=15, verbose=0)
    assert hist.history["accuracy"][-1] > 0.9
    probe = keras.Model([in_a, in_b], [diff, mean_ab])
    d, m = probe([a[:2], b[:2]])
    small = lambda t: t[:2].reshape(2, 4, 2, 4, 2, 1).mean(axis=(2, 4))  # noqa: E731
    np.testing.assert_allclose(d, np.abs(small(a) - small(b)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m, (small(a) + small(b)) / 2, rtol=1e-5, atol=1e-6)


# -- 2. Ops, activations, losses, metrics, schedules ----------------------------------------------

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "float32")


class SobelStandardize(keras.layers.Layer):
    """A custom layer in keras.ops (keras.io "Making new layers and models via subclassing")."""

    def build(self, input_shape):
        self.kernel = ops.array(SOBEL_X[:, :, None, None])

    def call(self, inputs):
        edges = ops.conv(inputs, self.kernel, strides=1, padding="same")
        mean, variance = ops.moments(edges, axes=[1, 2], keepdims=True)
        return (edges - mean) / ops.sqrt(variance + 1e-3)


def _bars(n=128, seed=0):
    """Label 1 for a vertical bar, 0 for a horizontal one."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 10, 10, 1)).astype("float32") * 0.3
    y = rng.integers(0, 2, n)
    for i in range(n):
        k = rng.integers(1, 9)
        if y[i]:
            x[i, :, k, 0] += 1.0
        else:
            x[i, k, :, 0] += 1.0
    return x, y.astype("float32")


def test_custom_ops_layer_gelu_selu_swish_and_a_binary_crossentropy_metric():
    """keras.ops (conv, moments, array) inside a custom layer; gelu/selu/swish activations;
    compile(metrics=[keras.metrics.BinaryCrossentropy()]) as in keras.io/api/metrics/."""
    keras.utils.set_random_seed(0)
    x, y = _bars()
    edges = _conv_loop(np.pad(x[:4], ((0, 0), (1, 1), (1, 1), (0, 0))), SOBEL_X[:, :, None, None], 0.0)
    mean, var = edges.mean(axis=(1, 2), keepdims=True), edges.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(SobelStandardize()(x[:4]), (edges - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras.activations.gelu(np.float32([1.0])), [0.8413447], rtol=1e-5)
    np.testing.assert_allclose(keras.activations.selu(np.float32([-1.0])), [1.0507010 * 1.6732632 * np.expm1(-1)])
    np.testing.assert_allclose(keras.activations.swish(np.float32([1.0])), [1 / (1 + np.exp(-1.0))], rtol=1e-6)

    inputs = keras.Input((10, 10, 1))
    h = SobelStandardize()(inputs)
    h = layers.Conv2D(4, 3, activation="gelu")(h)
    h = layers.GlobalMaxPooling2D()(h)
    h = layers.Dense(8, activation="selu")(h)
    h = layers.Dense(8, activation="swish")(h)
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(h))
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryCrossentropy(), keras.metrics.BinaryAccuracy()],
    )
    hist = model.fit(x, y, batch_size=32, epochs=10, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    logs = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    assert logs["binary_accuracy"] > 0.9
    np.testing.assert_allclose(logs["binary_crossentropy"], _bce(y[:, None], model.predict(x, verbose=0)), rtol=1e-4)


def test_loss_and_metric_docstring_examples():
    """The docstring examples of https://keras.io/api/losses/probabilistic_losses/#kldivergence-class,
    https://keras.io/api/metrics/probabilistic_metrics/ (BinaryCrossentropy) and
    https://www.tensorflow.org/api_docs/python/tf/keras/metrics/MeanAbsolutePercentageError, by hand."""
    y_true = np.array([[0, 1], [0, 0]], "float32")
    y_pred = np.array([[0.6, 0.4], [0.4, 0.6]], "float32")
    t, p = np.clip(y_true, 1e-7, 1), np.clip(y_pred, 1e-7, 1)
    per_sample = np.sum(t * np.log(t / p), axis=-1)  # [0.916, ~0]
    np.testing.assert_allclose(keras.losses.KLDivergence()(y_true, y_pred), per_sample.mean(), rtol=1e-5)
    np.testing.assert_allclose(keras.losses.KLDivergence(reduction="sum")(y_true, y_pred), per_sample.sum(), rtol=1e-5)
    none = keras.losses.KLDivergence(reduction="none")(y_true, y_pred)
    np.testing.assert_allclose(none, per_sample, rtol=1e-5, atol=1e-6)
    m = keras.metrics.BinaryCrossentropy()
    m.update_state(y_true, y_pred)
    np.testing.assert_allclose(m.result(), _bce(y_true, y_pred), rtol=1e-5)
    np.testing.assert_allclose(m.result(), 0.81492424, rtol=1e-5)
    m = keras.metrics.MeanAbsolutePercentageError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
    np.testing.assert_allclose(m.result(), 100 * 1 / 1e-7 / 4, rtol=1e-5)  # |0 - 1| / eps on one of four entries
    m.reset_state()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]], sample_weight=[1, 0])
    np.testing.assert_allclose(m.result(), 500000000.0, rtol=1e-5)


def test_inverse_time_decay_schedule_drives_sgd_step_by_step():
    """keras.io/api/optimizers/learning_rate_schedules/inverse_time_decay/ : decaying 1/t with a
    rate of 0.5, passed to SGD; the weight after each step is replayed by hand."""
    initial_learning_rate, decay_steps, decay_rate = 0.1, 1.0, 0.5
    learning_rate_fn = keras.optimizers.schedules.InverseTimeDecay(initial_learning_rate, decay_steps, decay_rate)
    np.testing.assert_allclose(float(learning_rate_fn(3)), 0.1 / (1 + 0.5 * 3), rtol=1e-6)
    x = np.linspace(-2, 2, 8, dtype="float32")[:, None]
    y = 3 * x
    inputs = keras.Input((1,))
    model = keras.Model(inputs, layers.Dense(1, use_bias=False, kernel_initializer="zeros")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate_fn), loss="mse")
    model.fit(x, y, batch_size=8, epochs=20, shuffle=False, verbose=0)
    w = 0.0
    for step in range(20):
        w -= initial_learning_rate / (1 + decay_rate * step / decay_steps) * np.mean(2 * (w * x - y) * x)
    np.testing.assert_allclose(model.get_weights()[0][0, 0], w, rtol=1e-4)
    assert abs(w - 3.0) < 0.2 * 3.0  # it learns, ever more slowly


# -- 3. Namespaces: keras.saving, keras.random, keras.initializers --------------------------------

CUSTOM_LAYER_MODULE = """
from convolab import keras


@keras.saving.register_keras_serializable(package="Issue19")
class ScaleShift(keras.layers.Layer):
    def __init__(self, init_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init_scale = init_scale

    def build(self, input_shape):
        init = keras.initializers.Constant(self.init_scale)
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer=init, name="scale")
        self.shift = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="shift")

    def call(self, inputs):
        return inputs * self.scale + self.shift

    def get_config(self):
        return {**super().get_config(), "init_scale": self.init_scale}
"""


def test_registered_custom_layer_round_trips_through_a_keras_file_here_and_in_a_fresh_python(tmp_path, monkeypatch):
    """keras.io/guides/serialization_and_saving/ : @keras.saving.register_keras_serializable(),
    get_config, model.save("x.keras"), keras.saving.load_model, in this process and another."""
    (tmp_path / "issue19_layers.py").write_text(CUSTOM_LAYER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from issue19_layers import ScaleShift

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x @ np.float32([[1.0], [-2.0], [0.5], [3.0]]) + 1.0
    inputs = keras.Input((4,))
    scaled = ScaleShift(2.0, name="scale_shift")(inputs)
    np.testing.assert_allclose(keras.Model(inputs, scaled)(x[:3]), 2.0 * x[:3])  # Constant(2.0), zeros
    model = keras.Model(inputs, layers.Dense(1)(scaled))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    hist = model.fit(x, y, batch_size=16, epochs=40, verbose=0)
    assert hist.history["loss"][-1] < 0.01
    path = str(tmp_path / "custom.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("scale_shift"), ScaleShift) and loaded.get_layer("scale_shift").init_scale == 2
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        from convolab import keras
        import issue19_layers  # registers ScaleShift, as a user's own module does
        m = keras.saving.load_model({path!r})
        print(json.dumps(m.predict(np.ones((2, 4), "float32"), verbose=0).tolist()))
    """)
    src = os.path.dirname(os.path.dirname(convolab.__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(tmp_path)])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    there = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(there, model.predict(np.ones((2, 4), "float32"), verbose=0), rtol=1e-6)


class MyDropout(keras.layers.Layer):
    """keras.io "Making new layers and models via subclassing": RNG state in a SeedGenerator."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs, training=None):
        if training:
            return keras.random.dropout(inputs, rate=self.rate, seed=self.seed_generator)
        return inputs


def test_random_layer_and_initializers():
    """keras.random (SeedGenerator, dropout, normal, uniform) inside a layer; keras.initializers."""
    x = np.ones((200, 50), "float32")
    drop = MyDropout(0.25)
    np.testing.assert_array_equal(drop(x), x)  # inference: identity
    first, second = np.asarray(drop(x, training=True)), np.asarray(drop(x, training=True))
    assert set(np.unique(first)) <= {0.0, np.float32(1 / 0.75)}
    assert abs(np.mean(first == 0) - 0.25) < 0.02
    assert not np.array_equal(first, second)  # the generator's state moves on
    np.testing.assert_array_equal(MyDropout(0.25)(x, training=True), first)  # same seed, same masks
    a = keras.random.normal((4000,), mean=2.0, stddev=0.5, seed=7)
    np.testing.assert_array_equal(a, keras.random.normal((4000,), mean=2.0, stddev=0.5, seed=7))
    assert abs(np.mean(a) - 2.0) < 0.05 and abs(np.std(a) - 0.5) < 0.03
    u = np.asarray(keras.random.uniform((4000,), minval=-1.0, maxval=3.0, seed=3))
    assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 0.1
    g = np.asarray(keras.initializers.GlorotUniform(seed=1)((30, 20)))
    bound = np.sqrt(6 / (30 + 20))
    assert np.abs(g).max() <= bound and np.abs(g).max() > 0.9 * bound
    np.testing.assert_array_equal(keras.initializers.Constant(0.5)((2, 3)), np.full((2, 3), 0.5))
    dense = layers.Dense(3, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=5))
    dense.build((None, 4))
    np.testing.assert_array_equal(dense.kernel.numpy(), keras.initializers.RandomNormal(stddev=0.01, seed=5)((4, 3)))


# -- 4. Variables and configs ----------------------------------------------------------------------


class Linear(keras.layers.Layer):
    """keras.io "Making new layers and models via subclassing": weights made in build()."""

    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", name="b")

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_weights_are_variables_and_transfer_learning_freezes_the_base():
    """keras.io/guides/transfer_learning/ : layer.weights, base_model.trainable = False, a new
    head trained on top; Variables keep their identity through fit."""
    layer = layers.Dense(3, name="d")
    layer.build((None, 4))
    kernel, bias = layer.weights
    assert (kernel.path, bias.path) == ("d/kernel", "d/bias") and kernel.name == "kernel"
    kernel.assign(np.ones((4, 3), "float32"))
    bias.assign(np.float32([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(layer(np.float32([[1, 2, 3, 4]])), [[10.0, 11.0, 12.0]])
    layer.trainable = False
    assert len(layer.weights) == 2 and len(layer.trainable_weights) == 0
    keras.utils.set_random_seed(0)
    # the guide's base is pretrained (Xception); a random conv base extracts usable features here
    base_model = keras.Sequential(
        [keras.Input((12, 12, 1)), layers.Conv2D(8, 3, activation="relu"), layers.BatchNormalization()]
    )
    base_model.trainable = False
    inputs = keras.Input(shape=(12, 12, 1))
    x = base_model(inputs, training=False)
    outputs = layers.Dense(1)(layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 6
    frozen = [w.numpy().copy() for w in base_model.weights]
    ids = [id(w) for w in model.weights]
    model.compile(keras.optimizers.Adam(0.01), keras.losses.BinaryCrossentropy(from_logits=True), ["binary_accuracy"])
    hist = model.fit(*_squares(128), batch_size=32, epochs=8, verbose=0)
    assert hist.history["binary_accuracy"][-1] > 0.85
    assert [id(w) for w in model.weights] == ids
    for before, w in zip(frozen, base_model.weights):
        np.testing.assert_array_equal(w.numpy(), before)  # moving statistics too (training=False)
    np.testing.assert_array_equal(model.layers[-1].kernel.numpy(), model.layers[-1].get_weights()[0])


def test_get_config_from_config_clone_model_and_json():
    """keras.io/guides/serialization_and_saving/ : get_config/from_config with custom_objects,
    keras.models.clone_model, to_json and keras.models.model_from_json."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="features")
    h = Linear(4, name="linear")(inputs)
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(h), name="small")
    x = np.random.default_rng(0).random((5, 6)).astype("float32")
    expected = model.predict(x, verbose=0)
    config = model.get_config()
    rebuilt = keras.Model.from_config(config, custom_objects={"Linear": Linear})
    assert [type(layer).__name__ for layer in rebuilt.layers] == ["InputLayer", "Linear", "Dense"]
    assert rebuilt.get_layer("linear").units == 4
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), expected, rtol=1e-6)
    clone = keras.models.clone_model(model)
    assert clone.count_params() == model.count_params() == 6 * 4 + 4 + 4 * 2 + 2
    assert not np.allclose(clone.get_weights()[0], model.get_weights()[0])  # fresh weights
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), expected, rtol=1e-6)
    json_string = model.to_json()
    assert json.loads(json_string)["class_name"] in ("Functional", "Model")
    from_json = keras.models.model_from_json(json_string, custom_objects={"Linear": Linear})
    from_json.set_weights(model.get_weights())
    np.testing.assert_allclose(from_json.predict(x, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, rtol=1e-6)


# -- 5. Custom training ----------------------------------------------------------------------------


class CustomModel(keras.Model):
    """keras.io/guides/customizing_what_happens_in_fit/ (Keras 3): train_step and test_step."""

    def train_step(self, data):
        x, y = data
        with keras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply(gradients, trainable_vars)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_custom_train_step_and_test_step_on_a_convnet():
    keras.utils.set_random_seed(0)
    x, y = _squares(128)
    inputs = keras.Input(shape=(12, 12, 1))
    h = layers.Conv2D(8, 3, activation="relu")(inputs)
    h = layers.MaxPooling2D(2)(h)
    outputs = layers.Dense(2)(layers.Flatten()(h))
    model = CustomModel(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=LOGITS_CE, metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    x_test, y_test = _squares(64, seed=1)
    logs = model.evaluate(x_test, y_test, batch_size=64, verbose=0, return_dict=True)
    assert logs["accuracy"] > 0.85
    logits = model.predict(x_test, verbose=0).astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(logs["loss"], -np.mean(log_softmax[np.arange(64), y_test]), rtol=1e-4)
    np.testing.assert_allclose(logs["accuracy"], np.mean(logits.argmax(1) == y_test))


class MyModel(keras.Model):
    """The Model.compute_loss docstring (keras.io/api/models/model_training_apis/): compute_loss
    overridden, its own loss tracker, ops.sum(self.losses) added."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def compute_loss(self, x, y, y_pred, sample_weight, training=True):
        loss = ops.mean(ops.abs(y_pred - y))  # L1 instead of the docstring's squares
        loss += ops.sum(self.losses)
        self.loss_tracker.update_state(loss)
        return loss

    def reset_metrics(self):
        self.loss_tracker.reset_state()

    @property
    def metrics(self):
        return [self.loss_tracker]


def test_compute_loss_override_with_its_own_tracker_and_a_regularizer():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 10)).astype("float32")
    y = x[:, :1] - 2 * x[:, 1:2]
    inputs = layers.Input(shape=(10,), name="my_input")
    outputs = layers.Dense(1, kernel_regularizer=keras.regularizers.L2(0.01))(inputs)
    model = MyModel(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), loss="mse")

    def by_hand():
        w, b = model.get_weights()
        return np.mean(np.abs(x @ w + b - y)) + 0.01 * np.sum(w.astype(np.float64) ** 2)

    before = by_hand()
    hist = model.fit(x, y, batch_size=16, epochs=30, verbose=0)
    assert by_hand() < 0.2 * before
    np.testing.assert_allclose(hist.history["loss"][-1], model.loss_tracker.result(), rtol=1e-6)  # last epoch's
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=64, verbose=0), by_hand(), rtol=1e-4)
    np.testing.assert_allclose(model.loss_tracker.result(), by_hand(), rtol=1e-4)


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z (keras.io "Making new layers ...", the VAE)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class VariationalAutoEncoder(keras.Model):
    """The guide's VAE, its encoder and decoder inlined; the KL term through self.add_loss."""

    def __init__(self, original_dim, intermediate_dim=16, latent_dim=2, **kwargs):
        super().__init__(**kwargs)
        self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
        self.dense_mean = layers.Dense(latent_dim)
        self.dense_log_var = layers.Dense(latent_dim)
        self.sampling = Sampling()
        self.decoder_proj = layers.Dense(intermediate_dim, activation="relu")
        self.dense_output = layers.Dense(original_dim, activation="sigmoid")

    def encode(self, inputs):
        h = self.dense_proj(inputs)
        return self.dense_mean(h), self.dense_log_var(h)

    def call(self, inputs):
        z_mean, z_log_var = self.encode(inputs)
        reconstructed = self.dense_output(self.decoder_proj(self.sampling((z_mean, z_log_var))))
        kl_loss = -0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1)
        self.add_loss(kl_loss)
        self.add_loss(ops.mean(ops.square(inputs - reconstructed)))  # compiled without a loss
        return reconstructed


def test_vae_compiled_without_a_loss_trains_on_its_add_loss_terms():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, (256, 2)).astype("float32")
    x_train = np.clip(np.repeat(codes, 8, axis=1) * 0.8 + rng.normal(0, 0.05, (256, 16)), 0, 1).astype("float32")
    vae = VariationalAutoEncoder(16, 16, 2)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
    hist = vae.fit(x_train, x_train, epochs=10, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < 0.6 * hist.history["loss"][0]
    z_mean, z_log_var = [np.asarray(t, np.float64) for t in vae.encode(x_train[:8])]
    vae(x_train[:8])
    kl = -0.5 * np.mean(z_log_var - z_mean**2 - np.exp(z_log_var) + 1)
    assert len(vae.losses) == 2
    np.testing.assert_allclose(float(vae.losses[0]), kl, rtol=1e-4)


# -- 6. Sequential as a layer graph ----------------------------------------------------------------


def test_sequential_feature_extraction_nested_sequential_and_a_user_layer():
    """https://keras.io/guides/sequential_model/ : feature extraction with a Sequential model,
    a nested Sequential as first layer, and a user layer with its own build() in a Sequential."""
    initial_model = keras.Sequential(
        [
            keras.Input(shape=(25, 25, 3)),
            layers.Conv2D(4, 5, strides=2, activation="relu"),
            layers.Conv2D(4, 3, activation="relu"),
            layers.Conv2D(4, 3, activation="relu"),
        ]
    )
    feature_extractor = keras.Model(
        inputs=initial_model.inputs,
        outputs=[layer.output for layer in initial_model.layers],
    )
    x = ops.ones((1, 25, 25, 3))
    features = feature_extractor(x)
    assert [tuple(f.shape) for f in features] == [(1, 11, 11, 4), (1, 9, 9, 4), (1, 7, 7, 4)]  # (25-5)//2+1
    k, b = initial_model.layers[0].get_weights()
    np.testing.assert_allclose(features[0][0, 0, 0], np.maximum(k.sum(axis=(0, 1, 2)) + b, 0), rtol=1e-5)
    np.testing.assert_allclose(features[2], initial_model(x), rtol=1e-6)
    keras.utils.set_random_seed(0)
    feature = keras.Sequential(
        [keras.Input((12, 12, 1)), layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(2)]
    )
    model = keras.Sequential([feature, layers.Flatten(), Linear(2)])
    assert model.count_params() == (3 * 3 * 1 * 4 + 4) + (5 * 5 * 4 * 2 + 2)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=LOGITS_CE, metrics=["accuracy"])
    x_train, y_train = _squares(128)
    model.fit(x_train, y_train, batch_size=32, epochs=8, verbose=0)
    x_test, y_test = _squares(64, seed=1)
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.85
    w, b = model.layers[-1].get_weights()
    by_hand = np.asarray(feature(x_test)).reshape(64, -1) @ w + b
    np.testing.assert_allclose(model.predict(x_test, verbose=0), by_hand, rtol=1e-4, atol=1e-5)


# -- 7. Keras files --------------------------------------------------------------------------------


def create_model():
    """https://www.tensorflow.org/tutorials/keras/save_and_load : a short Sequential model."""
    model = keras.Sequential(
        [keras.Input(shape=(64,)), layers.Dense(32, activation="relu"), layers.Dropout(0.2), layers.Dense(10)]
    )
    model.compile(optimizer="adam", loss=LOGITS_CE, metrics=[keras.metrics.SparseCategoricalAccuracy()])
    return model


def test_checkpoint_weights_then_load_weights_h5_and_keras_files(tmp_path):
    """The TF "Save and load models" tutorial: ModelCheckpoint("cp.weights.h5", save_weights_only=True),
    a fresh model restored with load_weights, model.save("my_model.h5") and "my_model.keras"."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1, (10, 64))
    train_labels = rng.integers(0, 10, 300)
    train_images = (centers[train_labels] + rng.normal(0, 0.5, (300, 64))).astype("float32")
    checkpoint_path = str(tmp_path / "training_1" / "cp.weights.h5")
    os.makedirs(os.path.dirname(checkpoint_path))
    cp_callback = keras.callbacks.ModelCheckpoint(filepath=checkpoint_path, save_weights_only=True, verbose=0)
    model = create_model()
    model.fit(train_images, train_labels, epochs=5, batch_size=32, callbacks=[cp_callback], verbose=0)
    assert os.path.exists(checkpoint_path)
    _, trained_acc = model.evaluate(train_images, train_labels, verbose=0)
    assert trained_acc > 0.9
    fresh = create_model()
    _, untrained_acc = fresh.evaluate(train_images, train_labels, verbose=0)
    assert untrained_acc < 0.5
    fresh.load_weights(checkpoint_path)
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the checkpoint after the last epoch
    np.testing.assert_allclose(fresh.evaluate(train_images, train_labels, verbose=0)[1], trained_acc)
    for name in ("my_model.h5", "my_model.keras"):
        model.save(str(tmp_path / name))
        new_model = keras.models.load_model(str(tmp_path / name))
        for a, b in zip(new_model.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(
            new_model.predict(train_images, verbose=0), model.predict(train_images, verbose=0)
        )
        new_model.fit(train_images[:32], train_labels[:32], epochs=1, verbose=0)  # compiled again


# -- 8. Inputs -------------------------------------------------------------------------------------


def test_inputs_as_people_feed_them():
    """(N, 28, 28) arrays to Input((28, 28, 1)) (keras.io/examples/vision/mnist_convnet/ without
    its expand_dims), several inputs as a dict keyed by input name (keras.io/guides/functional_api/),
    and RandomFlip called directly (keras.io/examples/vision/image_classification_from_scratch/)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(shape=(28, 28, 1)), layers.Conv2D(4, 3, activation="relu"), layers.Flatten(), layers.Dense(3)]
    )
    images = np.random.default_rng(0).random((6, 28, 28)).astype("float32")
    np.testing.assert_allclose(model.predict(images, verbose=0), model.predict(images[..., None], verbose=0), rtol=1e-6)
    labels = np.arange(6) % 3
    trained = []
    for batch in (images, images[..., None]):  # fit too: one step each from the same weights
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        clone.compile(optimizer="sgd", loss=LOGITS_CE)
        clone.fit(batch, labels, batch_size=6, epochs=1, verbose=0)
        trained.append(clone.get_weights())
    for a, b in zip(*trained):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not np.allclose(trained[0][0], model.get_weights()[0])
    a_in, b_in = keras.Input((3,), name="title"), keras.Input((2,), name="tags")
    out = layers.Dense(1, kernel_initializer="ones", name="priority")(layers.concatenate([a_in, b_in]))
    two = keras.Model(inputs=[a_in, b_in], outputs=out)
    title, tags = np.float32([[1, 2, 3]]), np.float32([[10, 20]])
    np.testing.assert_allclose(two.predict({"tags": tags, "title": title}, verbose=0), [[36.0]])
    two.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    rng = np.random.default_rng(1)
    ta, tb = rng.normal(size=(64, 3)).astype("float32"), rng.normal(size=(64, 2)).astype("float32")
    target = ta @ np.float32([[1], [0], [-1]]) + 2 * tb[:, :1]
    hist = two.fit({"title": ta, "tags": tb}, {"priority": target}, epochs=30, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < 0.05 * hist.history["loss"][0]
    flip = layers.RandomFlip("horizontal", seed=3)
    batch = np.random.default_rng(2).random((64, 5, 5, 1)).astype("float32")
    flipped = np.asarray(flip(batch))  # called directly, Keras 3 augments (training defaults to True)
    mirrored, kept = [
        np.array([np.array_equal(f, t(b)) for f, b in zip(flipped, batch)]) for t in (np.fliplr, np.asarray)
    ]
    assert np.all(mirrored | kept) and 10 < mirrored.sum() < 54
    augmented = keras.Sequential([keras.Input((5, 5, 1)), flip])
    np.testing.assert_array_equal(augmented.predict(batch, verbose=0), batch)  # inference: identity


def test_fit_goes_on_through_a_nan_loss_and_terminate_on_nan_stops_it():
    """Keras's fit keeps going when a batch's loss is NaN; keras.callbacks.TerminateOnNaN
    (keras.io/api/callbacks/terminate_on_nan/) stops training at that batch."""
    x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    y = 2 * x
    y_bad = np.where(np.arange(64)[:, None] == 40, np.nan, y)  # in the third batch of 16

    def make():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((1,)), layers.Dense(1)])
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return m

    model = make()
    w, b = [float(v.ravel()[0]) for v in model.get_weights()]
    with pytest.warns(RuntimeWarning, match="loss became nan"):
        hist = model.fit(x, y_bad, batch_size=16, epochs=5, shuffle=False, verbose=0)
    assert len(hist.history["loss"]) == 5
    start_loss = np.mean((w * x + b - y) ** 2)
    for _ in range(5):  # SGD by hand; the NaN batch's update is skipped, as convolab's warning says
        for i in (0, 16, 48):
            r = w * x[i : i + 16] + b - y[i : i + 16]
            w, b = w - 0.1 * np.mean(2 * r * x[i : i + 16]), b - 0.1 * np.mean(2 * r)
    np.testing.assert_allclose(model.get_weights()[0][0, 0], w, rtol=1e-4)
    np.testing.assert_allclose(model.get_weights()[1][0], b, rtol=1e-4, atol=1e-6)
    assert model.evaluate(x, y, verbose=0) < 0.2 * start_loss  # the other batches still taught it
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hist = model.fit(
            x, y_bad, batch_size=16, epochs=5, shuffle=False, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()]
        )
    assert len(hist.history["loss"]) == 1 and model.stop_training


# -- 9. Grouped convolution: ConvMixer -------------------------------------------------------------


def activation_block(x):
    x = layers.Activation("gelu")(x)
    return layers.BatchNormalization()(x)


def conv_stem(x, filters, patch_size):
    x = layers.Conv2D(filters, kernel_size=patch_size, strides=patch_size)(x)
    return activation_block(x)


def conv_mixer_block(x, filters, kernel_size, groups=None):
    x0 = x
    if groups is None:
        x = layers.DepthwiseConv2D(kernel_size=kernel_size, padding="same")(x)
    else:  # the paper's PyTorch form: a grouped Conv2D
        x = layers.Conv2D(filters, kernel_size, groups=groups, padding="same")(x)
    x = layers.Add()([activation_block(x), x0])  # Residual.
    x = layers.Conv2D(filters, kernel_size=1)(x)
    return activation_block(x)


def test_convmixer_trains_and_a_grouped_conv_matches_a_loop_over_groups():
    """https://keras.io/examples/vision/convmixer/ : conv stem, depthwise and grouped mixer blocks
    (GELU, BatchNormalization, residual Add), GlobalAvgPool2D and softmax, a few steps of AdamW."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 1))
    x = conv_stem(layers.Rescaling(scale=1.0 / 1.0)(inputs), 8, 2)
    x = conv_mixer_block(x, 8, 3)
    x = conv_mixer_block(x, 8, 3, groups=4)
    x = layers.GlobalAvgPool2D()(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.AdamW(learning_rate=0.01, weight_decay=1e-4)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(*_squares(128), batch_size=32, epochs=10, verbose=0)
    assert hist.history["loss"][-1] < 0.7 * hist.history["loss"][0]
    assert hist.history["accuracy"][-1] > 0.75
    grouped = next(layer for layer in model.layers if getattr(layer, "groups", 1) == 4)
    w, b = grouped.get_weights()
    assert w.shape == (3, 3, 2, 8)  # in/groups channels per kernel
    probe = np.random.default_rng(5).normal(size=(2, 6, 6, 8)).astype("float32")
    padded = np.pad(probe, ((0, 0), (1, 1), (1, 1), (0, 0)))
    np.testing.assert_allclose(grouped(probe), _conv_loop(padded, w, b, groups=4), rtol=1e-4, atol=1e-5)
    depthwise = next(layer for layer in model.layers if isinstance(layer, layers.DepthwiseConv2D))
    dk, db = depthwise.get_weights()
    np.testing.assert_allclose(
        depthwise(probe), _conv_loop(padded, dk.reshape(3, 3, 1, 8), db, groups=8), rtol=1e-4, atol=1e-5
    )
