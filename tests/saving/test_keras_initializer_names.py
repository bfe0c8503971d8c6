"""Initializer names in a Keras file: any spelling convolab accepts (Keras's aliases 'uniform' and
'normal', class names such as 'GlorotUniform') is written as the Keras class it means, with the
arguments Keras writes for it, and read back."""

import json
import zipfile

import numpy as np
import pytest

from convolab import initializers, keras
from convolab.saving.keras_config import keras_layer_config

L = keras.layers


@pytest.mark.parametrize(
    "name, cls, config",
    [
        ("uniform", "RandomUniform", {"minval": -0.05, "maxval": 0.05, "seed": None}),
        ("random_uniform", "RandomUniform", {"minval": -0.05, "maxval": 0.05, "seed": None}),
        ("normal", "RandomNormal", {"mean": 0.0, "stddev": 0.05, "seed": None}),
        ("truncated_normal", "TruncatedNormal", {"mean": 0.0, "stddev": 0.05, "seed": None}),
        ("GlorotUniform", "GlorotUniform", {"seed": None}),
        ("he_normal", "HeNormal", {"seed": None}),
        ("zeros", "Zeros", {}),
    ],
)
def test_each_spelling_is_written_as_its_keras_class(name, cls, config):
    written = keras_layer_config("Dense", {"kernel_initializer": name})["kernel_initializer"]
    assert written == {"module": "keras.initializers", "class_name": cls, "config": config, "registered_name": None}


def test_keras_aliases_uniform_and_normal_are_known():
    assert initializers.get("uniform") is initializers.get("random_uniform")
    assert initializers.get("normal") is initializers.get("random_normal")
    assert initializers.canonical_name("GlorotUniform") == "glorot_uniform"
    with pytest.raises(ValueError, match="unknown initializer 'nope'"):
        initializers.canonical_name("nope")


def test_a_dense_kernel_named_by_its_class_round_trips_through_a_keras_file(tmp_path):
    pytest.importorskip("h5py")  # a .keras file holds HDF5 weights
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), L.Dense(2, kernel_initializer="GlorotUniform")])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        dense = json.loads(z.read("config.json"))["config"]["layers"][1]["config"]
    assert dense["kernel_initializer"]["class_name"] == "GlorotUniform"
    again = keras.models.load_model(tmp_path / "m.keras")
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
