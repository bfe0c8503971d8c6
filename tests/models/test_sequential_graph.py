"""Sequential is a layer graph, as in Keras 3 (issue 19, item 6).

Keras programs as users write them: keras.io's "The Sequential model" guide (feature extraction
with ``keras.Model(inputs=model.inputs, outputs=[layer.output ...])``, transfer learning by
freezing all but the last layer), nested Sequentials, ``add``/``pop`` after the graph was built,
and user layers with their own ``build()``, a ``call(x)`` without ``training`` and no
``compute_output_shape``. Every output is checked against running the same layers by hand.
"""

import numpy as np
import pytest

from convolab import keras
from convolab.keras import layers, ops


def _by_hand(model_layers, x):
    """The layers run one after the other, each called directly (no model involved)."""
    outs = []
    for layer in model_layers:
        x = np.asarray(layer(x))
        outs.append(x)
    return outs


def test_feature_extraction_from_every_layer_as_in_the_keras_guide():
    keras.utils.set_random_seed(0)
    initial_model = keras.Sequential(
        [
            keras.Input(shape=(25, 25, 3)),
            layers.Conv2D(8, 5, strides=2, activation="relu"),
            layers.Conv2D(8, 3, activation="relu"),
            layers.Conv2D(8, 3, activation="relu"),
        ]
    )
    feature_extractor = keras.Model(
        inputs=initial_model.inputs,
        outputs=[layer.output for layer in initial_model.layers],
    )
    assert [t.shape for t in feature_extractor.outputs] == [l.output_shape for l in initial_model.layers]
    # the very same layer objects: the weights are shared, not copied
    assert all(a is b for a, b in zip(feature_extractor.layers[1:], initial_model.layers))

    x = np.random.default_rng(1).normal(size=(2, 25, 25, 3)).astype("float32")
    features = feature_extractor(x)
    expected = _by_hand(initial_model.layers, x)
    assert len(features) == 3
    for got, want in zip(features, expected):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(initial_model.predict(x, verbose=0), expected[-1], rtol=1e-5, atol=1e-6)


def test_feature_extraction_from_one_named_layer():
    keras.utils.set_random_seed(0)
    initial_model = keras.Sequential(
        [
            keras.Input(shape=(12, 12, 3)),
            layers.Conv2D(4, 3, strides=2, activation="relu"),
            layers.Conv2D(4, 3, activation="relu", name="my_intermediate_layer"),
            layers.Conv2D(4, 3, activation="relu"),
        ]
    )
    feature_extractor = keras.Model(
        inputs=initial_model.inputs,
        outputs=initial_model.get_layer(name="my_intermediate_layer").output,
    )
    x = ops.ones((1, 12, 12, 3))
    features = np.asarray(feature_extractor(x))
    want = _by_hand(initial_model.layers[:2], np.ones((1, 12, 12, 3), "float32"))[-1]
    np.testing.assert_allclose(features, want, rtol=1e-5, atol=1e-6)
    # model.input / model.output as Keras 2 programs spell them
    assert initial_model.input is initial_model.inputs[0]
    assert initial_model.output is initial_model.layers[-1].output
    assert initial_model.layers[1].input is initial_model.layers[0].output


def test_input_shape_argument_and_deferred_build_make_the_graph_too():
    model = keras.Sequential([layers.Dense(4, activation="relu", input_shape=(6,)), layers.Dense(3)])
    assert model.inputs[0].shape == (None, 6) and model.outputs[0].shape == (None, 3)

    deferred = keras.Sequential([layers.Dense(4), layers.Dense(3)])
    deferred.predict(np.zeros((2, 5), "float32"), verbose=0)  # built from the first data, as in Keras
    assert deferred.layers[0].input.shape == (None, 5)
    sub = keras.Model(deferred.inputs, deferred.layers[0].output)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    np.testing.assert_allclose(sub.predict(x, verbose=0), np.asarray(deferred.layers[0](x)), rtol=1e-6)


def test_transfer_learning_freeze_all_but_last_then_fit():
    """keras.io's Sequential guide: a trained model's features feed a new head; the base stays frozen."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential(
        [
            keras.Input(shape=(8,)),
            layers.Dense(16, activation="relu"),
            layers.Dense(16, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    # Freeze all layers except the last one, recompile and train.
    for layer in model.layers[:-1]:
        layer.trainable = False
    frozen = [w.copy() for l in model.layers[:-1] for w in l.get_weights()]
    last = [w.copy() for w in model.layers[-1].get_weights()]
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, [w for l in model.layers[:-1] for w in l.get_weights()]))
    assert not np.allclose(last[0], model.layers[-1].get_weights()[0])

    # the frozen part reused as a base: a feature extractor sharing its weights under a new head
    base = keras.Model(inputs=model.inputs, outputs=model.layers[-2].output)
    base.trainable = False
    new_model = keras.Sequential([base, layers.Dense(2, activation="softmax")])
    assert new_model.inputs[0].shape == (None, 8)  # the nested model gave its input shape
    new_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    new_model.fit(x, y[:, 0].astype("int64"), epochs=1, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, [w for l in model.layers[:-1] for w in l.get_weights()]))
    features = _by_hand(model.layers[:-1], x)[-1]
    np.testing.assert_allclose(base.predict(x, verbose=0), features, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("inner_has_input", [True, False])
def test_nested_sequential_first_gives_its_input_shape(inner_has_input):
    keras.utils.set_random_seed(0)
    if inner_has_input:
        inner = keras.Sequential([keras.Input((8,)), layers.Dense(4, activation="relu")])
        model = keras.Sequential([inner, layers.Dense(2)])
    else:
        inner = keras.Sequential([keras.Input((8,)), layers.Dense(4, activation="relu")])
        model = keras.Sequential()
        model.add(inner)
        model.add(layers.Dense(2))
    assert model.built and model.input_shape == (None, 8) and model.output_shape == (None, 2)
    assert model.inputs[0].shape == (None, 8) and model.outputs[0].shape == (None, 2)
    assert model.layers[1].input.shape == (None, 4)
    x = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")
    want = np.asarray(model.layers[1](np.asarray(inner.layers[0](x))))
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    whole = keras.Model(model.input, model.output)
    np.testing.assert_allclose(whole.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_add_and_pop_after_build_rebuild_the_graph():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), layers.Dense(4)])
    assert model.outputs[0].shape == (None, 4)
    model.add(layers.Dense(3))
    assert model.outputs[0].shape == (None, 3)
    assert model.outputs[0] is model.layers[-1].output
    assert model.layers[1].input is model.layers[0].output
    popped = model.pop()
    assert model.outputs[0].shape == (None, 4) and model.output_shape == (None, 4)
    assert model.outputs[0] is model.layers[-1].output
    with pytest.raises(AttributeError, match="has no output"):
        popped.output  # noqa: B018 (no longer part of the model's graph)
    model.add(layers.Dense(2, name="head"))
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    np.testing.assert_allclose(
        keras.Model(model.inputs, model.get_layer("head").output).predict(x, verbose=0),
        _by_hand(model.layers, x)[-1],
        rtol=1e-5,
        atol=1e-6,
    )


class Linear(keras.layers.Layer):
    """keras.io's "Making new layers" Linear: weights in build(), a call(x) without training."""

    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b


def test_user_layer_with_build_and_call_without_training_in_a_sequential():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = x @ rng.normal(size=(6, 1)).astype("float32")
    model = keras.Sequential([keras.Input((6,)), Linear(8), layers.Activation("relu"), Linear(1)])
    assert model.output_shape == (None, 1)
    assert model.layers[0].output.shape == (None, 8)
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, _by_hand(model.layers, x)[-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(x, training=True)), out, rtol=1e-5, atol=1e-6)
    model.compile(optimizer="adam", loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


class RowMean(keras.layers.Layer):
    """A layer with no compute_output_shape whose call changes the shape: Keras traces it."""

    def call(self, x):
        return ops.mean(x, axis=-1, keepdims=True)


class Scale(keras.layers.Layer):
    """A user layer with build() and no compute_output_shape (the shape is traced)."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1] * 2,), initializer="ones")

    def call(self, x):
        return ops.concatenate([x, x], axis=-1) * self.scale


def test_user_layer_without_compute_output_shape_then_compile_and_fit():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 3, size=32)
    model = keras.Sequential([keras.Input((6,)), Scale(), layers.Dense(3, activation="softmax")])
    assert model.layers[0].output_shape == (None, 12) and model.output_shape == (None, 3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

    reducer = keras.Sequential([keras.Input((6,)), RowMean()])
    assert reducer.output_shape == (None, 1) and reducer.layers[0].output_shape == (None, 1)
    reducer.compile(optimizer="sgd", loss="mse")
    reducer.fit(x, x.mean(-1, keepdims=True), epochs=1, verbose=0)
    np.testing.assert_allclose(reducer.predict(x, verbose=0), x.mean(-1, keepdims=True), rtol=1e-6)


def test_summary_and_config_stay_as_before_with_the_graph():
    model = keras.Sequential([keras.Input((5,)), layers.Dense(4, name="d1"), layers.Dense(2, name="d2")], name="s")
    cfg = model.get_config()
    assert [e["class_name"] for e in cfg["layers"]] == ["InputLayer", "Dense", "Dense"]
    assert [l.name for l in model.layers] == ["d1", "d2"]
    clone = keras.Sequential.from_config(cfg)
    assert clone.outputs[0].shape == (None, 2)
    lines = []
    model.summary(print_fn=lines.append)
    assert "d1 (Dense)" in lines[0] and "(None, 2)" in lines[0]


def test_model_input_and_output_of_a_functional_model_as_keras_spells_them():
    """``keras.Model(model.input, model.layers[-2].output)``, the common transfer-learning idiom."""
    inputs = keras.Input(shape=(4,))
    hidden = layers.Dense(3, activation="tanh", name="hidden")(inputs)
    model = keras.Model(inputs, layers.Dense(1)(hidden))
    assert model.input is inputs and model.output is model.outputs[0]
    outer = keras.Sequential([model])  # called in another graph: its own input stays its input
    assert outer.input_shape == (None, 4) and model.input is inputs
    base = keras.Model(model.input, model.layers[-2].output)
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    np.testing.assert_allclose(base.predict(x, verbose=0), np.asarray(model.get_layer("hidden")(x)), rtol=1e-6)
