"""``keras.models.model_from_json`` on the text Keras 3's ``model.to_json()`` writes: argument
objects as objects (``DTypePolicy``, ``GlorotUniform``...), ``build_config``, functional graphs as
``__keras_tensor__`` references. Written out here as Keras 3.x writes them (the structure of its
``serialize_keras_object``), not produced by convolab."""

import json

import numpy as np
import pytest

from convolab import keras

DT = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
GLOROT = {
    "module": "keras.initializers",
    "class_name": "GlorotUniform",
    "config": {"seed": None},
    "registered_name": None,
}
ZEROS = {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}


def _dense(name, units, activation, shape):
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": DT,
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": GLOROT,
            "bias_initializer": ZEROS,
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
        "registered_name": None,
        "build_config": {"input_shape": shape},
    }


def _sequential_json():
    conv = {
        "module": "keras.layers",
        "class_name": "Conv2D",
        "config": {
            "name": "conv2d",
            "trainable": True,
            "dtype": DT,
            "filters": 4,
            "kernel_size": [3, 3],
            "strides": [1, 1],
            "padding": "valid",
            "data_format": "channels_last",
            "dilation_rate": [1, 1],
            "groups": 1,
            "activation": "relu",
            "use_bias": True,
            "kernel_initializer": GLOROT,
            "bias_initializer": ZEROS,
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 8, 8, 1]},
    }
    flatten = {
        "module": "keras.layers",
        "class_name": "Flatten",
        "config": {"name": "flatten", "trainable": True, "dtype": DT, "data_format": "channels_last"},
        "registered_name": None,
        "build_config": {"input_shape": [None, 6, 6, 4]},
    }
    layers = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": [None, 8, 8, 1], "dtype": "float32", "sparse": False, "name": "input_layer"},
            "registered_name": None,
        },
        conv,
        flatten,
        _dense("dense", 3, "softmax", [None, 144]),
    ]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": DT,
            "layers": layers,
            "build_input_shape": [None, 8, 8, 1],
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 8, 8, 1]},
    }


def _tensor(shape, history):
    return {"class_name": "__keras_tensor__", "config": {"shape": shape, "dtype": "float32", "keras_history": history}}


def _functional_json():
    inp = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, 5], "dtype": "float32", "sparse": False, "name": "x"},
        "registered_name": None,
        "name": "x",
        "inbound_nodes": [],
    }
    hidden = dict(_dense("hidden", 4, "tanh", [None, 5]), name="hidden")
    hidden["inbound_nodes"] = [{"args": [_tensor([None, 5], ["x", 0, 0])], "kwargs": {}}]
    out = dict(_dense("out", 2, "linear", [None, 4]), name="out")
    out["inbound_nodes"] = [{"args": [_tensor([None, 4], ["hidden", 0, 0])], "kwargs": {}}]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "functional",
            "trainable": True,
            "layers": [inp, hidden, out],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["out", 0, 0]],
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }


def test_a_keras_sequential_json_builds_the_same_architecture():
    model = keras.models.model_from_json(json.dumps(_sequential_json()))
    assert isinstance(model, keras.Sequential)
    assert [type(l).__name__ for l in model.layers] == ["Conv2D", "Flatten", "Dense"]
    assert model.layers[0].activation == "relu" and model.layers[2].activation == "softmax"
    assert model.count_params() == (3 * 3 * 1 * 4 + 4) + (144 * 3 + 3)
    out = model.predict(np.ones((2, 8, 8, 1), "float32"), verbose=0)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.layers[0].bias.numpy(), 0.0)  # Zeros


def test_a_keras_functional_json_builds_its_graph():
    model = keras.models.model_from_json(json.dumps(_functional_json()))
    assert [l.name for l in model.layers] == ["x", "hidden", "out"]
    w1, b1, w2, b2 = model.get_weights()
    x = np.random.default_rng(0).random((3, 5)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.tanh(x @ w1 + b1) @ w2 + b2, rtol=1e-5, atol=1e-6)


def test_an_unknown_class_in_keras_json_is_named():
    doc = _sequential_json()
    doc["config"]["layers"][2]["class_name"] = "MyFlatten"
    doc["config"]["layers"][2]["module"] = None
    doc["config"]["layers"][2]["registered_name"] = "Custom>MyFlatten"
    with pytest.raises(ValueError, match="MyFlatten"):
        keras.models.model_from_json(json.dumps(doc))


def test_convolab_json_still_round_trips():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, kernel_initializer="ones")])
    again = keras.models.model_from_json(model.to_json())
    assert [type(l).__name__ for l in again.layers] == ["Dense"]
    np.testing.assert_array_equal(again.layers[0].kernel.numpy(), 1.0)
