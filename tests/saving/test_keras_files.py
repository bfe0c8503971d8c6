"""Keras 3's own files: ``.weights.h5`` and the ``.keras`` zip, written here with h5py in Keras's layout
(Keras itself is not installed), read by convolab; convolab's files read back; tampered files refused."""

import io
import json
import sys
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from convolab import keras  # noqa: E402
from convolab.saving import ModelFileError  # noqa: E402

L = keras.layers
RNG = np.random.default_rng(0)


def f32(*shape):
    return RNG.standard_normal(shape).astype("float32")


def write_h5(path, layers, extra=None):
    """A Keras 3 ``.weights.h5``: ``{slot: [arrays]}`` under /layers, an empty /vars, optimizer state."""
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        for slot, arrays in layers.items():
            g = f.create_group(f"layers/{slot}/vars")
            for i, a in enumerate(arrays):
                g[str(i)] = a
        f.create_group("optimizer/vars")["0"] = np.array(7, "int64")  # Keras's iteration counter: ignored
        if extra:
            extra(f)
    return path


def mlp():
    return keras.Sequential([keras.Input((4,)), L.Dense(3, activation="relu"), L.Dense(2)])


def mlp_weights():
    return {"dense": [f32(4, 3), f32(3)], "dense_1": [f32(3, 2), f32(2)]}


# -- reading Keras's layout -----------------------------------------------------------
def test_hand_built_weights_h5_gives_numpy_predictions(tmp_path):
    w = mlp_weights()
    path = write_h5(tmp_path / "m.weights.h5", w)
    model = mlp()
    model.load_weights(path)
    x = f32(5, 4)
    (k1, b1), (k2, b2) = w["dense"], w["dense_1"]
    expected = np.maximum(x @ k1 + b1, 0) @ k2 + b2
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_variable_order_per_layer(tmp_path):
    """Conv2D kernel, bias; BatchNormalization gamma, beta, moving_mean, moving_variance;
    SeparableConv2D depthwise, pointwise, bias; DepthwiseConv2D kernel, bias."""
    arrays = {
        "conv2d": [f32(3, 3, 2, 4), f32(4)],
        "batch_normalization": [f32(4), f32(4), f32(4), np.abs(f32(4)) + 0.5],
        "separable_conv2d": [f32(3, 3, 4, 2), f32(1, 1, 8, 5), f32(5)],
        "depthwise_conv2d": [f32(1, 1, 5, 1), f32(5)],
        "global_average_pooling2d": [],
        "dense": [f32(5, 3), f32(3)],
    }
    path = write_h5(tmp_path / "c.weights.h5", arrays)
    model = keras.Sequential(
        [
            keras.Input((7, 7, 2)),
            L.Conv2D(4, 3),
            L.BatchNormalization(),
            L.SeparableConv2D(5, 3, depth_multiplier=2),
            L.DepthwiseConv2D(1),
            L.GlobalAveragePooling2D(),
            L.Dense(3),
        ]
    )
    model.load_weights(path)
    got = [list(layer.params.values()) for layer in model.layers]
    for mine, theirs in zip(got, arrays.values()):
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a, b)
    bn = model.layers[1]
    np.testing.assert_array_equal(bn.params["moving_variance"], arrays["batch_normalization"][3])


def test_keras_written_keras_zip_loads(tmp_path):
    """A .keras zip as Keras 3 writes it: DTypePolicy and initializer objects, InputLayer first."""
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    glorot = {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": None},
        "registered_name": None,
    }
    zeros = {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}

    def dense(name, units, activation):
        return {
            "module": "keras.layers",
            "class_name": "Dense",
            "registered_name": None,
            "build_config": {"input_shape": [None, 4]},
            "config": {
                "name": name,
                "trainable": True,
                "dtype": policy,
                "units": units,
                "activation": activation,
                "use_bias": True,
                "kernel_initializer": glorot,
                "bias_initializer": zeros,
                "kernel_regularizer": None,
                "bias_regularizer": None,
                "activity_regularizer": None,
                "kernel_constraint": None,
                "bias_constraint": None,
            },
        }

    config = {
        "module": "keras",
        "class_name": "Sequential",
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
        "compile_config": None,
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": policy,
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "registered_name": None,
                    "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "input_layer"},
                },
                dense("dense", 3, "relu"),
                dense("dense_1", 2, "linear"),
            ],
            "build_input_shape": [None, 4],
        },
    }
    w = mlp_weights()
    h5 = write_h5(tmp_path / "w.h5", w)
    path = tmp_path / "k.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.3.3", "date_saved": "2024-05-01@10:00:00"}))
        zf.writestr("config.json", json.dumps(config))
        zf.write(h5, "model.weights.h5")
    model = keras.models.load_model(path)
    x = f32(5, 4)
    (k1, b1), (k2, b2) = w["dense"], w["dense_1"]
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(x @ k1 + b1, 0) @ k2 + b2, rtol=1e-5, atol=1e-6)


# -- round trips -------------------------------------------------------------------------
def conv_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.SeparableConv2D(5, 3),
            L.DepthwiseConv2D(3, depth_multiplier=2),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dropout(0.2),
            L.Dense(3),
            L.Softmax(),
        ]
    )


def branchy_model():
    i = keras.Input((6,))
    a = L.Dense(4, activation="relu")(i)
    b = L.Dense(4)(i)
    c = L.Add()([a, b])
    d = L.Concatenate()([c, a])
    inner = keras.Sequential([keras.Input((8,)), L.Dense(5), L.ReLU()])
    return keras.Model(i, L.Dense(2)(inner(d)))


@pytest.mark.parametrize("make,shape", [(conv_model, (2, 8, 8, 3)), (branchy_model, (3, 6))])
def test_round_trips(tmp_path, make, shape):
    model = make()
    model.layers[1].params[next(iter(model.layers[1].params))][...] += 0.25  # not the initial weights
    x = RNG.random(shape).astype("float32")
    y = model.predict(x, verbose=0)
    model.save_weights(tmp_path / "m.weights.h5")
    other = make()
    other.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_array_equal(other.predict(x, verbose=0), y)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), y)
    again = make()
    again.load_weights(tmp_path / "m.keras")  # Keras loads weights from a .keras file too
    np.testing.assert_array_equal(again.predict(x, verbose=0), y)


def test_written_layout_is_keras(tmp_path):
    branchy_model().save_weights(tmp_path / "b.weights.h5")
    names = []
    with h5py.File(tmp_path / "b.weights.h5") as f:
        f.visit(names.append)
    assert [n for n in names if n.endswith("/vars")] == [
        "layers/add/vars",
        "layers/concatenate/vars",
        "layers/dense/vars",
        "layers/dense_1/vars",
        "layers/dense_2/vars",
        "layers/input_layer/vars",
        "layers/sequential/layers/dense/vars",
        "layers/sequential/layers/re_lu/vars",
        "layers/sequential/vars",
    ]
    assert "vars" in names
    with zipfile.ZipFile(tmp_path / "m.keras", "w"):
        pass
    branchy_model().save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(zf.read("config.json"))
    assert config["class_name"] == "Functional"
    add = next(e for e in config["config"]["layers"] if e["class_name"] == "Add")
    assert add["inbound_nodes"][0]["args"][0][0]["class_name"] == "__keras_tensor__"


# -- refused -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change,message",
    [
        (lambda w: w.update(dense=[f32(4, 5), f32(3)]), "variable 0 has shape (4, 5); expected (4, 3)"),
        (lambda w: w.pop("dense_1"), "missing"),
        (lambda w: w.update(dense=[f32(4, 3)]), "holds variables ['0']; expected ['0', '1']"),
        (lambda w: w.update(dense_7=[f32(1)]), "dense_7 names a layer"),
        (lambda w: w.update(dense=[np.zeros((4, 3), "int32"), f32(3)]), "dtype int32; expected a float dtype"),
    ],
)
def test_tampered_weights_refused(tmp_path, change, message):
    w = mlp_weights()
    change(w)
    path = write_h5(tmp_path / "m.weights.h5", w)
    model = mlp()
    before = [p.copy() for p in model.get_weights()]
    with pytest.raises(ModelFileError) as e:
        model.load_weights(path)
    assert message in str(e.value)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # nothing was set


def test_links_are_never_followed(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["k"] = f32(4, 3)
    w = mlp_weights()

    def link(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = h5py.ExternalLink(str(other), "k")

    path = write_h5(tmp_path / "m.weights.h5", w, extra=link)
    with pytest.raises(ModelFileError, match="ExternalLink"):
        mlp().load_weights(path)


def test_keras2_h5_named(tmp_path):
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.create_group("model_weights")
        f.attrs["layer_names"] = [b"dense"]
    with pytest.raises(ModelFileError, match="Keras 2"):
        mlp().load_weights(tmp_path / "old.h5")


def keras_zip(tmp_path, edit=None, members=None):
    model = mlp()
    model.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(files["config.json"])
    if edit:
        edit(config)
    files["config.json"] = json.dumps(config).encode()
    files.update(members or {})
    path = tmp_path / "bad.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return path


def second_layer(config):
    return config["config"]["layers"][2]


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: second_layer(c).update(class_name="LSTM"), "convolab has no layer class 'LSTM'"),
        (lambda c: second_layer(c).update(class_name="Lambda"), "a Lambda layer holds Python code"),
        # a custom name is looked up in keras.saving's registry only (issue 19): unregistered, refused
        (
            lambda c: second_layer(c).update(registered_name="my_pkg>Dense"),
            "'my_pkg>Dense' (module 'keras.layers') is not registered",
        ),
        (lambda c: second_layer(c).update(module="os"), "'Dense' (module 'os') is not registered"),
        (
            lambda c: second_layer(c)["config"].update(
                kernel_regularizer={
                    "module": "my_pkg",
                    "class_name": "MyPenalty",
                    "config": {},
                    "registered_name": "my>MyPenalty",
                }
            ),
            "never a custom one",
        ),
        (
            lambda c: second_layer(c)["config"].update(
                kernel_regularizer={
                    "module": "keras.regularizers",
                    "class_name": "Orthogonal",
                    "config": {},
                    "registered_name": None,
                }
            ),
            "Orthogonal",
        ),
        (lambda c: second_layer(c)["config"].update(units=2**31 - 1), "cannot hold them"),
        (lambda c: second_layer(c)["config"].update(units=3), "variable 0 has shape (3, 2); expected (3, 3)"),
        (lambda c: second_layer(c)["config"].update(surprise=1), "surprise"),
        (
            lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 10**12]),
            "input_shape[0]: expected an int in [1, 2147483647]; got 1000000000000",
        ),
        (lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 2**30]), "cannot hold them"),
    ],
)
def test_tampered_config_refused(tmp_path, edit, message):
    with pytest.raises(ModelFileError) as e:
        keras.models.load_model(keras_zip(tmp_path, edit))
    assert message in str(e.value)


@pytest.mark.parametrize(
    "members,message",
    [
        ({"../evil.txt": b"x"}, "unexpected: ['../evil.txt']"),
        ({"assets/run.py": b"print(1)"}, "unexpected: ['assets/run.py']"),
        ({"metadata.json": b" " * 70_000}, "metadata.json is 70,000 bytes; at most 65,536"),
    ],
)
def test_tampered_zip_refused(tmp_path, members, message):
    with pytest.raises(ModelFileError) as e:
        keras.models.load_model(keras_zip(tmp_path, members=members))
    assert message in str(e.value)


def test_zip_without_weights_refused(tmp_path):
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "{}")
    with pytest.raises(ModelFileError, match=r"lacks \['model.weights.h5'\]"):
        keras.models.load_model(path)


def test_without_h5py_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r'pip install "convolab\[keras-files\]"'):
        mlp().save_weights(tmp_path / "m.weights.h5")
    with pytest.raises(ImportError, match=r'pip install "convolab\[keras-files\]"'):
        mlp().save(tmp_path / "m.keras")
    (tmp_path / "x.keras").write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(ImportError, match="keras-files"):
        keras.models.load_model(tmp_path / "x.keras")
    assert not io.BytesIO().getvalue()


def kt(name, shape):
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": shape, "dtype": "float32", "keras_history": [name, 0, 0]},
    }


def test_keras_written_functional_config_loads(tmp_path):
    """Keras 3's functional form: inbound nodes as {args, kwargs}, a merge called with a list,
    input_layers/output_layers as lists of one reference."""

    def layer(cls, name, config, args):
        return {
            "module": "keras.layers",
            "class_name": cls,
            "registered_name": None,
            "name": name,
            "config": {"name": name, "trainable": True, "dtype": "float32", **config},
            "inbound_nodes": [{"args": [args], "kwargs": {}}],
        }

    dense = {
        "use_bias": True,
        "activation": "linear",
        "kernel_initializer": "glorot_uniform",
        "bias_initializer": "zeros",
    }
    config = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "registered_name": "Functional",
        "build_config": {"input_shape": [None, 4]},
        "config": {
            "name": "functional",
            "trainable": True,
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "registered_name": None,
                    "name": "input_layer",
                    "inbound_nodes": [],
                    "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "input_layer"},
                },
                layer("Dense", "dense", {**dense, "units": 3}, kt("input_layer", [None, 4])),
                layer("Dense", "dense_1", {**dense, "units": 3}, kt("input_layer", [None, 4])),
                layer("Add", "add", {}, [kt("dense", [None, 3]), kt("dense_1", [None, 3])]),
            ],
            "input_layers": [["input_layer", 0, 0]],
            "output_layers": [["add", 0, 0]],
        },
    }
    w = {"dense": [f32(4, 3), f32(3)], "dense_1": [f32(4, 3), f32(3)]}
    h5 = write_h5(tmp_path / "w.h5", w)
    path = tmp_path / "f.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.write(h5, "model.weights.h5")
    model = keras.models.load_model(path)
    x = f32(2, 4)
    (k1, b1), (k2, b2) = w["dense"], w["dense_1"]
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ k1 + b1 + x @ k2 + b2, rtol=1e-5, atol=1e-6)


def test_functional_slots_follow_keras_depth_order(tmp_path):
    """Keras numbers a functional model's layers by depth (inputs first), then by when a walk back from
    the outputs first meets them; convolab's own graph order differs here (C is met before A)."""
    i = keras.Input((4,))
    c = L.Dense(5, name="C")(i)
    a = L.Dense(6, name="A")(i)
    b = L.Dense(5, name="B")(a)
    model = keras.Model(i, L.Dense(2, name="D")(L.Concatenate()([c, b])))
    from convolab.saving.keras_h5 import layer_slots

    slots = {layer.name: path for path, layer in layer_slots(model)}
    assert (slots["A"], slots["C"], slots["B"], slots["D"]) == (
        "layers/dense",
        "layers/dense_1",
        "layers/dense_2",
        "layers/dense_3",
    )
    w = {
        "dense": [f32(4, 6), f32(6)],
        "dense_1": [f32(4, 5), f32(5)],
        "dense_2": [f32(6, 5), f32(5)],
        "dense_3": [f32(10, 2), f32(2)],
    }
    model.load_weights(write_h5(tmp_path / "m.weights.h5", w))
    np.testing.assert_array_equal(model.get_layer("A").params["kernel"], w["dense"][0])
    np.testing.assert_array_equal(model.get_layer("C").params["kernel"], w["dense_1"][0])


def nested_functional():
    i = keras.Input((3, 3, 2))
    inner_in = keras.Input((3, 3, 2))
    inner = keras.Model(inner_in, L.BatchNormalization()(L.Conv2D(3, 2)(inner_in)))
    return keras.Model(i, L.Dense(2)(L.Flatten()(inner(i))))


def test_nested_functional_round_trip(tmp_path):
    model = nested_functional()
    x = RNG.random((2, 3, 3, 2)).astype("float32")
    for w in model.weights:
        w.assign(RNG.random(w.shape) + 0.5)
    y = model.predict(x, verbose=0)
    model.save_weights(tmp_path / "n.weights.h5")
    with h5py.File(tmp_path / "n.weights.h5") as f:
        assert "layers/functional/layers/batch_normalization/vars/3" in f
    other = nested_functional()
    other.load_weights(tmp_path / "n.weights.h5")
    np.testing.assert_array_equal(other.predict(x, verbose=0), y)
    model.save(tmp_path / "n.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "n.keras").predict(x, verbose=0), y)


def test_output_of_a_nested_functional_counts_its_built_in_node(tmp_path):
    """Keras's Functional.get_config numbers a nested functional model's nodes from 1 in
    output_layers (its built-in node is 0); inbound nodes count from 0."""
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, L.Dense(2)(inner_in))
    i = keras.Input((4,))
    model = keras.Model(i, inner(L.Dense(4)(i)))
    x = f32(3, 4)
    y = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        config = json.loads(zf.read("config.json"))["config"]
    assert config["output_layers"] == [[inner.name, 1, 0]]
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0), y)


def test_regularizers_and_constraints_cross_as_keras_objects(tmp_path):
    def make():
        return keras.Sequential(
            [
                keras.Input((4,)),
                L.Dense(3, kernel_regularizer="l2", kernel_constraint=keras.constraints.MaxNorm(2.0)),
                L.Dense(2, bias_regularizer=keras.regularizers.L1(0.5)),
            ]
        )

    model = make()
    model.save(tmp_path / "r.keras")
    with zipfile.ZipFile(tmp_path / "r.keras") as zf:
        layers = json.loads(zf.read("config.json"))["config"]["layers"]
    assert layers[1]["config"]["kernel_regularizer"] == {
        "module": "keras.regularizers",
        "class_name": "L2",
        "config": {"l2": 0.01},
        "registered_name": None,
    }
    assert layers[1]["config"]["kernel_constraint"]["module"] == "keras.constraints"
    loaded = keras.models.load_model(tmp_path / "r.keras")
    assert [l.get_config() for l in loaded.layers] == [l.get_config() for l in model.layers]


def test_what_keras_3_15_writes_loads(tmp_path):
    """Keras 3.15 adds input_axes/output_axes (null) to Glorot initializers, renorm keys (off) to
    BatchNormalization, ``training: false`` and ``mask: null`` to a node's kwargs and shared_object_id
    to a DTypePolicy several layers share; each means what convolab does."""
    policy = {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
        "shared_object_id": 140687542186320,
    }
    glorot = {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": None, "input_axes": None, "output_axes": None},
        "registered_name": None,
    }

    def layer(cls, name, config, args, kwargs=None):
        return {
            "module": "keras.layers",
            "class_name": cls,
            "registered_name": None,
            "name": name,
            "config": {"name": name, "trainable": True, "dtype": policy, **config},
            "inbound_nodes": [{"args": [args], "kwargs": kwargs or {"mask": None}}],
        }

    bn = {
        "axis": -1,
        "momentum": 0.99,
        "epsilon": 0.001,
        "center": True,
        "scale": True,
        "synchronized": False,
        "renorm": False,
        "renorm_clipping": None,
        "renorm_momentum": 0.99,
    }
    config = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "registered_name": "Functional",
        "config": {
            "name": "functional",
            "trainable": True,
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "registered_name": None,
                    "name": "x",
                    "inbound_nodes": [],
                    "config": {
                        "batch_shape": [None, 4],
                        "dtype": "float32",
                        "sparse": False,
                        "ragged": False,
                        "name": "x",
                        "optional": False,
                    },
                },
                layer(
                    "Dense",
                    "dense",
                    {"units": 3, "activation": "linear", "use_bias": True, "kernel_initializer": glorot},
                    kt("x", [None, 4]),
                ),
                layer("BatchNormalization", "bn", bn, kt("dense", [None, 3])),
                layer(
                    "Dropout",
                    "drop",
                    {"rate": 0.5, "seed": None, "noise_shape": None},
                    kt("bn", [None, 3]),
                    {"training": False},
                ),
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["drop", 0, 0]],
        },
    }
    w = {
        "dense": [f32(4, 3), f32(3)],
        "batch_normalization": [f32(3), f32(3), f32(3), np.abs(f32(3)) + 0.5],
        "dropout": [],
    }
    path = tmp_path / "k315.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.write(write_h5(tmp_path / "w.h5", w), "model.weights.h5")
    model = keras.models.load_model(path)
    x = f32(2, 4)
    gamma, beta, mean, var = w["batch_normalization"]
    z = x @ w["dense"][0] + w["dense"][1]
    np.testing.assert_allclose(
        model.predict(x, verbose=0), gamma * (z - mean) / np.sqrt(var + 1e-3) + beta, rtol=1e-5, atol=1e-5
    )
    for key, value, message in (("renorm", True, "renorm"), ("renorm_momentum", 2.0, "renorm_momentum")):
        config["config"]["layers"][2]["config"][key] = value
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("config.json", json.dumps(config))
            zf.write(tmp_path / "w.h5", "model.weights.h5")
        with pytest.raises(ModelFileError, match=message):
            keras.models.load_model(path)
        config["config"]["layers"][2]["config"][key] = bn[key]
