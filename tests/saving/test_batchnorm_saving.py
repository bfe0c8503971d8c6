"""BatchNormalization through the model file (strict schema) and ONNX (folded or a node)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convolab import keras
from convolab.saving import ModelFileError, load_model
from support.model_files import header_of, write_raw
from support.onnx_check import run_onnx

L = keras.layers


def bn_model(dtype="float32"):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 2), dtype=dtype),
            L.Conv2D(4, 3, padding="same", use_bias=False, dtype=dtype),
            L.BatchNormalization(momentum=0.9, dtype=dtype),
            L.ReLU(dtype=dtype),
            L.MaxPooling2D(dtype=dtype),
            L.Flatten(dtype=dtype),
            L.Dense(6, dtype=dtype),
            L.BatchNormalization(center=False, epsilon=1e-5, dtype=dtype),
            L.Dense(3, activation="softmax", dtype=dtype),
        ]
    )


def trained(dtype="float32"):
    model = bn_model(dtype)
    model.compile(keras.optimizers.Adam(learning_rate=0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 8, 8, 2)).astype(dtype)
    y = rng.integers(0, 3, 32)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    return model, x, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_predicts_identically_and_keeps_moving_statistics(tmp_path, dtype):
    model, x, y = trained(dtype)
    path = tmp_path / "m.convolab"
    model.save(path)
    again = load_model(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    bn = again.layers[1]
    assert bn.get_config() == model.layers[1].get_config() and bn.momentum == 0.9
    assert [type(w.value) for w in bn.non_trainable_weights] == [np.ndarray] * 2
    # the optimizer state follows the trainable weights only; training goes on identically
    again.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def graph_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 2))
    h = L.Conv2D(4, 3, padding="same", use_bias=False)(inp)
    a = L.ReLU()(L.BatchNormalization(momentum=0.9)(h))
    b = L.BatchNormalization(name="side_bn")(L.Conv2D(4, 1)(inp))
    out = L.Dense(3, activation="softmax")(L.Flatten()(L.Add()([a, b])))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(learning_rate=0.01), "sparse_categorical_crossentropy")
    return model


def test_functional_round_trip_and_resume(tmp_path):
    model = graph_model()
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(16, 8, 8, 2)).astype("float32"), rng.integers(0, 3, 16)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "g.convolab"
    model.save(path)
    again = load_model(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    again.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for w, v in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(w, v)


def test_weights_file_round_trip(tmp_path):
    model, x, _ = trained()
    path = tmp_path / "w.weights.safetensors"
    model.save_weights(path)
    fresh = bn_model()
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def _bn_cfg(doc):
    return next(l["config"] for l in doc["model"]["config"]["layers"] if l["class_name"] == "BatchNormalization")


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda d: _bn_cfg(d).update(momentum=1.5), "momentum"),
        (lambda d: _bn_cfg(d).update(epsilon=0), "epsilon"),
        (lambda d: _bn_cfg(d).update(center="yes"), "center"),
        (lambda d: _bn_cfg(d).update(axis=1), "last \\(channel\\) axis"),
        (lambda d: _bn_cfg(d).update(axis=9), "axis"),
        (lambda d: _bn_cfg(d).update(gamma_initializer="os.system"), "gamma_initializer"),
        (lambda d: _bn_cfg(d).update(renorm=True), "unknown key"),
        (lambda d: _bn_cfg(d).pop("synchronized"), "missing key"),
        (lambda d: _bn_cfg(d).update(scale=False), "optimizer state entries for 7 trainable weights"),
        (lambda d: d.update(training_state=None) or _bn_cfg(d).update(scale=False), "unexpected tensor.*gamma"),
    ],
)
def test_crafted_configs_are_refused(tmp_path, edit, match):
    model, _, _ = trained()
    path = tmp_path / "m.convolab"
    model.save(path)
    header, payload = header_of(path)
    doc = json.loads(header["__metadata__"]["convolab"])
    edit(doc)
    write_raw(path, dict(header, __metadata__={"convolab": json.dumps(doc)}), payload)
    with pytest.raises(ModelFileError, match=match):
        load_model(path)


# -- ONNX ------------------------------------------------------------------------------


def _randomise_statistics(model, seed=2):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for key, p in layer.params.items():
            if key == "moving_variance":
                p[...] = rng.uniform(0.5, 2.0, p.shape)
            elif key in ("moving_mean", "beta", "bias"):
                p[...] = rng.normal(0, 0.5, p.shape)
            elif key == "gamma":
                p[...] = rng.uniform(0.5, 1.5, p.shape)


def _export(model, tmp_path, x, atol):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    model.export(path)
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(run_onnx(path, x), expected, rtol=0, atol=atol)
    return [n.op_type for n in onnx.load(str(path)).graph.node]


CASES = {
    # name: (layers after the input, BatchNormalization nodes expected in the graph)
    "conv-folded": ([L.Conv2D(3, 3), L.BatchNormalization(), L.ReLU(), L.Flatten(), L.Dense(2)], 0),
    "conv-no-bias-folded": (
        [L.Conv2D(3, 3, use_bias=False, padding="same"), L.BatchNormalization(scale=False), L.Flatten()],
        0,
    ),
    "grouped-dilated-conv-folded": (
        [L.Conv2D(4, 1), L.Conv2D(4, 3, groups=2, dilation_rate=2), L.BatchNormalization(), L.Flatten()],
        0,
    ),
    "dense-folded": ([L.Flatten(), L.Dense(5), L.BatchNormalization(center=False), L.Dense(2)], 0),
    "after-relu-node": ([L.Conv2D(3, 3, activation="relu"), L.BatchNormalization(), L.Flatten()], 1),
    "first-layer-node": ([L.BatchNormalization(), L.Conv2D(2, 3), L.Flatten()], 1),
    "after-pool-node": (
        [L.Conv2D(3, 3), L.MaxPooling2D(), L.BatchNormalization(), L.GlobalAveragePooling2D(), L.BatchNormalization()],
        2,
    ),
    "vector-node": (
        [L.Flatten(), L.BatchNormalization(scale=False, center=False), L.Dense(2, activation="softmax")],
        1,
    ),
    "rank-3-mul-add": ([L.Reshape((12, 4)), L.BatchNormalization(), L.Flatten()], 0),
}


@pytest.mark.parametrize("name", CASES)
def test_onnx_matches_predict(tmp_path, name):
    keras.utils.set_random_seed(0)
    layers, nodes = CASES[name]
    model = keras.Sequential([keras.Input((6, 8, 1))] + layers)
    _randomise_statistics(model)
    x = np.random.default_rng(3).normal(size=(4, 6, 8, 1)).astype(np.float32)
    ops = _export(model, tmp_path, x, atol=2e-5)  # float32: folding reorders a few roundings
    assert ops.count("BatchNormalization") == nodes


def test_onnx_trained_model(tmp_path):
    model, x, _ = trained()  # float32 only: onnxruntime's CPU Conv has no double kernel
    ops = _export(model, tmp_path, x, atol=1e-5)
    assert "BatchNormalization" not in ops  # both follow a Conv2D / Dense without activation


def test_onnx_functional_graph(tmp_path):
    model = graph_model()
    _randomise_statistics(model)
    x = np.random.default_rng(5).normal(size=(4, 8, 8, 2)).astype(np.float32)
    ops = _export(model, tmp_path, x, atol=2e-5)
    # both follow a convolution whose output nothing else reads: folded, as predict folds them
    assert ops.count("BatchNormalization") == 0
