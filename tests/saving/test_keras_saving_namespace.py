"""keras.saving (issue 19 item 3): the registry, custom object scopes, and user layers in .keras files.

Each test is a Keras program as users write it (keras.io "Save, serialize, and export models"):
a layer class decorated with ``@keras.saving.register_keras_serializable``, saved to ``.keras`` and
loaded again, in this process and in a fresh one (with the class registered, passed as
``custom_objects``, or missing: then ModelFileError, as the allow-list demands).
"""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

pytest.importorskip("h5py")

from convolab import keras  # noqa: E402
from convolab.saving import ModelFileError  # noqa: E402
from convolab.saving import object_registry  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The user's module: the layer as the keras.io guide writes it.
LAYER_SOURCE = textwrap.dedent("""
    from convolab import keras
    from convolab.keras import ops

    REGISTER = {register}

    class MyDense(keras.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal",
                                     trainable=True, name="kernel")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True, name="bias")

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            config = super().get_config()
            config.update({{"units": self.units}})
            return config

    if REGISTER:
        MyDense = keras.saving.register_keras_serializable(package="MyLayers")(MyDense)
""")


def _user_module(tmp_path, register):
    path = tmp_path / ("mylayers.py" if register else "mylayers_unregistered.py")
    path.write_text(LAYER_SOURCE.format(register=register))
    return path


def _import(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(MyDense):
    inputs = keras.Input((4,))
    x = MyDense(8, name="my_dense")(inputs)
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    return model


def _run(code, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.path.join(ROOT, "src")])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


# -- the registry --------------------------------------------------------------------
def test_register_keras_serializable_names_as_keras():
    @keras.saving.register_keras_serializable(package="my_package", name="custom_fn")
    def custom_fn(x):
        return x * 2

    @keras.saving.register_keras_serializable()
    class Scaled(keras.layers.Layer):
        pass

    assert keras.saving.get_registered_name(custom_fn) == "my_package>custom_fn"
    assert keras.saving.get_registered_object("my_package>custom_fn") is custom_fn
    assert keras.saving.get_registered_name(Scaled) == "Custom>Scaled"
    assert keras.saving.get_custom_objects()["Custom>Scaled"] is Scaled
    assert keras.saving.get_registered_name(np.mean) == "mean"  # unregistered: its __name__, as Keras
    assert keras.saving.get_registered_object("Nope>nothing") is None
    assert keras.saving.get_registered_object("x", custom_objects={"x": custom_fn}) is custom_fn


def test_register_refuses_a_class_without_get_config_and_bad_names():
    class NoConfig:
        pass

    with pytest.raises(ValueError, match="get_config"):
        keras.saving.register_keras_serializable()(NoConfig)
    with pytest.raises(TypeError, match="package"):
        keras.saving.register_keras_serializable(package=3)
    with pytest.raises(TypeError, match="name"):
        keras.saving.register_keras_serializable(name="")


def test_custom_object_scope_nests_and_ends():
    def a(x):
        return x

    def b(x):
        return x

    assert keras.saving.custom_object_scope is keras.saving.CustomObjectScope
    with keras.saving.custom_object_scope({"f": a}):
        assert keras.saving.get_registered_object("f") is a
        with keras.saving.CustomObjectScope({"f": b}):
            assert keras.saving.get_registered_object("f") is b
        assert keras.saving.get_registered_object("f") is a
    assert keras.saving.get_registered_object("f") is None
    with pytest.raises(TypeError, match="dict"):
        keras.saving.CustomObjectScope(["f"])
    with pytest.raises(TypeError, match="class or function"):
        keras.saving.CustomObjectScope({"f": 3})


def test_serialize_and_deserialize_keras_object():
    layer = keras.layers.Dense(3, activation="relu", name="d")
    config = keras.saving.serialize_keras_object(layer)
    assert config["module"] == "keras.layers" and config["class_name"] == "Dense"
    assert config["registered_name"] is None
    assert config["config"]["dtype"]["class_name"] == "DTypePolicy"  # Keras's spelling
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is keras.layers.Dense and again.get_config() == layer.get_config()

    @keras.saving.register_keras_serializable(package="Ser")
    def twice(x):
        return 2 * x

    fn = keras.saving.serialize_keras_object(twice)
    assert fn == {"module": __name__, "class_name": "function", "config": "Ser>twice", "registered_name": "Ser>twice"}
    assert keras.saving.deserialize_keras_object(fn) is twice
    with pytest.raises(TypeError, match="could not locate class"):
        keras.saving.deserialize_keras_object(
            {"module": "evil", "class_name": "Popen", "config": {}, "registered_name": "Popen"}
        )
    with pytest.raises(TypeError, match="lambda"):
        keras.saving.serialize_keras_object(lambda x: x)


# -- user layers in .keras files ----------------------------------------------------
def test_registered_layer_round_trips_in_process(tmp_path):
    MyDense = _import(_user_module(tmp_path, True)).MyDense
    model = _model(MyDense)
    x = np.random.default_rng(0).random((16, 4)).astype(np.float32)
    model.fit(x, x[:, :2], epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    with pytest.warns(UserWarning, match="optimizer's state"):
        keras.saving.save_model(model, path)
    layers = json.loads(zipfile.ZipFile(path).read("config.json"))["config"]["layers"]
    entry = next(e for e in layers if e["name"] == "my_dense")
    assert entry["class_name"] == "MyDense" and entry["registered_name"] == "MyLayers>MyDense"
    assert entry["config"]["units"] == 8
    loaded = keras.saving.load_model(path)
    assert type(loaded.get_layer("my_dense")) is MyDense
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.compiled


PROGRAM = """
    import numpy as np
    from convolab import keras
    {imports}
    model = keras.saving.load_model("m.keras"{kwargs})
    x = np.load("x.npy")
    np.testing.assert_array_equal(model.predict(x, verbose=0), np.load("y.npy"))
    print(type(model.get_layer("my_dense")).__name__, model.get_layer("my_dense").units)
"""


def _saved(tmp_path, register):
    MyDense = _import(_user_module(tmp_path, register)).MyDense
    model = _model(MyDense)
    x = np.random.default_rng(1).random((5, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    model.save(tmp_path / "m.keras")


def test_fresh_process_finds_the_registered_class(tmp_path):
    _saved(tmp_path, True)
    done = _run(PROGRAM.format(imports="import mylayers", kwargs=""), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["MyDense", "8"]


def test_fresh_process_with_custom_objects(tmp_path):
    _saved(tmp_path, False)  # never registered: Keras writes its class name as registered_name
    done = _run(
        PROGRAM.format(
            imports="from mylayers_unregistered import MyDense", kwargs=', custom_objects={"MyDense": MyDense}'
        ),
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["MyDense", "8"]


def test_fresh_process_without_the_class_is_refused(tmp_path):
    _saved(tmp_path, True)
    done = _run(
        """
        from convolab import keras
        from convolab.saving import ModelFileError
        try:
            keras.saving.load_model("m.keras")
        except ModelFileError as e:
            print("refused:", e)
    """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "MyLayers>MyDense" in done.stdout
    assert "register_keras_serializable" in done.stdout


def test_custom_object_scope_loads_an_unregistered_class(tmp_path):
    MyDense = _import(_user_module(tmp_path, False)).MyDense
    model = _model(MyDense)
    model.save(tmp_path / "m.keras")
    with pytest.raises(ModelFileError, match="not registered"):
        keras.saving.load_model(tmp_path / "m.keras")
    with keras.saving.custom_object_scope({"MyDense": MyDense}):
        loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    assert type(loaded.get_layer("my_dense")) is MyDense and not loaded.compiled


def test_a_registered_name_never_reaches_a_class_outside_the_registry(tmp_path):
    """A file naming a class by a module of its choosing loads nothing: only the registry answers."""
    _saved(tmp_path, True)
    body = zipfile.ZipFile(tmp_path / "m.keras")
    config = json.loads(body.read("config.json"))
    for e in config["config"]["layers"]:
        if e["name"] == "my_dense":
            e.update(module="subprocess", class_name="Popen", registered_name="Popen")
    with zipfile.ZipFile(tmp_path / "evil.keras", "w") as out:
        for name in body.namelist():
            out.writestr(name, json.dumps(config) if name == "config.json" else body.read(name))
    with pytest.raises(ModelFileError, match="'Popen'.*not registered"):
        keras.saving.load_model(tmp_path / "evil.keras")
    # a registered name that is not a layer class is refused too
    keras.saving.register_keras_serializable(package="T", name="Popen")(np.mean)
    try:
        with pytest.raises(ModelFileError):
            keras.saving.load_model(tmp_path / "evil.keras")
    finally:
        object_registry.get_custom_objects().pop("T>Popen")


def test_a_custom_layer_with_a_config_that_is_not_json_is_refused_at_save(tmp_path):
    @keras.saving.register_keras_serializable(package="Bad")
    class Holder(keras.layers.Layer):
        def call(self, x):
            return x

        def get_config(self):
            return {**super().get_config(), "thing": object()}

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Holder(name="holder")(inputs))
    with pytest.raises(ValueError, match="Holder 'holder'.*JSON"):
        model.save(tmp_path / "h.keras")
    assert not (tmp_path / "h.keras").exists()


def test_load_model_checks_custom_objects():
    with pytest.raises(TypeError, match="custom objects must be a dict"):
        keras.saving.load_model("whatever.keras", custom_objects=[1])
