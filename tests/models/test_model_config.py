"""Model configs as Keras 3 has them (issue 19 item 4): ``get_config``/``from_config`` of
Sequential and functional models with ``custom_objects``, ``keras.models.clone_model``
(``clone_function``, ``call_function``), ``model.to_json()`` / ``keras.models.model_from_json``,
and layer configs holding tuples where Keras's do. Written as Keras programs are.
"""

import json

import numpy as np
import pytest

from convolab import keras
from convolab.keras import layers

RNG = np.random.default_rng(0)


def functional_model():
    inputs = keras.Input(shape=(8, 8, 1), name="image")
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    y = layers.Conv2D(4, (3, 3), padding="same")(x)
    x = layers.Add()([x, y])  # a branch merges
    x = layers.MaxPooling2D()(x)
    x = layers.Dense(6, name="pre")(layers.Flatten()(x))
    shared = layers.Dense(6, activation="relu", name="shared")
    x = shared(shared(x))  # one layer called twice: its weights are shared
    outputs = layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="branchy")


def sequential_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(3, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.25),
            layers.Dense(2, activation="softmax"),
        ],
        name="stack",
    )


def same_predictions(a, b, shape=(4, 8, 8, 1)):
    x = RNG.random(shape, dtype=np.float32)
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make", [functional_model, sequential_model])
def test_from_config_rebuilds_the_architecture_with_new_weights(make):
    model = make()
    config = model.get_config()
    new = type(model).from_config(config)
    assert new is not model and type(new) is type(model) and new.name == model.name
    assert [type(l).__name__ for l in new.layers] == [type(l).__name__ for l in model.layers]
    assert [l.name for l in new.layers] == [l.name for l in model.layers]
    assert [w.shape for w in new.weights] == [w.shape for w in model.weights]
    assert not any(np.array_equal(a, b) for a, b in zip(new.get_weights(), model.get_weights()) if a.size > 6)
    new.set_weights(model.get_weights())
    same_predictions(model, new)
    assert new.get_config() == config


def test_functional_config_is_keras_3s():
    model = functional_model()
    config = model.get_config()
    assert set(config) == {"name", "trainable", "layers", "input_layers", "output_layers"}
    assert config["input_layers"] == ["image", 0, 0] and config["output_layers"][1:] == [0, 0]
    first = config["layers"][0]
    assert first["class_name"] == "InputLayer" and first["config"]["batch_shape"] == [None, 8, 8, 1]
    shared = next(e for e in config["layers"] if e["name"] == "shared")
    history = [n["args"][0]["config"]["keras_history"] for n in shared["inbound_nodes"]]
    assert history == [["pre", 0, 0], ["shared", 0, 0]]
    add = next(e for e in config["layers"] if e["class_name"] == "Add")
    assert len(add["inbound_nodes"][0]["args"][0]) == 2  # a merge takes a list
    assert model.get_layer(shared["name"]).weights[0].path.endswith("/kernel")
    json.dumps(config)  # all of it JSON


def test_sequential_config_starts_with_its_input():
    config = sequential_model().get_config()
    assert config["name"] == "stack" and config["build_input_shape"] == [None, 8, 8, 1]
    assert [e["class_name"] for e in config["layers"]] == [
        "InputLayer",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dropout",
        "Dense",
    ]
    assert config["layers"][1]["config"]["kernel_size"] == (3, 3)  # a tuple, as in Keras's config


def test_layer_configs_hold_tuples_where_keras_does():
    assert layers.Conv2D(4, 3).get_config()["kernel_size"] == (3, 3)
    assert layers.Conv2D(4, 3, strides=2).get_config()["strides"] == (2, 2)
    assert layers.Conv2D(4, 3).get_config()["dilation_rate"] == (1, 1)
    assert layers.MaxPooling2D().get_config()["pool_size"] == (2, 2)
    assert layers.AveragePooling2D(3, strides=1).get_config()["strides"] == (1, 1)
    assert layers.Conv1D(4, 5).get_config()["kernel_size"] == (5,)
    assert layers.UpSampling2D(2).get_config()["size"] == (2, 2)
    assert layers.ZeroPadding2D(1).get_config()["padding"] == ((1, 1), (1, 1))
    assert layers.Reshape((4, 2)).get_config()["target_shape"] == (4, 2)
    conv = layers.Conv2D.from_config(json.loads(json.dumps(layers.Conv2D(4, 3).get_config())))
    assert conv.get_config()["kernel_size"] == (3, 3)  # JSON's lists are taken back


def test_nested_and_multi_io_models_round_trip_through_json():
    block = keras.Sequential([keras.Input((4,)), layers.Dense(4, activation="relu")], name="block")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    merged = layers.Concatenate()([block(a), b])
    model = keras.Model([a, b], [layers.Dense(2, name="left")(merged), layers.Dense(1, name="right")(merged)])
    new = keras.models.model_from_json(model.to_json())
    assert isinstance(new.get_layer("block"), keras.Sequential) and new.get_layer("block") is not block
    new.set_weights(model.get_weights())
    x = [RNG.random((3, 4), dtype=np.float32) for _ in range(2)]
    for got, want in zip(new.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


class ScaledDense(layers.Layer):
    """A user's layer, as the Keras guide writes one (a config for its own argument)."""

    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="w")

    def call(self, x):
        return keras.ops.matmul(x, self.w) * self.scale

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


def test_to_json_round_trip_with_a_custom_layer():
    inputs = keras.Input((5,))
    outputs = ScaledDense(3, scale=2.0, name="scaled")(layers.Dense(4)(inputs))
    model = keras.Model(inputs, outputs)
    text = model.to_json()
    assert json.loads(text)["class_name"] == "Functional"
    with pytest.raises(TypeError, match="ScaledDense"):
        keras.models.model_from_json(text)  # the class is the user's: it must be named
    new = keras.models.model_from_json(text, custom_objects={"ScaledDense": ScaledDense})
    layer = new.get_layer("scaled")
    assert type(layer) is ScaledDense and layer.scale == 2.0 and layer.w.shape == (4, 3)
    new.set_weights(model.get_weights())
    x = RNG.random((2, 5), dtype=np.float32)
    np.testing.assert_allclose(new.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    again = keras.Model.from_config(model.get_config(), custom_objects={"ScaledDense": ScaledDense})
    assert type(again.get_layer("scaled")) is ScaledDense


def double(x):
    return x * 2.0


def test_a_registered_layer_and_a_lambda_come_back_from_json():
    registered = keras.saving.register_keras_serializable(package="config_test")(
        type("RegisteredScale", (ScaledDense,), {})
    )
    inputs = keras.Input((3,))
    outputs = layers.Lambda(double, name="twice")(registered(2, name="reg")(inputs))
    model = keras.Model(inputs, outputs)
    entry = next(e for e in model.get_config()["layers"] if e["name"] == "reg")
    assert entry["registered_name"] == "config_test>RegisteredScale"
    with pytest.raises(TypeError, match="Lambda layer 'twice' calls 'double'"):
        keras.models.model_from_json(model.to_json())  # a config holds no code
    new = keras.models.model_from_json(model.to_json(), custom_objects={"double": double})
    assert type(new.get_layer("reg")) is registered  # found in the registry, no custom_objects needed
    new.set_weights(model.get_weights())
    x = RNG.random((2, 3), dtype=np.float32)
    np.testing.assert_allclose(new.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_sequential_to_json_round_trip():
    model = sequential_model()
    text = model.to_json(indent=2)
    new = keras.models.model_from_json(text)
    assert isinstance(new, keras.Sequential) and new.input_shape == (None, 8, 8, 1)
    new.set_weights(model.get_weights())
    same_predictions(model, new)


def test_model_from_json_refuses_what_is_not_a_model():
    with pytest.raises(ValueError, match="model_from_json: not JSON"):
        keras.models.model_from_json("{not json")
    with pytest.raises(ValueError, match="'class_name' and 'config'"):
        keras.models.model_from_json("[1, 2]")
    with pytest.raises(TypeError, match="expected the JSON text"):
        keras.models.model_from_json({"class_name": "Sequential"})


@pytest.mark.parametrize("make", [functional_model, sequential_model])
def test_clone_model_then_fit_both(make):
    keras.utils.set_random_seed(1)
    model = make()
    clone = keras.models.clone_model(model)
    assert clone is not model and not clone.compiled
    assert all(a is not b for a, b in zip(clone.layers, model.layers))
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])  # new weights
    x = RNG.random((32, 8, 8, 1), dtype=np.float32)
    y = RNG.integers(0, model.output_shape[-1], 32)
    model_before = model.get_weights()
    for m in (clone, model):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clone.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model_before, model.get_weights()):  # training the clone leaves the model alone
        np.testing.assert_array_equal(a, b)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_clone_model_keeps_a_shared_layer_shared():
    model = functional_model()
    clone = keras.models.clone_model(model)
    assert len(clone.weights) == len(model.weights)
    shared = [l for l in clone.layers if len(l._inbound_nodes) == 2]
    assert len(shared) == 1


def test_clone_function_as_the_keras_guide_uses_it():
    model = sequential_model()

    def no_dropout(layer):  # replace a layer, rename the rest
        if isinstance(layer, layers.Dropout):
            return layers.Dropout(0.5, name="new_dropout")
        return layer.__class__.from_config({**layer.get_config(), "name": "clone_" + layer.name})

    clone = keras.models.clone_model(model, clone_function=no_dropout)
    assert [l.name for l in clone.layers] == [
        "clone_" + l.name if not isinstance(l, layers.Dropout) else "new_dropout" for l in model.layers
    ]
    assert clone.get_layer("new_dropout").rate == 0.5
    reuse = keras.models.clone_model(model, clone_function=lambda layer: layer)  # share every layer
    assert all(a is b for a, b in zip(reuse.layers, model.layers))
    same_predictions(model, reuse)
    with pytest.raises(TypeError, match="clone_function must return a layer"):
        keras.models.clone_model(model, clone_function=lambda layer: None)


def test_call_function_and_input_tensors():
    model = functional_model()
    seen = []

    def call(layer, *args, **kwargs):
        seen.append(layer.name)
        return layer(*args, **kwargs)

    new_input = keras.Input((8, 8, 1), name="other")
    clone = keras.models.clone_model(model, input_tensors=new_input, call_function=call)
    assert clone.inputs[0] is new_input and len(seen) == sum(len(l._inbound_nodes) for l in model.layers[1:])


class TinyModel(keras.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_clone_a_subclassed_model_from_its_config():
    model = TinyModel(units=5)
    model(np.ones((1, 2), np.float32))
    clone = keras.models.clone_model(model)
    assert type(clone) is TinyModel and clone.units == 5
    assert clone(np.ones((1, 2), np.float32)).shape == (1, 5)
    with pytest.raises(ValueError, match="subclassed model"):
        keras.models.clone_model(model, clone_function=lambda l: l)
    with pytest.raises(TypeError, match="expects a keras.Model"):
        keras.models.clone_model(layers.Dense(2))
