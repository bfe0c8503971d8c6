"""Inputs as Keras 3 takes them (issue 19, item 8).

- ``(N, 28, 28)`` into ``Input((28, 28, 1))``: Keras 3's ``Functional._adjust_input_rank`` adds
  (or drops) one trailing axis of 1; other shapes still raise, naming the layer and the shapes.
- Dicts keyed by input name for ``x``, and by output name for ``y``, in fit/evaluate/predict.
- Augmentation layers called directly augment (Keras 3's ``call(data, training=True)``); in
  ``predict``/``evaluate`` they do not, even inside a ``call`` that does not pass ``training`` on.
- ``fit`` goes on through a NaN loss with a warning; ``keras.callbacks.TerminateOnNaN`` stops it.
"""

import warnings

import numpy as np
import pytest

from convolab import keras
from convolab.keras import layers


def _digits(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8)).astype("float32"), rng.integers(0, 3, n)


# -- a missing channel axis -----------------------------------------------------------------------


def _functional():
    inputs = keras.Input(shape=(8, 8, 1))
    x = layers.Conv2D(2, 3, activation="relu")(inputs)
    return keras.Model(inputs, layers.Dense(3)(layers.Flatten()(x)))


def _sequential():
    return keras.Sequential(
        [keras.Input(shape=(8, 8, 1)), layers.Conv2D(2, 3, activation="relu"), layers.Flatten(), layers.Dense(3)]
    )


@pytest.mark.parametrize("make", [_functional, _sequential])
def test_missing_channel_axis_is_added_in_fit_evaluate_predict(make):
    x, y = _digits()
    keras.utils.set_random_seed(0)
    a = make()
    keras.utils.set_random_seed(0)
    b = make()
    for m in (a, b):
        m.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ha = a.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)  # (16, 8, 8)
    hb = b.fit(x[..., None], y, epochs=2, batch_size=8, shuffle=False, verbose=0)  # (16, 8, 8, 1)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x[..., None], verbose=0), rtol=1e-6)
    np.testing.assert_allclose(a.evaluate(x, y, verbose=0), b.evaluate(x[..., None], y, verbose=0), rtol=1e-6)


def test_extra_trailing_axis_of_one_is_dropped():
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, layers.Dense(2)(inputs))
    x = np.random.default_rng(1).random((5, 4)).astype("float32")
    np.testing.assert_array_equal(model.predict(x[..., None], verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("make", [_functional, _sequential])
def test_shapes_keras_rejects_still_raise_clearly(make):
    model = make()
    model.compile(loss="mse")
    with pytest.raises(ValueError, match=r"\(None, 8, 8, 1\).*\(4, 8, 8, 3\)"):
        model.predict(np.zeros((4, 8, 8, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"\(None, 8, 8, 1\).*\(4, 8, 9\)"):
        model.predict(np.zeros((4, 8, 9), "float32"), verbose=0)  # one axis short, but 8x9 is no 8x8


# -- dicts keyed by input and output names ---------------------------------------------------------


def _two_in_two_out():
    image = keras.Input(shape=(6,), name="image")
    meta = keras.Input(shape=(2,), name="meta")
    h = layers.Dense(4, activation="relu")(layers.Concatenate()([image, meta]))
    return keras.Model([image, meta], [layers.Dense(3, name="digit")(h), layers.Dense(1, name="score")(h)])


def test_dict_inputs_and_targets_by_name_match_lists():
    rng = np.random.default_rng(2)
    image, meta = rng.random((12, 6)).astype("float32"), rng.random((12, 2)).astype("float32")
    digit, score = rng.integers(0, 3, 12), rng.random((12, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    a = _two_in_two_out()
    keras.utils.set_random_seed(0)
    b = _two_in_two_out()
    for m in (a, b):
        m.compile(
            optimizer="sgd",
            loss={"digit": keras.losses.SparseCategoricalCrossentropy(from_logits=True), "score": "mse"},
        )
    ha = a.fit(
        {"meta": meta, "image": image},
        {"score": score, "digit": digit},
        batch_size=4,
        shuffle=False,
        epochs=2,
        verbose=0,
    )
    hb = b.fit([image, meta], [digit, score], batch_size=4, shuffle=False, epochs=2, verbose=0)
    for key in ("loss", "digit_loss", "score_loss"):
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-6)
    np.testing.assert_allclose(
        a.evaluate({"image": image, "meta": meta}, {"digit": digit, "score": score}, verbose=0),
        b.evaluate([image, meta], [digit, score], verbose=0),
        rtol=1e-6,
    )
    for pa, pb in zip(a.predict({"image": image, "meta": meta}, verbose=0), b.predict([image, meta], verbose=0)):
        np.testing.assert_allclose(pa, pb, rtol=1e-6)


def test_dict_with_a_missing_input_names_the_inputs():
    model = _two_in_two_out()
    with pytest.raises(ValueError, match=r"keys must name the model's inputs \['image', 'meta'\].*missing \['meta'\]"):
        model.predict({"image": np.zeros((2, 6), "float32"), "img2": np.zeros((2, 2))}, verbose=0)


def test_single_output_dict_target_and_single_input_dict():
    inputs = keras.Input(shape=(3,), name="features")
    model = keras.Model(inputs, layers.Dense(1, name="price")(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.random.default_rng(3).random((8, 3)).astype("float32"), np.ones((8, 1), "float32")
    assert np.isclose(model.evaluate({"features": x}, {"price": y}, verbose=0), model.evaluate(x, y, verbose=0))
    with pytest.raises(ValueError, match=r"keys must name the model's outputs \['price'\]; got keys \['cost'\]"):
        model.evaluate(x, {"cost": y}, verbose=0)


def test_subclassed_model_receives_the_dict():
    class TwoTowers(keras.Model):
        def __init__(self):
            super().__init__()
            self.a, self.b = layers.Dense(1), layers.Dense(1)

        def call(self, inputs):
            return self.a(inputs["left"]) + self.b(inputs["right"])

    model = TwoTowers()
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(4)
    x = {"left": rng.random((8, 2)).astype("float32"), "right": rng.random((8, 3)).astype("float32")}
    hist = model.fit(x, np.zeros((8, 1), "float32"), batch_size=4, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    wa, ba, wb, bb = model.get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0), x["left"] @ wa + ba + x["right"] @ wb + bb, rtol=1e-5)


# -- augmentation called directly ----------------------------------------------------------------


def _ramp(n=16):
    return np.tile(np.arange(4.0).reshape(1, 1, 4, 1), (n, 4, 1, 1))


def test_augmentation_layer_called_directly_augments_as_keras3():
    x = _ramp()
    flipped = layers.RandomFlip("horizontal", seed=0)(x)  # no `training`: Keras 3's default is True
    rows = flipped[:, 0, :, 0]
    assert any((r == [3, 2, 1, 0]).all() for r in rows) and any((r == [0, 1, 2, 3]).all() for r in rows)
    assert layers.RandomFlip("horizontal", seed=0)(x, training=False) is x
    # the tutorial's plot loop: data_augmentation(images) on a Sequential of them augments too
    aug = keras.Sequential([layers.RandomFlip("horizontal", seed=1)])
    assert not np.array_equal(aug(x, training=True), x)


def test_augmentation_in_a_call_without_training_is_off_in_predict_and_on_in_fit():
    seen = []

    class Probe(layers.Layer):
        def call(self, x):
            seen.append(np.asarray(x)[:, 0, :, 0].copy())
            return x

    class Classifier(keras.Model):  # its call() does not pass `training` on to the augmentation
        def __init__(self):
            super().__init__()
            self.flip = layers.RandomFlip("horizontal", seed=2)
            self.probe = Probe()
            self.head = layers.Dense(2)

        def call(self, x):
            return self.head(layers.Flatten()(self.probe(self.flip(x))))

    model = Classifier()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = _ramp().astype("float32")
    model.predict(x, batch_size=16, verbose=0)
    model.evaluate(x, np.zeros(16, int), batch_size=16, verbose=0)
    inference = list(seen)
    assert all((rows == [0, 1, 2, 3]).all() for rows in inference)
    seen.clear()
    model.fit(x, np.zeros(16, int), batch_size=16, epochs=1, verbose=0)
    assert any((r == [3, 2, 1, 0]).all() for rows in seen for r in rows)


# -- NaN losses ----------------------------------------------------------------------------------


def _nan_data():
    x, y = _digits(32)
    x = x[..., None]
    x[9] = np.nan  # batch 2 of 4
    return x, y


def test_fit_goes_on_through_a_nan_loss_with_one_warning():
    model = _sequential()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _nan_data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    nan_warnings = [w for w in caught if "the loss became nan" in str(w.message)]
    assert len(nan_warnings) == 1 and "epoch 1, batch 2" in str(nan_warnings[0].message)
    assert "TerminateOnNaN" in str(nan_warnings[0].message)
    assert len(hist.history["loss"]) == 3  # as Keras: every epoch ran
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_terminate_on_nan_stops_at_that_batch(capsys):
    model = _sequential()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _nan_data()
    batches = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hist = model.fit(
            x, y, epochs=3, batch_size=8, shuffle=False, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN(), cb]
        )
    assert len(hist.history["loss"]) == 1 and batches == [0, 1]
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out
