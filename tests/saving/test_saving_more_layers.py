"""GlobalAveragePooling2D, GlobalMaxPooling2D, Reshape and Rescaling through the model file
(strict schema, exact configs) and through ONNX (onnxruntime against predict)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import convolab
from convolab import keras
from convolab.saving import ModelFileError, load_model
from support.model_files import header_of, write_raw
from support.onnx_check import check_export

L = keras.layers


def new_layers_model(keepdims=False):
    return keras.Sequential(
        [
            L.Rescaling(1 / 127.5, offset=-1.0, input_shape=(8, 8, 2)),
            L.Conv2D(4, 3, activation="relu"),
            L.GlobalMaxPooling2D(keepdims=keepdims),
            L.Reshape((-1,)),
            L.Dense(18),
            L.Reshape((3, 3, 2)),
            L.Conv2D(3, 2, padding="same"),
            L.GlobalAveragePooling2D(),
            L.Dense(3, activation="softmax"),
        ]
    )


def images(shape, n=5, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n,) + shape).astype(np.float32)


def trained_model(keepdims=False):
    convolab.set_random_seed(3)
    model = new_layers_model(keepdims)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    x = images((8, 8, 2), n=16)
    model.fit(x, np.arange(16) % 3, epochs=1, batch_size=8, verbose=0)
    return model, x


# -- model file ----------------------------------------------------------------------
@pytest.mark.parametrize("keepdims", [False, True])
def test_round_trip_predicts_the_same(tmp_path, keepdims):
    model, x = trained_model(keepdims)
    path = tmp_path / "m.convolab"
    model.save(path)
    loaded = load_model(path)
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert [l.get_config() for l in loaded.layers] == [l.get_config() for l in model.layers]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # saving the loaded model again gives the same bytes
    loaded.save(tmp_path / "again.convolab")
    assert (tmp_path / "again.convolab").read_bytes() == path.read_bytes()


def test_saved_configs_are_keras_s(tmp_path):
    keras.backend.clear_session()
    model, _ = trained_model()
    model.save(tmp_path / "m.convolab")
    header, _ = header_of(tmp_path / "m.convolab")
    layers = json.loads(header["__metadata__"]["convolab"])["model"]["config"]["layers"]
    configs = {entry["config"]["name"]: (entry["class_name"], entry["config"]) for entry in layers}
    cls, cfg = configs["rescaling"]
    assert cls == "Rescaling" and cfg["scale"] == 1 / 127.5 and cfg["offset"] == -1.0
    cls, cfg = configs["global_max_pooling2d"]
    assert cls == "GlobalMaxPooling2D" and cfg["keepdims"] is False and cfg["data_format"] == "channels_last"
    assert configs["reshape_1"] == (
        "Reshape",
        {"name": "reshape_1", "trainable": True, "dtype": "float32", "target_shape": [3, 3, 2]},
    )


def _layer_cfg(doc, class_name):
    return next(e["config"] for e in doc["model"]["config"]["layers"] if e["class_name"] == class_name)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda d: _layer_cfg(d, "GlobalMaxPooling2D").update(data_format="channels_first"), "data_format"),
        (lambda d: _layer_cfg(d, "GlobalMaxPooling2D").update(keepdims=1), "keepdims"),
        (lambda d: _layer_cfg(d, "GlobalAveragePooling2D").pop("keepdims"), "missing key"),
        (lambda d: _layer_cfg(d, "GlobalAveragePooling2D").update(pool_size=[2, 2]), "unknown key"),
        (lambda d: _layer_cfg(d, "Reshape").update(target_shape=[-1, -1]), "target_shape"),
        (lambda d: _layer_cfg(d, "Reshape").update(target_shape=[0, 4]), "target_shape"),
        (lambda d: _layer_cfg(d, "Reshape").update(target_shape=[-3]), "target_shape"),
        (lambda d: _layer_cfg(d, "Reshape").update(target_shape="(-1,)"), "target_shape"),
        (lambda d: _layer_cfg(d, "Reshape").update(target_shape=[1] * 7), "target_shape"),
        (lambda d: _layer_cfg(d, "Reshape").update(target_shape=[2**40]), "target_shape"),
        (lambda d: _layer_cfg(d, "Reshape").update(target_shape=[5, -1]), "not a multiple"),
        (lambda d: _layer_cfg(d, "Reshape").update(target_shape=[7]), "total size"),
        (lambda d: _layer_cfg(d, "Rescaling").update(scale="1/255"), "scale"),
        (lambda d: _layer_cfg(d, "Rescaling").update(scale=True), "scale"),
        (lambda d: _layer_cfg(d, "Rescaling").update(offset=10**400), "offset"),
        (lambda d: _layer_cfg(d, "Rescaling").pop("offset"), "missing key"),
        (lambda d: _layer_cfg(d, "Rescaling").update(function="eval"), "unknown key"),
        (lambda d: d["model"]["config"]["layers"][0].update(class_name="GlobalAvgPool2D"), "class_name"),
    ],
)
def test_crafted_configs_are_refused(tmp_path, edit, match):
    model, _ = trained_model()
    path = tmp_path / "m.convolab"
    model.save(path)
    header, payload = header_of(path)
    doc = json.loads(header["__metadata__"]["convolab"])
    edit(doc)
    write_raw(path, dict(header, __metadata__={"convolab": json.dumps(doc)}), payload)
    with pytest.raises(ModelFileError, match=match):
        load_model(path)


# -- ONNX ------------------------------------------------------------------------------


def normal_images(shape, n=3, seed=1):
    return np.random.default_rng(seed).normal(size=(n,) + shape).astype(np.float32)


@pytest.mark.parametrize("cls", [L.GlobalAveragePooling2D, L.GlobalMaxPooling2D], ids=lambda c: c.__name__)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("after_conv", [False, True], ids=["nhwc", "after-conv"])
def test_global_pooling(tmp_path, cls, keepdims, after_conv):
    # Straight on the NHWC input (ReduceMean/ReduceMax over axes 1, 2) and after a Conv2D,
    # whose output is NCHW (GlobalAveragePool/GlobalMaxPool); then a Dense on the pooled channels.
    head = [L.Conv2D(4, 3, padding="same", input_shape=(6, 5, 3))] if after_conv else []
    kw = {} if after_conv else {"input_shape": (6, 5, 3)}
    model = keras.Sequential(head + [cls(keepdims=keepdims, **kw), L.Dense(2)])
    check_export(model, tmp_path, normal_images((6, 5, 3)))


@pytest.mark.parametrize("cls", [L.GlobalAveragePooling2D, L.GlobalMaxPooling2D], ids=lambda c: c.__name__)
def test_global_pooling_keepdims_as_the_output(tmp_path, cls):
    model = keras.Sequential([L.Conv2D(3, 2, input_shape=(5, 5, 2)), cls(keepdims=True)])
    check_export(model, tmp_path, normal_images((5, 5, 2)))


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [L.Reshape((3, 4), input_shape=(12,)), L.Dense(2)],
        lambda: [L.Reshape((-1, 2, 2), input_shape=(12,)), L.Conv2D(2, 2, padding="same")],
        lambda: [L.Dense(18, input_shape=(5,)), L.Reshape((3, 3, 2)), L.Conv2D(2, 2), L.Flatten(), L.Dense(3)],
        # after a Conv2D (NCHW inside the graph) Reshape must still read NHWC order
        lambda: [L.Conv2D(3, 2, input_shape=(4, 4, 2)), L.Reshape((-1,)), L.Dense(2)],
        lambda: [L.Conv2D(3, 2, input_shape=(4, 4, 2)), L.Reshape((9, 3)), L.Dense(2)],
    ],
    ids=["vector-to-matrix", "to-image", "dense-to-conv", "after-conv-flat", "after-conv-matrix"],
)
def test_reshape(tmp_path, layers):
    model = keras.Sequential(layers())
    shape = model.input_shape[1:]
    check_export(model, tmp_path, normal_images(shape))


@pytest.mark.parametrize("scale,offset", [(1 / 255, 0.0), (1 / 127.5, -1.0), (-0.5, 2.0)])
def test_rescaling(tmp_path, scale, offset):
    model = keras.Sequential(
        [
            L.Rescaling(scale, offset, input_shape=(5, 5, 2)),
            L.Conv2D(3, 2),
            L.Rescaling(scale, offset),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    check_export(model, tmp_path, images((5, 5, 2)), atol=1e-4)


def test_trained_model_with_every_new_layer(tmp_path):
    model, x = trained_model()
    check_export(model, tmp_path, x)
