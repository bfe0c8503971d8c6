"""``keras.Model(inputs={...}, outputs={...})`` as a Keras 3 user writes it: dict inputs keyed by input
name, dict outputs (predict and ``model(x)`` return dicts; losses, targets and logs keyed by output
name), lists where Keras takes them, and the config round trip (files refuse with a clear error)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from convolab import keras

L = keras.layers


def _model(order=("image", "meta")):
    image = keras.Input((4, 4, 1), name="image")
    meta = keras.Input((3,), name="meta")
    h = L.Concatenate()([L.Flatten()(image), meta])
    h = L.Dense(8, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed=1))(h)
    digit = L.Dense(3, activation="softmax", name="digit", kernel_initializer=keras.initializers.GlorotUniform(seed=2))(
        h
    )
    score = L.Dense(1, name="score", kernel_initializer=keras.initializers.GlorotUniform(seed=3))(h)
    inputs = {"image": image, "meta": meta}
    return keras.Model(inputs={k: inputs[k] for k in order}, outputs={"score": score, "digit": digit})


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = {"image": rng.random((n, 4, 4, 1)).astype("float32"), "meta": rng.random((n, 3)).astype("float32")}
    y = {"digit": rng.integers(0, 3, n), "score": rng.random((n, 1)).astype("float32")}
    return x, y


def test_dict_io_model_structure_follows_keras():
    model = _model()
    # Keras flattens a dict by sorted key: model.inputs/outputs and output_names in that order
    assert [t.name for t in model.inputs] == ["image", "meta"]
    assert model.output_names == ["digit", "score"]
    assert isinstance(model.input, dict) and list(model.input) == ["image", "meta"]
    assert isinstance(model.output, dict) and set(model.output) == {"digit", "score"}


def test_fit_evaluate_predict_with_dicts_keyed_by_name():
    model = _model()
    model.compile(
        optimizer="adam",
        loss={"digit": "sparse_categorical_crossentropy", "score": "mse"},
        loss_weights={"digit": 1.0, "score": 0.5},
        metrics={"digit": ["accuracy"]},
    )
    x, y = _data()
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0, validation_data=(x, y))
    assert {"loss", "digit_loss", "score_loss", "digit_accuracy", "val_loss"} <= set(history.history)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["digit_loss"] + 0.5 * logs["score_loss"], rel=1e-5)
    pred = model.predict(x, verbose=0, batch_size=5)
    assert isinstance(pred, dict) and set(pred) == {"digit", "score"}
    assert pred["digit"].shape == (12, 3) and pred["score"].shape == (12, 1)
    np.testing.assert_allclose(pred["digit"].sum(axis=1), 1.0, rtol=1e-5)
    # the direct call agrees with predict, and returns the dict too
    out = model(x)
    assert isinstance(out, dict)
    np.testing.assert_allclose(out["score"], pred["score"], rtol=1e-5, atol=1e-6)
    # a list of arrays in model.inputs order, and targets as a list in output_names order
    pred_list = model.predict([x["image"], x["meta"]], verbose=0)
    np.testing.assert_allclose(pred_list["digit"], pred["digit"], rtol=1e-6)
    model.fit([x["image"], x["meta"]], [y["digit"], y["score"]], epochs=1, verbose=0)


def test_keys_not_matching_the_data_are_a_clear_error():
    model = _model()
    x, _ = _data()
    with pytest.raises(ValueError, match=r"keys must name the model's inputs \['image', 'meta'\].*missing \['meta'\]"):
        model.predict({"image": x["image"]}, verbose=0)
    with pytest.raises(ValueError, match="missing"):
        model({"image": x["image"], "metadata": x["meta"]})


def test_a_list_is_refused_when_the_dict_keys_were_not_sorted_as_keras_refuses_it():
    model = _model(order=("meta", "image"))
    x, _ = _data()
    assert [t.name for t in model.inputs] == ["image", "meta"]
    out = model.predict(x, verbose=0)  # a dict is always fine
    with pytest.raises(ValueError, match=r"not given in sorted order.*pass `x` as a dict keyed by \['image', 'meta'\]"):
        model.predict([x["image"], x["meta"]], verbose=0)
    with pytest.raises(ValueError, match="not given in sorted order"):
        model([x["image"], x["meta"]])
    assert set(out) == {"digit", "score"}


def test_a_dict_key_that_is_not_the_input_name_warns_as_keras_does():
    a = keras.Input((2,), name="left")
    with pytest.warns(UserWarning, match="maps the key 'a' to the input named 'left'"):
        model = keras.Model(inputs={"a": a}, outputs=L.Dense(1)(a))
    # data is matched by key, as Keras matches it
    assert model.predict({"a": np.ones((2, 2))}, verbose=0).shape == (2, 1)


def test_one_dict_output_and_one_dict_input():
    a = keras.Input((2,), name="a")
    model = keras.Model(inputs={"a": a}, outputs={"y": L.Dense(1, name="y")(a)})
    model.compile("sgd", loss={"y": "mse"}, metrics={"y": ["mae"]})
    x = {"a": np.ones((4, 2), dtype="float32")}
    model.fit(x, {"y": np.ones((4, 1))}, epochs=1, verbose=0)
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0)  # one input, one output: bare arrays
    pred = model.predict(x, verbose=0)
    assert isinstance(pred, dict) and list(pred) == ["y"] and pred["y"].shape == (4, 1)
    assert isinstance(model(x), dict)


def test_list_outputs_of_one_behave_as_keras_unpacks_them():
    a = keras.Input((2,), name="a")
    model = keras.Model(a, [L.Dense(1)(a)])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0)
    assert model.predict(np.ones((3, 2)), verbose=0).shape == (3, 1)
    assert model(np.ones((3, 2))).shape == (3, 1)


@pytest.mark.filterwarnings("ignore:.*gradients do not exist for digit")
def test_custom_compute_loss_sees_the_dict():
    seen = {}

    class DictModel(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            seen["y_pred"] = type(y_pred)
            return keras.ops.mean(keras.ops.square(y_pred["score"] - y["score"]))

    x, y = _data()
    base = _model()
    model = DictModel(inputs=base.input, outputs=base.output)
    model.compile("adam", loss=None)
    model.fit(x, {"score": y["score"]}, epochs=1, batch_size=6, verbose=0)
    assert seen["y_pred"] is dict


def test_custom_train_step_sees_the_dict_and_the_compiled_loss_takes_it():
    seen = {}

    class StepModel(keras.Model):
        def train_step(self, data):
            x, y = data
            with keras.GradientTape() as tape:
                y_pred = self(x, training=True)
                seen["y_pred"] = sorted(y_pred)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss}

    base = _model()
    model = StepModel(inputs=base.input, outputs=base.output)
    model.compile("adam", loss={"digit": "sparse_categorical_crossentropy", "score": "mse"})
    x, y = _data()
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=1, batch_size=6, verbose=0)
    assert seen["y_pred"] == ["digit", "score"] and np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_config_and_json_round_trip_keep_the_dicts():
    model = _model(order=("meta", "image"))
    cfg = model.get_config()
    assert set(cfg["input_layers"]) == {"image", "meta"} and set(cfg["output_layers"]) == {"digit", "score"}
    x, _ = _data(n=5)
    want = model.predict(x, verbose=0)
    for again in (keras.Model.from_config(cfg), keras.models.model_from_json(model.to_json())):
        assert list(again.input) == ["meta", "image"]  # the order given, as Keras keeps it
        assert isinstance(again.output, dict) and again.output_names == ["digit", "score"]
        again.set_weights(model.get_weights())
        got = again.predict(x, verbose=0)
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6)


def test_clone_model_keeps_the_dicts():
    model = _model(order=("meta", "image"))
    clone = keras.models.clone_model(model)
    assert list(clone.input) == ["meta", "image"] and isinstance(clone.output, dict)
    clone.set_weights(model.get_weights())
    x, _ = _data(n=3)
    np.testing.assert_allclose(clone.predict(x, verbose=0)["digit"], model.predict(x, verbose=0)["digit"], rtol=1e-6)


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m.convolab"])
def test_saving_to_a_file_refuses_clearly_and_writes_nothing(tmp_path, name):
    model = _model()
    with pytest.raises(ValueError, match=r"inputs and outputs given as a dict.*cannot hold yet.*get_config"):
        model.save(tmp_path / name)
    assert not (tmp_path / name).exists()
    # the weights alone do travel
    model.save_weights(tmp_path / "w.weights.h5")
    other = _model()
    other.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_nesting_a_dict_model_in_another_is_refused_clearly():
    model = _model()
    image, meta = keras.Input((4, 4, 1), name="i2"), keras.Input((3,), name="m2")
    with pytest.raises(ValueError, match="given as a dict: calling it on symbolic tensors"):
        model({"image": image, "meta": meta})


def test_bad_dicts_are_refused_at_construction():
    a = keras.Input((2,), name="a")
    y = L.Dense(1)(a)
    with pytest.raises(ValueError, match="empty dict"):
        keras.Model(inputs={}, outputs=y)
    with pytest.raises(TypeError, match="keys of the `inputs` dict must be strings"):
        keras.Model(inputs={1: a}, outputs=y)
    with pytest.raises(ValueError, match="nested lists or dicts inside it are not supported"):
        keras.Model(inputs={"a": [a]}, outputs=y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras.Model(inputs={"a": a}, outputs={"y": y})  # keys matching the names: no warning
