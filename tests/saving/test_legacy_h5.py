"""Keras's legacy HDF5 model file and Keras 3's file suffixes by default (issue 19 item 7).

Keras programs as users write them: ``model.save('x.h5')`` / ``keras.models.load_model('x.h5')``,
``ModelCheckpoint('cp.weights.h5', save_weights_only=True)`` and ``ModelCheckpoint('cp.keras')``;
a registered custom layer in a legacy ``.h5``, loaded in a fresh process. Damaged files are ModelFileError.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from convolab import keras  # noqa: E402
from convolab.saving import ModelFileError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cnn():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    model.fit(rng.random((16, 8, 8, 1)), rng.integers(0, 3, 16), epochs=1, verbose=0)
    return model


def _save(model, path):
    with pytest.warns(UserWarning, match="optimizer's state"):
        model.save(path)


def test_sequential_round_trip_and_layout(tmp_path):
    model = _cnn()
    path = tmp_path / "x.h5"
    _save(model, path)
    with h5py.File(path, "r") as f:
        assert {"keras_version", "backend", "model_config", "training_config"} <= set(f.attrs)
        config = json.loads(f.attrs["model_config"])
        assert config["class_name"] == "Sequential"
        training = json.loads(f.attrs["training_config"])
        assert training["optimizer_config"]["class_name"] == "Adam" and "optimizer" not in training
        group = f["model_weights"]
        assert group.attrs["layer_names"].dtype.kind == "S"  # bytes, as Keras writes them
        assert [n.decode() for n in group.attrs["layer_names"]] == ["conv", "bn", "flat", "out"]
        names = [n.decode() for n in group["bn"].attrs["weight_names"]]
        assert names == ["bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"]  # trainable first
        np.testing.assert_array_equal(group["conv/conv/kernel"][()], model.get_layer("conv").get_weights()[0])
        assert len(group["flat"].attrs["weight_names"]) == 0
        assert "top_level_model_weights" in group
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(1).random((4, 8, 8, 1))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.compiled and type(loaded.optimizer).__name__ == "Adam"
    assert not keras.models.load_model(path, compile=False).compiled


def test_functional_round_trip(tmp_path):
    inputs = keras.Input((5,))
    a = keras.layers.Dense(3, name="a")(inputs)
    b = keras.layers.Dense(3, name="b")(inputs)
    model = keras.Model(inputs, keras.layers.Add(name="add")([a, b]))
    model.save(tmp_path / "f.h5")  # not compiled: no training_config
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert "training_config" not in f.attrs
    loaded = keras.saving.load_model(tmp_path / "f.h5")
    x = np.random.default_rng(2).random((2, 5))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras2_spelling_is_read(tmp_path):
    """Keras 2 wrote nodes as [[name, node, tensor, kwargs]], batch_input_shape and ':0' weight names."""
    with h5py.File(tmp_path / "k2.h5", "w") as f:
        config = {
            "class_name": "Model",
            "config": {
                "name": "m",
                "layers": [
                    {
                        "class_name": "InputLayer",
                        "name": "inp",
                        "inbound_nodes": [],
                        "config": {"batch_input_shape": [None, 3], "dtype": "float32", "sparse": False, "name": "inp"},
                    },
                    {
                        "class_name": "Dense",
                        "name": "d",
                        "inbound_nodes": [[["inp", 0, 0, {}]]],
                        "config": {
                            "name": "d",
                            "trainable": True,
                            "dtype": "float32",
                            "units": 2,
                            "activation": "linear",
                            "use_bias": True,
                            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                            "bias_initializer": {"class_name": "Zeros", "config": {}},
                            "kernel_regularizer": None,
                            "bias_regularizer": None,
                            "activity_regularizer": None,
                            "kernel_constraint": None,
                            "bias_constraint": None,
                        },
                    },
                ],
                "input_layers": [["inp", 0, 0]],
                "output_layers": [["d", 0, 0]],
            },
        }
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.15.0"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"inp", b"d"]
        g.create_group("inp").attrs["weight_names"] = np.zeros((0,), "S1")
        d = g.create_group("d")
        d.attrs["weight_names"] = [b"d/kernel:0", b"d/bias:0"]
        d.create_dataset("d/kernel:0", data=np.arange(6, dtype=np.float32).reshape(3, 2))
        d.create_dataset("d/bias:0", data=np.array([1, -1], np.float32))
    model = keras.models.load_model(tmp_path / "k2.h5")
    np.testing.assert_allclose(model.predict(np.ones((1, 3)), verbose=0), [[7.0, 8.0]])


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda f: f.attrs.__delitem__("model_config"), "model_config"),
        (lambda f: f.attrs.__setitem__("model_config", "{not json"), "model_config"),
        (
            lambda f: f.attrs.__setitem__("model_config", f.attrs["model_config"].replace('"Flatten"', '"Lambda"')),
            "Lambda",
        ),
        (
            lambda f: f.attrs.__setitem__("model_config", json.dumps({"class_name": "Sequential", "config": {}})),
            "layers",
        ),
        (lambda f: f["model_weights/out/out"].__delitem__("kernel"), "no dataset"),
        (
            lambda f: (
                f["model_weights/out/out"].__delitem__("kernel"),
                f["model_weights/out/out"].create_dataset("kernel", data=np.zeros((2, 2), np.float32)),
            ),
            "shape",
        ),
        (
            lambda f: (
                f["model_weights/out/out"].__delitem__("kernel"),
                f["model_weights/out/out"].create_dataset("kernel", data=np.zeros((18, 3), np.int32)),
            ),
            "dtype",
        ),
        (lambda f: f["model_weights"].attrs.__setitem__("layer_names", [b"conv", b"bn", b"flat", b"ghost"]), "ghost"),
        (lambda f: f["model_weights/out"].attrs.__setitem__("weight_names", [b"out/kernel"]), "1 weight"),
        (lambda f: f["model_weights/out/out"].__setitem__("sneaky", h5py.ExternalLink("other.h5", "/x")), None),
        (
            lambda f: f["model_weights/out"].attrs.__setitem__("weight_names", [b"out/../conv/kernel", b"out/bias"]),
            "plain path",
        ),
        (
            lambda f: (
                f["model_weights/out/out"].__delitem__("kernel"),
                f["model_weights/out/out"].__setitem__("kernel", h5py.SoftLink("/model_weights/conv/conv/kernel")),
            ),
            "SoftLink",
        ),
        (lambda f: f.attrs.__setitem__("training_config", "[]"), "training_config"),
    ],
)
def test_damaged_files_are_model_file_errors(tmp_path, damage, match):
    path = tmp_path / "x.h5"
    _save(_cnn(), path)
    with h5py.File(path, "a") as f:
        damage(f)
    if match is None:  # an extra link in a weight group is never followed: the file still loads
        keras.models.load_model(path)
        return
    with pytest.raises(ModelFileError, match=match):
        keras.models.load_model(path)


def test_truncated_and_non_hdf5_files(tmp_path):
    path = tmp_path / "x.h5"
    _save(_cnn(), path)
    body = path.read_bytes()
    (tmp_path / "t.h5").write_bytes(body[: len(body) // 2])
    with pytest.raises(ModelFileError):
        keras.models.load_model(tmp_path / "t.h5")
    with h5py.File(tmp_path / "w.h5", "w") as f:  # weights only, no model_config
        f.create_group("model_weights")
    with pytest.raises(ModelFileError, match="load_weights"):
        keras.models.load_model(tmp_path / "w.h5")


def test_registered_layer_in_a_legacy_h5_loads_in_a_fresh_process(tmp_path):
    (tmp_path / "scaled.py").write_text(
        textwrap.dedent("""
        from convolab import keras

        @keras.saving.register_keras_serializable(package="Demo")
        class Scale(keras.layers.Layer):
            def __init__(self, init=1.0, **kwargs):
                super().__init__(**kwargs)
                self.init = init

            def build(self, input_shape):
                self.s = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

            def call(self, x):
                return x * self.s * self.init

            def get_config(self):
                return {**super().get_config(), "init": self.init}
    """)
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import scaled
    finally:
        sys.path.remove(str(tmp_path))
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(scaled.Scale(2.0, name="sc")(inputs)))
    model.get_layer("sc").set_weights([np.array([1.0, 2.0, 3.0], np.float32)])
    model.save(tmp_path / "s.h5")
    x = np.ones((1, 3), np.float32)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.path.join(ROOT, "src")])}
    code = textwrap.dedent("""
        import numpy as np, scaled
        from convolab import keras
        m = keras.models.load_model("s.h5")
        np.testing.assert_array_equal(m.predict(np.ones((1, 3), np.float32), verbose=0), np.load("y.npy"))
        print(m.get_layer("sc").get_weights()[0].tolist(), m.get_layer("sc").init)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("]")[0] == "[1.0, 2.0, 3.0"


# -- ModelCheckpoint with Keras 3's suffixes ---------------------------------------------
def test_model_checkpoint_writes_keras_weights_and_model_files(tmp_path):
    model = _cnn()
    rng = np.random.default_rng(3)
    x, y = rng.random((8, 8, 8, 1)), rng.integers(0, 3, 8)
    cbs = [
        keras.callbacks.ModelCheckpoint(str(tmp_path / "cp.weights.h5"), save_weights_only=True),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "cp.keras")),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "cp.h5")),
    ]
    with pytest.warns(UserWarning, match="optimizer's state"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=cbs)
    with h5py.File(tmp_path / "cp.weights.h5", "r") as f:
        assert "layers" in f  # Keras 3's weights layout
    fresh = _cnn()
    fresh.load_weights(tmp_path / "cp.weights.h5")
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), expected)
    for name in ("cp.keras", "cp.h5"):
        np.testing.assert_array_equal(keras.models.load_model(tmp_path / name).predict(x, verbose=0), expected)


def test_model_checkpoint_suffixes_follow_save_weights_only():
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        keras.callbacks.ModelCheckpoint("cp.h5", save_weights_only=True)
    with pytest.raises(ValueError, match="save_weights_only=True"):
        keras.callbacks.ModelCheckpoint("cp.weights.h5")
    keras.callbacks.ModelCheckpoint("cp-{epoch:02d}.weights.h5", save_weights_only=True)
