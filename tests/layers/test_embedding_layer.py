"""keras.layers.Embedding: Keras 3's arguments and defaults, the keras.io text CNN
(Embedding -> Conv1D -> GlobalMaxPooling1D -> Dense) trained on the stack engine and on the tape,
the config and file round trips (.convolab, .keras, .h5, and a .keras config as Keras 3.15 writes
it), ONNX export checked in onnxruntime, and the GPU path (a fake CuPy) against the CPU."""

import json
import sys
import warnings
import zipfile

import numpy as np
import pytest

from convolab import _gpu, backend, keras, random
from convolab.autodiff import GradientTape
from convolab.kernels import cuda
from convolab.layers import registry
from convolab.models.plan import compile_plan
from convolab.saving import ModelFileError
from support import fake_cupy
from support.onnx_check import needs_onnx, run_onnx

L = keras.layers


def _token_task(n=128, length=20, vocab=10, seed=0):
    """Label 1 when the bigram (3, 7) occurs anywhere in the sequence (no accidental ones)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, (n, length))
    y = rng.integers(0, 2, n)
    for i in range(n):
        x[i, :-1][(x[i, :-1] == 3) & (x[i, 1:] == 7)] = 0
        if y[i]:
            p = rng.integers(0, length - 1)
            x[i, p : p + 2] = (3, 7)
    return x, y.astype("float32")


def _text_cnn_layers(**embedding_args):
    """keras.io "Text classification from scratch", shrunk: the same layers in the same order."""
    return [
        L.Embedding(10, 8, **embedding_args),
        L.Conv1D(16, 2, activation="relu"),
        L.GlobalMaxPooling1D(),
        L.Dense(16, activation="relu"),
        L.Dense(1, activation="sigmoid", name="predictions"),
    ]


def _functional_text_cnn(**embedding_args):
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = inputs
    for layer in _text_cnn_layers(**embedding_args):
        x = layer(x)
    return keras.Model(inputs, x)


def _fit(model, x, y, epochs=3, run_eagerly=False):
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(0.02),
        metrics=["accuracy"],
        run_eagerly=run_eagerly,
    )
    return model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0).history


# -- arguments ------------------------------------------------------------------------------------


def test_keras_defaults_and_a_lookup_worked_out_by_hand():
    keras.utils.set_random_seed(0)
    layer = L.Embedding(1000, 64)
    x = np.random.default_rng(0).integers(1000, size=(32, 10))
    y = layer(x)
    assert y.shape == (32, 10, 64) and y.dtype == np.float32
    table = layer.embeddings.numpy()
    assert table.shape == (1000, 64)
    # 'uniform' is Keras's RandomUniform(-0.05, 0.05)
    assert -0.05 <= table.min() < -0.045 and 0.045 < table.max() < 0.05
    np.testing.assert_array_equal(y, table[x])
    assert layer.get_weights()[0] is not table and len(layer.weights) == 1
    assert layer.compute_output_shape((None, 10)) == (None, 10, 64)
    # the TF "Word embeddings" tutorial calls it on a 1-D batch of indices
    assert L.Embedding(1000, 5)(np.array([1, 2, 3])).shape == (3, 5)


def test_weights_set_the_table_at_once_and_floats_holding_indices_read_the_same_rows():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    for weights in (table, [table]):
        layer = L.Embedding(4, 3, weights=weights)
        np.testing.assert_array_equal(layer.get_weights()[0], table)
    np.testing.assert_array_equal(layer(np.array([[3, 0]])), [[[9, 10, 11], [0, 1, 2]]])
    np.testing.assert_array_equal(layer(np.array([[3.0, 0.0]], np.float32)), layer(np.array([[3, 0]])))
    with pytest.raises(ValueError, match=r"Embedding 'e'.*shape \(4, 3\); got an array of shape \(3, 4\)"):
        L.Embedding(4, 3, weights=table.T, name="e")


def test_input_length_warns_and_is_ignored_as_in_keras_3():
    with pytest.warns(UserWarning, match=r"Argument `input_length` is deprecated\. Just remove it\."):
        layer = L.Embedding(10, 4, input_length=5)
    assert "input_length" not in layer.get_config()
    assert layer(np.zeros((2, 7), np.int64)).shape == (2, 7, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.Embedding(10, 4, input_length=None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mask_zero": True}, r"Embedding 'e': mask_zero=True is not supported: convolab has no masking"),
        ({"lora_rank": 4}, r"Embedding 'e': lora_rank=4 is not supported"),
        ({"input_dim": 0}, r"Embedding 'e': `input_dim` must be a positive int; got 0"),
        ({"output_dim": 2.5}, r"Embedding 'e': `output_dim` must be a positive int; got 2\.5"),
        ({"embeddings_initializer": "nope"}, r"Embedding 'e': unknown initializer 'nope'"),
    ],
)
def test_what_convolab_does_not_do_is_refused_naming_the_layer(kwargs, message):
    args = {"input_dim": 10, "output_dim": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        L.Embedding(**args, name="e")


def test_out_of_range_indices_name_the_layer_and_their_range():
    layer = L.Embedding(10, 4, name="words")
    with pytest.raises(
        ValueError,
        match=r"^Embedding 'words': indices must lie in \[0, 9\] \(input_dim=10\); got indices in \[2, 10\]$",
    ):
        layer(np.array([[2, 10]]))
    model = keras.Sequential([keras.Input((3,)), L.Embedding(10, 4, name="words")])
    with pytest.raises(ValueError, match=r"Embedding 'words'.*got indices in \[-1, 4\]"):
        model.predict(np.array([[-1, 4, 2]]), verbose=0)


# -- training --------------------------------------------------------------------------------------


def test_text_cnn_trains_on_the_stack_engine_and_matches_the_tape_step_for_step():
    x, y = _token_task()
    keras.utils.set_random_seed(0)
    stack = _functional_text_cnn()
    assert compile_plan(stack).engine == "stack"
    keras.utils.set_random_seed(0)
    tape = _functional_text_cnn()
    hist = _fit(stack, x, y, epochs=12)
    tape_hist = _fit(tape, x, y, epochs=12, run_eagerly=True)
    np.testing.assert_allclose(tape_hist["loss"], hist["loss"], rtol=1e-5)
    for a, b in zip(tape.get_weights(), stack.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert hist["loss"][-1] < 0.4 * hist["loss"][0]
    x_test, y_test = _token_task(seed=1)
    assert stack.evaluate(x_test, y_test, verbose=0)[1] > 0.9
    # the table learned the bigram: rows 3 and 7 moved away from their initial +-0.05
    table = stack.layers[1].embeddings.numpy()
    assert np.abs(table[[3, 7]]).max() > 0.1


def test_a_sequential_fed_int_data_trains_as_the_functional_model_does():
    """A Sequential casts its data to float32 (its first layer's dtype); the layer casts back."""
    x, y = _token_task(64)
    keras.utils.set_random_seed(0)
    seq = keras.Sequential([keras.Input((20,))] + _text_cnn_layers())
    keras.utils.set_random_seed(0)
    fun = _functional_text_cnn()
    np.testing.assert_array_equal(_fit(seq, x, y)["loss"], _fit(fun, x, y)["loss"])


def test_the_table_gradient_on_the_tape_is_the_sum_of_the_rows_gradients():
    layer = L.Embedding(5, 2)
    x = np.array([[1, 1, 4]])
    with GradientTape() as tape:
        y = layer(x)
        loss = keras.ops.sum(y * np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]], np.float32))
    (dw,) = tape.gradient(loss, [layer.embeddings])
    np.testing.assert_array_equal(dw, [[0, 0], [4, 6], [0, 0], [0, 0], [5, 6]])


def test_a_frozen_pretrained_table_stays_as_it_was():
    """keras.io "Using pre-trained word embeddings": Embedding(..., trainable=False) loaded with vectors."""
    x, y = _token_task(64)
    table = np.random.default_rng(3).normal(size=(10, 8)).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,))] + _text_cnn_layers(weights=table, trainable=False))
    before = [w.copy() for w in model.get_weights()]
    _fit(model, x, y, epochs=2)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], table)
    assert not np.array_equal(model.get_weights()[1], before[1])  # the Conv1D trained


def test_regularizers_and_constraints_join_training_on_both_engines():
    x, y = _token_task(64)
    args = dict(
        embeddings_regularizer=keras.regularizers.L2(0.01),
        activity_regularizer=keras.regularizers.L1(0.001),
        embeddings_constraint=keras.constraints.MaxNorm(0.5, axis=1),
    )
    hists, models = [], []
    for eager in (False, True):
        keras.utils.set_random_seed(0)
        model = _functional_text_cnn(**args)
        hists.append(_fit(model, x, y, run_eagerly=eager)["loss"])
        models.append(model)
    np.testing.assert_allclose(hists[1], hists[0], rtol=1e-5)
    table = models[0].layers[1].embeddings.numpy()
    assert np.linalg.norm(table, axis=1).max() <= 0.5 + 1e-6
    keras.utils.set_random_seed(0)
    plain = _functional_text_cnn()
    assert _fit(plain, x, y, epochs=1)["loss"][0] < hists[0][0]  # the penalties add to the loss


# -- config and files --------------------------------------------------------------------------------


def test_config_round_trips_and_passes_the_file_schema():
    layer = L.Embedding(
        20, 3, embeddings_regularizer="l2", embeddings_constraint="non_neg", activity_regularizer="l1", name="e"
    )
    cfg = layer.get_config()
    assert cfg["input_dim"] == 20 and cfg["output_dim"] == 3 and cfg["mask_zero"] is False
    assert cfg["embeddings_initializer"] == "uniform"
    assert registry.SCHEMAS["Embedding"](json.loads(json.dumps(cfg)), "config") == cfg
    again = L.Embedding.from_config(cfg)
    assert again.get_config() == cfg
    with pytest.raises(ModelFileError, match=r"config\.mask_zero: expected false"):
        registry.SCHEMAS["Embedding"]({**cfg, "mask_zero": True}, "config")


def _save_models():
    keras.utils.set_random_seed(0)
    seq = keras.Sequential([keras.Input((20,))] + _text_cnn_layers(embeddings_regularizer="l2"))
    keras.utils.set_random_seed(1)
    fun = _functional_text_cnn(embeddings_constraint=keras.constraints.MaxNorm(2.0))
    return {"sequential": seq, "functional": fun}


@pytest.mark.filterwarnings("ignore:save_model. a Keras file:UserWarning")  # the optimizer state stays behind
@pytest.mark.parametrize("kind", ["sequential", "functional"])
@pytest.mark.parametrize("ext", ["convolab", "keras", "h5"])
def test_saved_models_load_with_equal_predictions(tmp_path, kind, ext):
    if ext != "convolab":
        pytest.importorskip("h5py")  # Keras's files hold HDF5 weights
    model = _save_models()[kind]
    x, y = _token_task(32)
    _fit(model, x, y, epochs=1)
    path = tmp_path / f"m.{ext}"
    model.save(path)
    again = keras.models.load_model(path)
    emb = next(l for l in again.layers if isinstance(l, L.Embedding)).get_config()
    want = next(l for l in model.layers if isinstance(l, L.Embedding)).get_config()
    if ext != "convolab":  # a Keras file holds the initializer as an object: RandomUniform
        assert emb.pop("embeddings_initializer") == "random_uniform" and want.pop("embeddings_initializer") == "uniform"
    assert emb == want
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def _keras_zip(tmp_path, edit):
    """The functional text CNN saved as .keras, its config edited."""
    pytest.importorskip("h5py")
    model = _save_models()["functional"]
    src = tmp_path / "m.keras"
    model.save(src)
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["config.json"])
    edit(cfg["config"]["layers"])
    members["config.json"] = json.dumps(cfg).encode()
    out = tmp_path / "edited.keras"
    with zipfile.ZipFile(out, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return model, out


def test_the_config_keras_3_15_writes_loads(tmp_path):
    """Keras 3.15 writes every regularizer and constraint key (null), quantization_config null and
    the initializer's arguments: keras.layers.Embedding(10, 8) after keras.Input(dtype='int64')."""

    def as_keras_writes(layers):
        inp, emb = layers[0], layers[1]
        assert inp["config"]["dtype"] == "int64"
        inp["config"]["ragged"] = False
        emb["config"].update(
            embeddings_regularizer=None,
            activity_regularizer=None,
            quantization_config=None,
            embeddings_initializer={
                "module": "keras.initializers",
                "class_name": "RandomUniform",
                "config": {"seed": None, "minval": -0.05, "maxval": 0.05},
                "registered_name": None,
            },
        )
        emb["build_config"] = {"input_shape": [None, None]}

    model, path = _keras_zip(tmp_path, as_keras_writes)
    again = keras.models.load_model(path)
    assert again.layers[1].get_config()["embeddings_initializer"] == "random_uniform"
    x, _ = _token_task(8)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mask_zero": True}, r"mask_zero: expected false"),
        ({"lora_rank": 4}, r"lora_rank: expected one of \[None\]"),
        (
            {
                "embeddings_initializer": {
                    "module": "keras.initializers",
                    "class_name": "RandomUniform",
                    "config": {"seed": None, "minval": -1.0, "maxval": 1.0},
                    "registered_name": None,
                }
            },
            r"RandomUniform's minval -0\.05 and maxval 0\.05",
        ),
    ],
)
def test_what_convolab_cannot_honour_in_a_keras_file_is_refused(tmp_path, change, message):
    _, path = _keras_zip(tmp_path, lambda layers: layers[1]["config"].update(change))
    with pytest.raises(ModelFileError, match=message):
        keras.models.load_model(path)


# -- ONNX --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_onnx_export_matches_predict_in_onnxruntime(tmp_path, kind):
    needs_onnx()
    model = _save_models()[kind]
    x, _ = _token_task(16)
    # a Sequential's input is its float32 data; the functional model's is its int64 Input
    x = x.astype(np.float32 if kind == "sequential" else np.int64)
    path = tmp_path / "m.onnx"
    model.export(path)
    want = model.predict(x, verbose=0)
    got = run_onnx(path, x)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # the batch axis is symbolic, and the functional model's sequence axis too (Input(shape=(None,)))
    other = x[:1] if kind == "sequential" else x[:1, :5]
    np.testing.assert_allclose(run_onnx(path, other), model.predict(other, verbose=0), rtol=0, atol=1e-6)


# -- the GPU path, on a fake CuPy -------------------------------------------------------------------


@pytest.fixture
def fake_gpu(monkeypatch):
    mod = fake_cupy.make_module()
    monkeypatch.setattr(_gpu, "_import_cupy", lambda: mod)
    monkeypatch.setitem(sys.modules, "cupyx", fake_cupy.make_cupyx())
    monkeypatch.setattr(cuda, "_modules", {})
    monkeypatch.setattr(random, "_device_generator", None)
    backend.set_device("gpu")
    try:
        yield mod
    finally:
        backend.set_device("cpu")
        _gpu.cupy = None


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_training_on_the_device_matches_the_cpu(fake_gpu):
    x, y = _token_task(64)
    runs = {}
    for device in ("cpu", "gpu"):
        backend.set_device(device)
        keras.utils.set_random_seed(0)
        model = _functional_text_cnn()
        runs[device] = (model, _fit(model, x, y)["loss"])
    (cpu, cpu_loss), (gpu, gpu_loss) = runs["cpu"], runs["gpu"]
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=2e-4)
    assert isinstance(gpu.layers[1].embeddings.value, fake_cupy.ndarray)  # trained where the data was
    for got, want in zip(gpu.get_weights(), cpu.get_weights()):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(gpu.predict(x, verbose=0), cpu.predict(x, verbose=0), rtol=2e-3, atol=2e-4)
    with pytest.raises(ValueError, match=r"Embedding '.*': indices must lie in \[0, 9\].*got indices in \[0, 12\]"):
        gpu.predict(np.array([[0, 12]]), verbose=0)


def test_shards_of_a_batch_add_up_to_the_whole_batch_step():
    """The runner cuts a batch into shards, each with its own replica of the Embedding; their table
    gradients are summed into one step."""
    from convolab.models.runner import Runner

    x, y = _token_task(64)
    runs = []
    for shards in (None, 2):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((20,))] + _text_cnn_layers())
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        runner = Runner(model, shards=shards)
        losses = [runner.train_step(x.astype(np.float32), y[:, None])[1] for _ in range(3)]
        runner.close()
        runs.append((losses, model.get_weights()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-6)
    for a, b in zip(runs[1][1], runs[0][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
