"""Functional models in convolab files: round trips, resuming training, weights by path, refusals."""

import json
import struct

import numpy as np
import pytest

import convolab
from convolab import keras
from convolab.saving import ModelFileError
from support.graph_models import images, inputs_for, nested, predictions, resnet, shared, two_in_two_out

L = keras.layers


@pytest.mark.parametrize("make", [resnet, two_in_two_out, shared, nested])
def test_round_trip_predicts_identically(tmp_path, make):
    convolab.set_random_seed(0)
    model = make()
    x = inputs_for(model)
    model.save(tmp_path / "m.convolab")
    loaded = keras.models.load_model(tmp_path / "m.convolab")
    for got, want in zip(predictions(loaded, x), predictions(model, x)):
        np.testing.assert_array_equal(got, want)
    assert [p for p, _ in loaded.named_weights()] == [p for p, _ in model.named_weights()]
    # saving the loaded model again gives the same bytes
    loaded.save(tmp_path / "again.convolab")
    assert (tmp_path / "again.convolab").read_bytes() == (tmp_path / "m.convolab").read_bytes()


def test_nested_paths_and_sharing_survive(tmp_path):
    model = nested()
    model.save(tmp_path / "m.convolab")
    loaded = keras.models.load_model(tmp_path / "m.convolab")
    paths = [p for p, _ in loaded.named_weights()]
    assert paths == [p for p, _ in model.named_weights()]
    assert [p.split("/")[0] for p in paths] == ["block", "block", "head", "head"]
    assert isinstance(loaded.get_layer("head"), keras.models.Sequential)
    block_nodes = [n for n in loaded.graph()[0] if n.layer is loaded.get_layer("block")]
    assert len(block_nodes) == 2  # still one block, called twice
    assert len(loaded.weights) == len(model.weights)


def test_named_weights_follow_weights_order():
    for make in (resnet, two_in_two_out, shared, nested):
        model = make()
        assert [id(w) for _, w in model.named_weights()] == [id(w.value) for w in model.weights]


def test_training_resumes_bitwise(tmp_path):
    x, y = images((8, 8, 3), 24), np.arange(24) % 3

    def fresh():
        convolab.set_random_seed(7)
        model = resnet()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
        return model

    straight = fresh()
    straight.fit(x, y, epochs=3, batch_size=8, verbose=0)
    first = fresh()
    first.fit(x, y, epochs=1, batch_size=8, verbose=0)
    first.save(tmp_path / "ckpt.convolab")
    resumed = keras.models.load_model(tmp_path / "ckpt.convolab")
    assert resumed.optimizer.iterations == first.optimizer.iterations
    resumed.fit(x, y, epochs=3, initial_epoch=1, batch_size=8, verbose=0)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_save_weights_load_weights_functional(tmp_path):
    convolab.set_random_seed(1)
    source, target = two_in_two_out(), two_in_two_out()
    source.save_weights(tmp_path / "w.weights.safetensors")
    target.load_weights(tmp_path / "w.weights.safetensors")
    x = inputs_for(source)
    for a, b in zip(predictions(target, x), predictions(source, x)):
        np.testing.assert_array_equal(a, b)
    # a model file's weights load too
    source.save(tmp_path / "m.convolab")
    target.load_weights(tmp_path / "m.convolab")


class Tiny(keras.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden = L.Dense(4, activation="relu", name="hidden")
        self.out = L.Dense(units, name="out")

    def call(self, x, training=False):
        return self.out(self.hidden(x))


def test_subclassed_model_weights_round_trip_and_save_refused(tmp_path):
    convolab.set_random_seed(2)
    x = images((5,))
    a, b = Tiny(), Tiny()
    a(x), b(x)
    a.save_weights(tmp_path / "w.convolab")
    b.load_weights(tmp_path / "w.convolab")
    np.testing.assert_array_equal(b.predict(x, verbose=0), a.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"subclassed model \(Tiny\).*save_weights"):
        a.save(tmp_path / "m.convolab")
    with pytest.raises(ValueError, match=r"subclassed model \(Tiny\)"):
        a.export(tmp_path / "m.onnx")
    c = Tiny(units=4)
    c(x)
    with pytest.raises(ModelFileError, match=r"'out/kernel' has shape \(4, 3\).*expects \(4, 4\)"):
        c.load_weights(tmp_path / "w.convolab")
    unbuilt = Tiny()
    with pytest.raises(ModelFileError, match="is it built"):
        unbuilt.load_weights(tmp_path / "w.convolab")


def test_weights_path_mismatch_named(tmp_path):
    model = shared()
    model.save_weights(tmp_path / "w.convolab")
    other = two_in_two_out()
    with pytest.raises(ModelFileError, match="holds .* weights|expects"):
        other.load_weights(tmp_path / "w.convolab")


class Doubler(L.Layer):
    def call(self, x):
        return keras.ops.multiply(x, 2.0)


def test_custom_layer_refused_with_its_class(tmp_path):
    inp = keras.Input(shape=(4,))
    model = keras.Model(inp, L.Dense(2)(Doubler()(inp)))
    with pytest.raises(ValueError, match=r"Doubler.*save_weights"):
        model.save(tmp_path / "m.convolab")
    model.save_weights(tmp_path / "w.convolab")  # weights alone are fine
    assert not (tmp_path / "m.convolab").exists()


# -- tampered files ------------------------------------------------------------------
def _split(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + n])
    return header, json.loads(header["__metadata__"]["convolab"]), blob[8 + n :]


def _join(header, doc, payload):
    header = dict(header, __metadata__={"convolab": json.dumps(doc)})
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + payload


def _entry(doc, name):
    return next(e for e in doc["model"]["config"]["layers"] if e["name"] == name)


def _tamper(doc):
    layers = doc["model"]["config"]["layers"]
    names = [e["name"] for e in layers]
    add = next(e for e in layers if e["class_name"] == "Add")
    convs = [e for e in layers if e["class_name"] == "Conv2D"]
    dense = next(e for e in layers if e["class_name"] == "Dense")
    return {
        "unknown layer": (lambda: add["inbound_nodes"][0][0].__setitem__(0, "nowhere"), "unknown layer 'nowhere'"),
        "node index": (lambda: add["inbound_nodes"][0][0].__setitem__(1, 7), "node index 7"),
        "tensor index": (lambda: add["inbound_nodes"][0][0].__setitem__(2, 3), "tensor index 3"),
        "real cycle": (lambda: convs[1]["inbound_nodes"][0].__setitem__(0, [convs[2]["name"], 0, 0]), "cycle"),
        "unknown class": (lambda: add.__setitem__("class_name", "Lambda"), "Lambda"),
        "wrong shape": (lambda: convs[1]["config"].__setitem__("filters", 5), "shape|cannot be merged|does not fit"),
        "dead node": (
            lambda: dense["inbound_nodes"].append(dense["inbound_nodes"][0]),
            "does not lead to any output|built for",
        ),
        "bad input ref": (
            lambda: doc["model"]["config"].__setitem__("input_layers", [dense["name"], 0, 0]),
            "InputLayer",
        ),
        "slash name": (lambda: dense.__setitem__("name", "a/b"), "without '/'"),
        "never called": (lambda: dense.__setitem__("inbound_nodes", []), "never called|unknown"),
        "duplicate name": (lambda: layers.append(dict(layers[-1])), "two layers are named"),
    }, names


@pytest.mark.parametrize(
    "case",
    [
        "unknown layer",
        "node index",
        "tensor index",
        "real cycle",
        "unknown class",
        "wrong shape",
        "dead node",
        "bad input ref",
        "slash name",
        "never called",
        "duplicate name",
    ],
)
def test_tampered_graph_refused(tmp_path, case):
    model = resnet()
    model.save(tmp_path / "m.convolab")
    header, doc, payload = _split((tmp_path / "m.convolab").read_bytes())
    edits, _ = _tamper(doc)
    edit, message = edits[case]
    edit()
    (tmp_path / "bad.convolab").write_bytes(_join(header, doc, payload))
    with pytest.raises(ModelFileError, match=message):
        keras.models.load_model(tmp_path / "bad.convolab")


def test_too_deep_nesting_refused(tmp_path):
    model = nested()
    model.save(tmp_path / "m.convolab")
    header, doc, payload = _split((tmp_path / "m.convolab").read_bytes())
    block = _entry(doc, "block")
    inner = block["config"]
    for _ in range(10):  # wrap the block in itself ten times
        inner = {
            "name": "wrap",
            "trainable": True,
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "i",
                    "config": {"name": "i", "dtype": "float32", "batch_shape": [None, 6, 6, 2]},
                    "inbound_nodes": [],
                },
                {"class_name": "Functional", "name": inner["name"], "config": inner, "inbound_nodes": [[["i", 0, 0]]]},
            ],
            "input_layers": ["i", 0, 0],
            "output_layers": [inner["name"], 0, 0],
        }
    block["config"] = inner
    block["name"] = "wrap"
    (tmp_path / "bad.convolab").write_bytes(_join(header, doc, payload))
    with pytest.raises(ModelFileError, match="nested more than"):
        keras.models.load_model(tmp_path / "bad.convolab")


def test_shared_layer_with_incompatible_shapes_refused(tmp_path):
    model = shared()
    model.save(tmp_path / "m.convolab")
    header, doc, payload = _split((tmp_path / "m.convolab").read_bytes())
    inputs = [e for e in doc["model"]["config"]["layers"] if e["class_name"] == "InputLayer"]
    inputs[1]["config"]["batch_shape"] = [None, 6]
    (tmp_path / "bad.convolab").write_bytes(_join(header, doc, payload))
    with pytest.raises(ModelFileError, match=r"built for input shape \(None, 5\).*\(None, 6\)"):
        keras.models.load_model(tmp_path / "bad.convolab")


def test_sequential_files_unchanged(tmp_path):
    """A Sequential file is still written in the index format (its bytes do not depend on this code)."""
    convolab.set_random_seed(0)
    model = keras.models.Sequential([L.Dense(3, input_shape=(4,))])
    model.save(tmp_path / "s.convolab")
    header, doc, _ = _split((tmp_path / "s.convolab").read_bytes())
    assert doc["model"]["class_name"] == "Sequential" and set(header) - {"__metadata__"} == {
        "layers.0.kernel",
        "layers.0.bias",
    }
