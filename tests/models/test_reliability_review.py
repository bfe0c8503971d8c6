"""Issue 20, item 9 (found by review): defects no earlier test could see.

- ModelCheckpoint saved through the saving functions, skipping the model's move of its weights
  to the host: on a GPU every checkpoint failed. The fake CuPy now refuses implicit conversion
  to NumPy as CuPy does, so the device tests see such bugs. What it then exposed: bilinear
  resizing (UpSampling2D 'bilinear', RandomCrop) multiplied device images by host matrices;
  TensorBoard's weight histograms converted device weights with np.asarray; a layer built by
  its first call (every layer of a subclassed model) moved its weights to the device before
  the build made them, so they stayed on the host; moving weights to the device replaced the
  arrays but not the Variable a user's layer keeps (``self.w = self.add_weight(...)``).
  The fake's own faults, fixed with it: ``cupy.asarray(a)`` copied a device array (CuPy returns
  ``a``), so every call re-placed the weights and a functional model got no gradients on the
  device; a NumPy array of split points was refused (CuPy reads it on the host).
- BatchNormalization folding had three rules: functional predict folded after Conv2D,
  DepthwiseConv2D and Dense; the ONNX export of a Sequential after Conv2D and Dense only (by
  class name); Sequential predict never. ``folding.folds`` is now the one rule all three ask.
- ``fit`` kept a "validation already prepared" flag on the model that an exception between
  the split and the validation batches left behind. (Malloc tuning at the first fit instead of
  at import is tested in test_allocator.py.)
"""

import ast
import os

import numpy as np
import pytest

from support import fake_cupy
from convolab import _gpu, backend, keras, random
from convolab.kernels import cuda
from support.paths import SRC as SRC_DIR

SRC = str(SRC_DIR / "convolab")


@pytest.fixture
def fake_gpu(monkeypatch):
    mod = fake_cupy.make_module()
    monkeypatch.setattr(_gpu, "_import_cupy", lambda: mod)
    monkeypatch.setattr(cuda, "_modules", {})
    monkeypatch.setattr(random, "_device_generator", None)
    backend.set_device("gpu")
    try:
        yield mod
    finally:
        backend.set_device("cpu")
        _gpu.cupy = None


def _conv_bn_model(input_shape=(8, 8, 1), classes=3):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(classes),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"])
    return model


def _data(n=16, shape=(8, 8, 1), classes=3):
    return np.random.default_rng(0).random((n,) + shape, dtype=np.float32), np.arange(n) % classes


# -- the fake device is as strict as CuPy -------------------------------------------------------
def test_fake_cupy_refuses_implicit_conversion_as_cupy_does():
    cp = fake_cupy.make_module()
    a = cp.asarray(np.arange(6, dtype=np.float32))
    for convert in (np.asarray, np.array, lambda v: np.zeros(6, np.float32).__setitem__(slice(None), v)):
        with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
            convert(a)
    with pytest.raises(TypeError, match="host-device mixing"):
        a + np.ones(6, np.float32)
    assert type(a.get()) is np.ndarray and type(cp.asnumpy(a)) is np.ndarray  # the explicit ways back
    assert isinstance(np.concatenate([a, a]), cp.ndarray)  # NumPy functions answer on the device
    assert float(a.sum()) == 15.0 and isinstance(a.sum(), cp.ndarray)


def test_fake_cupy_asarray_of_a_device_array_is_that_array():
    cp = fake_cupy.make_module()
    a = cp.asarray(np.arange(6, dtype=np.float32))
    assert cp.asarray(a) is a and cp.asarray(a, dtype=np.float64) is not a
    assert [p.get().tolist() for p in cp.split(a, np.array([2, 4]))] == [[0, 1], [2, 3], [4, 5]]


def _functional_losses():
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(8, 8, 1))
    h = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inp))
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(8)
    return model.fit(x, y, epochs=3, verbose=0).history["loss"]


def test_a_functional_model_trains_on_the_device(fake_gpu):
    backend.set_device("cpu")
    want = _functional_losses()
    backend.set_device("gpu")
    got = _functional_losses()
    assert got[-1] < got[0]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def _upsample_and_crop(x, dy):
    """UpSampling2D 'bilinear' (output and input gradient) and RandomCrop at inference, which
    resizes the centred window of the target's aspect ratio."""
    up = keras.layers.UpSampling2D(2, interpolation="bilinear")
    y = up.call(backend.to_device(x), training=True)
    dx = up.backward(backend.to_device(dy))
    crop = keras.layers.RandomCrop(6, 5).call(backend.to_device(x), training=False)
    return [backend.to_host(a) for a in (y, dx, crop)]


def test_bilinear_resizing_on_the_device(fake_gpu):
    rng = np.random.default_rng(2)
    x, dy = rng.random((2, 8, 8, 3), dtype=np.float32), rng.random((2, 16, 16, 3), dtype=np.float32)
    backend.set_device("cpu")
    want = _upsample_and_crop(x, dy)
    backend.set_device("gpu")
    for got, w in zip(_upsample_and_crop(x, dy), want):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)


def test_tensorboard_histograms_from_the_device(fake_gpu, tmp_path):
    pytest.importorskip("tensorboardX")
    model = _conv_bn_model()
    x, y = _data()
    model.fit(
        x,
        y,
        epochs=1,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(tmp_path / "logs", histogram_freq=1, write_images=True)],
    )
    assert any(name.startswith("events") for _, _, files in os.walk(tmp_path / "logs") for name in files)


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(2, 3)
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(3)

    def call(self, inputs, training=False):
        return self.dense(self.flatten(self.conv(inputs)))


def _subclassed_losses():
    keras.utils.set_random_seed(0)
    model = _Subclassed()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(8)
    return model.fit(x, y, epochs=2, verbose=0).history["loss"], model


def test_layers_built_by_their_first_call_compute_on_the_device(fake_gpu):
    backend.set_device("cpu")
    want, _ = _subclassed_losses()
    backend.set_device("gpu")
    got, model = _subclassed_losses()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert all(isinstance(w.value, fake_gpu.ndarray) for w in model.weights)
    layer = keras.layers.Dense(2)  # a direct call too
    assert isinstance(layer(np.ones((1, 3), np.float32)), fake_gpu.ndarray)


class _Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")
        self.built = True

    def call(self, inputs):
        return keras.ops.multiply(inputs, self.w)


def _user_layer_losses():
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(8, 8, 1))
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(_Scale()(inp))))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(8)
    return model.fit(x, y, epochs=2, verbose=0).history["loss"], model


def test_a_users_variable_follows_its_weight_to_the_device(fake_gpu):
    backend.set_device("cpu")
    want, _ = _user_layer_losses()
    backend.set_device("gpu")
    got, model = _user_layer_losses()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    scale = next(layer for layer in model.layers if isinstance(layer, _Scale))
    assert scale.w.value is scale.params["w"] and isinstance(scale.w.value, fake_gpu.ndarray)


# -- ModelCheckpoint --------------------------------------------------------------------------
@pytest.mark.parametrize("weights_only", [False, True])
def test_model_checkpoint_saves_from_the_device(fake_gpu, tmp_path, weights_only):
    model = _conv_bn_model()
    x, y = _data()
    path = tmp_path / "ck-{epoch}.convolab"
    cb = keras.callbacks.ModelCheckpoint(path, save_weights_only=weights_only)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[cb])
    assert all(isinstance(w.value, fake_gpu.ndarray) for w in model.weights)  # still on the device
    backend.set_device("cpu")
    if weights_only:
        loaded = _conv_bn_model()
        loaded.build((None, 8, 8, 1))
        loaded.load_weights(tmp_path / "ck-2.convolab")
    else:
        loaded = keras.models.load_model(tmp_path / "ck-2.convolab")
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_model_checkpoint_calls_the_models_own_save(tmp_path):
    model = _conv_bn_model()
    x, y = _data()
    calls = []
    model.save = lambda path, **kw: calls.append(("save", os.path.basename(path), kw))
    model.save_weights = lambda path, **kw: calls.append(("save_weights", os.path.basename(path), kw))
    cbs = [
        keras.callbacks.ModelCheckpoint(tmp_path / "m.convolab"),
        keras.callbacks.ModelCheckpoint(tmp_path / "w.convolab", save_weights_only=True),
    ]
    model.fit(x, y, epochs=1, verbose=0, callbacks=cbs)
    assert calls == [("save", "m.convolab", {"include_optimizer": True}), ("save_weights", "w.convolab", {})]


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def test_callbacks_import_nothing_from_saving():
    """callbacks -> saving closed the cycle models -> callbacks -> saving -> models."""
    folder = os.path.join(SRC, "callbacks")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            bad = [m for m in _imports(os.path.join(folder, name)) if "saving" in m or m.startswith("..models")]
            assert not bad, f"callbacks/{name} imports {bad}"


# -- fit's validation split: no state survives an exception ----------------------------------
def test_a_failed_fit_leaves_no_prepared_validation_behind(monkeypatch):
    from convolab.models import data_adapter

    model = _conv_bn_model()
    x, y = _data(20)
    real = data_adapter.to_device_once

    def fail_once(*args, **kwargs):
        monkeypatch.setattr(data_adapter, "to_device_once", real)
        raise KeyboardInterrupt  # stopped between the split and the validation batches

    monkeypatch.setattr(data_adapter, "to_device_once", fail_once)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, validation_split=0.25, epochs=1, verbose=0)
    # the next fit's (x, y) validation data must be prepared, not taken as an earlier split's
    hist = model.fit(x, y, validation_data=(x[:5], list(y[:5])), epochs=1, verbose=0)
    assert np.isfinite(hist.history["val_loss"][0])
    assert not any("validation" in k for k in vars(model))


# -- BatchNormalization folding: one rule in the three places that fold ----------------------
FOLD_CASES = {  # layers after Input((6, 6, 2)); the pairs folds() allows
    "conv": lambda L: [L.Conv2D(4, 3), L.BatchNormalization(), L.ReLU(), L.Flatten(), L.Dense(3)],
    "depthwise": lambda L: [L.DepthwiseConv2D(3, depth_multiplier=2), L.BatchNormalization(), L.Flatten(), L.Dense(3)],
    "dense": lambda L: [L.Flatten(), L.Dense(5), L.BatchNormalization(), L.Dense(3)],
    "activated": lambda L: [L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(), L.Flatten(), L.Dense(3)],
    "last": lambda L: [L.Flatten(), L.Dense(3), L.BatchNormalization()],
}


def _fold_models(case):
    """The same layers as a Sequential and as a functional graph, with moving statistics that
    are not the identity."""
    models = []
    for functional in (False, True):
        keras.utils.set_random_seed(4)
        layers = FOLD_CASES[case](keras.layers)
        if functional:
            inp = keras.Input(shape=(6, 6, 2))
            h = inp
            for layer in layers:
                h = layer(h)
            model = keras.Model(inp, h)
        else:
            model = keras.Sequential([keras.Input(shape=(6, 6, 2))] + layers)
        rng = np.random.default_rng(5)
        for layer in layers:
            for key in ("moving_mean", "gamma", "beta"):
                if key in layer.params:
                    layer.params[key][...] = rng.normal(size=layer.params[key].shape)
            if "moving_variance" in layer.params:
                layer.params["moving_variance"][...] = rng.uniform(0.5, 2.0, layer.params["moving_variance"].shape)
        models.append((model, layers))
    return models


def _folds_in_predict(model, x, monkeypatch):
    from convolab.models import folding

    calls = []
    real = folding.folded_call
    monkeypatch.setattr(folding, "folded_call", lambda *a: (calls.append(a[0].name), real(*a))[1])
    out = model.predict(x, batch_size=len(x), verbose=0)
    monkeypatch.setattr(folding, "folded_call", real)
    return len(calls), out


def _folds_in_onnx(model, tmp_path):
    onnx = pytest.importorskip("onnx")
    model.export(tmp_path / "m.onnx")
    nodes = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    bn_layers = sum(type(l).__name__ == "BatchNormalization" for l in model.layers)
    return bn_layers - nodes.count("BatchNormalization")


@pytest.mark.parametrize("case", sorted(FOLD_CASES))
def test_sequential_graph_and_onnx_fold_the_same_pairs(case, tmp_path, monkeypatch):
    from convolab.models import folding

    (seq, layers), (graph, _) = _fold_models(case)
    want = 0 if case == "activated" else 1
    x = np.random.default_rng(6).random((4, 6, 6, 2), dtype=np.float32)
    seq_folds, seq_out = _folds_in_predict(seq, x, monkeypatch)
    graph_folds, graph_out = _folds_in_predict(graph, x, monkeypatch)
    assert (seq_folds, graph_folds, _folds_in_onnx(seq, tmp_path)) == (want, want, want)
    assert sum(folding.folds(a, b) for a, b in zip(layers, layers[1:])) == want
    monkeypatch.setattr(folding, "enabled", False)  # layer by layer: the same up to rounding
    unfolded = seq.predict(x, batch_size=len(x), verbose=0)
    np.testing.assert_allclose(seq_out, unfolded, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(graph_out, unfolded, rtol=1e-5, atol=1e-5)


def test_the_rule_is_the_only_rule(tmp_path, monkeypatch):
    """With folds() saying no, nothing folds anywhere: no place keeps a rule of its own."""
    from convolab.models import folding

    monkeypatch.setattr(folding, "folds", lambda layer, bn: False)
    (seq, _), (graph, _) = _fold_models("conv")
    x = np.random.default_rng(6).random((4, 6, 6, 2), dtype=np.float32)
    assert _folds_in_predict(seq, x, monkeypatch)[0] == 0
    assert _folds_in_predict(graph, x, monkeypatch)[0] == 0
    assert _folds_in_onnx(seq, tmp_path) == 0


def test_onnx_export_of_folded_pairs_computes_predict(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    for case in ("depthwise", "dense", "last"):
        (seq, _), _ = _fold_models(case)
        x = np.random.default_rng(6).random((4, 6, 6, 2), dtype=np.float32)
        seq.export(tmp_path / f"{case}.onnx")
        sess = ort.InferenceSession(str(tmp_path / f"{case}.onnx"))
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, seq.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
