"""save/load round trips, the file format, and refusing bad files with ModelFileError."""

import json
import os
import pickle
import struct

import numpy as np
import pytest

import convolab
from convolab import keras
from convolab import random as crandom
from convolab.callbacks import ModelCheckpoint
from convolab.saving import ModelFileError, load_model, load_weights, save_model
from convolab.saving import container
from support.model_files import header_of, write_raw


def small_model(optimizer="adam", dropout_seed=None, metrics=("acc",)):
    L = keras.layers
    model = keras.models.Sequential(
        [
            L.Conv2D(3, 3, padding="same", activation="relu", input_shape=(6, 6, 2)),
            L.MaxPooling2D(2),
            L.Dropout(0.25, seed=dropout_seed),
            L.Flatten(),
            L.Dense(8, activation="tanh"),
            L.ReLU(negative_slope=0.1),
            L.Dense(4),
            L.Softmax(),
        ]
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=list(metrics))
    return model


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 2), dtype=np.float32), rng.integers(0, 4, n)


def trained(optimizer="adam", **kw):
    convolab.set_random_seed(1)
    model = small_model(optimizer, **kw)
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model, x, y


# -- round trips ------------------------------------------------------------------
@pytest.mark.parametrize(
    "optimizer",
    [
        "adam",
        "rmsprop",
        "sgd",
        convolab.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        convolab.optimizers.RMSprop(centered=True, momentum=0.5, clipnorm=1.0),
        convolab.optimizers.Adam(amsgrad=True, clipvalue=0.5),
    ],
)
def test_round_trip_restores_weights_compile_and_optimizer_state(tmp_path, optimizer):
    model, x, y = trained(optimizer)
    path = tmp_path / "m.convolab"
    model.save(path)
    loaded = load_model(path)
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert loaded.name == model.name
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    assert len(loaded.optimizer.state) == len(model.optimizer.state)
    for s1, s2 in zip(model.optimizer.state, loaded.optimizer.state):
        assert s1.keys() == s2.keys()
        for k in s1:
            assert np.array_equal(s1[k], s2[k]) and s2[k].flags.writeable
    assert loaded.metrics_names == model.metrics_names == ["loss", "acc"]
    assert loaded.loss.get_config() == model.loss.get_config()
    # and it keeps training exactly like the original from here
    crandom.set_random_seed(5)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    crandom.set_random_seed(5)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)


def test_file_layout_is_documented_safetensors(tmp_path):
    model, _, _ = trained()
    path = tmp_path / "m.convolab"
    save_model(model, path)
    header, payload = header_of(path)
    meta = header.pop("__metadata__")
    assert set(meta) == {"convolab", "convolab.crc32"}  # the document, and each tensor's CRC-32
    doc = json.loads(meta["convolab"])
    assert doc["format_version"] == 1 and doc["kind"] == "model"
    assert doc["model"]["class_name"] == "Sequential"
    assert [l["class_name"] for l in doc["model"]["config"]["layers"]] == [
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "ReLU",
        "Dense",
        "Softmax",
    ]
    assert doc["compile"]["optimizer"]["class_name"] == "Adam"
    assert doc["compile"]["metrics"] == ["acc"]
    assert doc["training_state"]["iterations"] == 6
    assert doc["training_state"]["rng"]["global"]["bit_generator"] == "PCG64"
    names = set(header)
    assert {"layers.0.kernel", "layers.0.bias", "layers.4.kernel", "layers.6.bias"} <= names
    assert {"optimizer.0.momentum", "optimizer.0.velocity", "optimizer.5.velocity"} <= names
    assert len([n for n in names if n.startswith("optimizer.")]) == 12
    # safetensors itself reads it
    import safetensors.numpy

    loaded = safetensors.numpy.load(open(path, "rb").read())
    np.testing.assert_array_equal(loaded["layers.0.kernel"], model.layers[0].kernel)


def test_include_optimizer_false_saves_compile_but_no_state(tmp_path):
    model, x, _ = trained()
    path = tmp_path / "m.convolab"
    model.save(path, include_optimizer=False)
    header, _ = header_of(path)
    assert not [n for n in header if n.startswith("optimizer.")]
    loaded = keras.models.load_model(path)
    assert loaded.compiled and loaded.optimizer.iterations == 0 and loaded.optimizer.state == []
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_uncompiled_model_and_compile_false(tmp_path):
    convolab.set_random_seed(0)
    model = keras.models.Sequential([keras.layers.Dense(3, input_shape=(5,))])
    save_model(model, tmp_path / "m.safetensors")
    loaded = convolab.models.load_model(tmp_path / "m.safetensors")
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.layers[0].kernel, model.layers[0].kernel)
    trained_model, _, _ = trained()
    trained_model.save(tmp_path / "t.convolab")
    assert not load_model(tmp_path / "t.convolab", compile=False).compiled


def test_load_model_restores_rng_and_does_not_disturb_it_otherwise(tmp_path):
    model, _, _ = trained(dropout_seed=7)
    model.layers[2]._rng.random(3)  # move the private generator away from its seed
    expected_private = model.layers[2]._rng.bit_generator.state
    expected_global = crandom.get_state()
    model.save(tmp_path / "m.convolab")
    crandom.set_random_seed(123)
    loaded = load_model(tmp_path / "m.convolab")
    assert crandom.get_state() == expected_global
    assert loaded.layers[2]._rng.bit_generator.state == expected_private
    crandom.set_random_seed(123)
    before = crandom.get_state()
    load_model(tmp_path / "m.convolab", compile=False)
    assert crandom.get_state() == before  # building drew initial weights; loading put the state back
    model.save(tmp_path / "n.convolab", include_optimizer=False)
    load_model(tmp_path / "n.convolab")
    assert crandom.get_state() == before


def test_random_get_set_state_in_place():
    crandom.set_random_seed(3)
    gen = crandom.get_generator()
    state = crandom.get_state()
    a = gen.random(4)
    crandom.set_state(state)
    assert np.array_equal(gen.random(4), a)  # the generator object others hold follows
    with pytest.raises(TypeError):
        crandom.set_state("nope")


def test_save_weights_load_weights(tmp_path):
    model, x, _ = trained()
    path = tmp_path / "w.weights.safetensors"
    model.save_weights(path)
    header, _ = header_of(path)
    assert json.loads(header["__metadata__"]["convolab"])["kind"] == "weights"
    convolab.set_random_seed(9)
    other = small_model()
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    # weights from a full model file
    model.save(tmp_path / "full.convolab")
    third = small_model()
    load_weights(third, tmp_path / "full.convolab")
    np.testing.assert_array_equal(third.predict(x, verbose=0), model.predict(x, verbose=0))
    # a weights file is not a model
    with pytest.raises(ModelFileError, match="weights only"):
        load_model(path)


def test_load_weights_into_mismatched_model(tmp_path):
    model, _, _ = trained()
    model.save_weights(tmp_path / "w.convolab")
    wrong = keras.models.Sequential([keras.layers.Dense(4, input_shape=(7,))])
    with pytest.raises(ModelFileError, match="missing|unexpected|shape"):
        wrong.load_weights(tmp_path / "w.convolab")
    with pytest.raises(ModelFileError, match="not built"):
        keras.models.Sequential([keras.layers.Dense(4)]).load_weights(tmp_path / "w.convolab")


@pytest.mark.parametrize("name", ["m.h5", "m.hdf5", "m", "m.pkl"])
def test_unsupported_file_names(tmp_path, name):
    model, _, _ = trained()
    if not name.endswith(("h5", "hdf5")):  # model.save('m.h5') is Keras's legacy model file (issue 19)
        with pytest.raises(ValueError, match=r"\.convolab"):
            model.save(tmp_path / name)
    with pytest.raises(ValueError, match=r"\.convolab"):
        model.save_weights(tmp_path / name)
    assert not os.listdir(tmp_path)


def test_unsaveable_models_say_why(tmp_path):
    with pytest.raises(ValueError, match="no weights yet"):
        save_model(keras.models.Sequential([keras.layers.Dense(2)]), tmp_path / "m.convolab")

    class MyDense(keras.layers.Dense):
        pass

    with pytest.raises(ValueError, match="built-in"):
        save_model(keras.models.Sequential([MyDense(2, input_shape=(3,))]), tmp_path / "m.convolab")
    with pytest.raises(TypeError):
        save_model(object(), tmp_path / "m.convolab")


def test_save_overwrites_atomically_and_leaves_no_temp_files(tmp_path):
    model, _, _ = trained()
    path = tmp_path / "m.convolab"
    model.save(path)
    model.layers[0].kernel.assign(np.full(model.layers[0].kernel.shape, 0.5))
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == ["m.convolab"]
    assert np.all(load_model(path).layers[0].kernel == 0.5)


# -- refusing bad files -------------------------------------------------------------
class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "PWNED"
    Exploit.marker = str(marker)
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"evil{protocol}.convolab"
        path.write_bytes(pickle.dumps({"model": Exploit()}, protocol=protocol))
        with pytest.raises(ModelFileError, match="not a convolab file|truncated|too short"):
            load_model(path)
        with pytest.raises(ModelFileError):
            small_model().load_weights(path)
    assert not marker.exists()
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(tmp_path / f"evil{pickle.HIGHEST_PROTOCOL}.convolab")


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "too short"),
        (b"1234567", "too short"),
        (b"PK\x03\x04" + b"\0" * 40, "zip"),
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 40, "HDF5"),
        (struct.pack("<Q", 2**40) + b"{}", "header length"),
        (struct.pack("<Q", 100) + b"{}", "truncated"),
        (struct.pack("<Q", 4) + b"[1] ", "not a JSON object|not a convolab"),
        (struct.pack("<Q", 2) + b"{}", "__metadata__"),
        (struct.pack("<Q", 3) + b"{\xff}", "UTF-8"),
        (struct.pack("<Q", 12) + b'{"a":1,"a":2', "JSON"),
    ],
)
def test_garbage_files(tmp_path, content, match):
    path = tmp_path / "x.convolab"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=match):
        load_model(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="cannot open"):
        load_model(tmp_path / "nope.convolab")
    with pytest.raises(ModelFileError, match="not a regular file"):
        load_model(tmp_path)
    if os.path.exists("/dev/zero"):
        with pytest.raises(ModelFileError, match="not a regular file"):
            load_model("/dev/zero")  # would never end if read
    with pytest.raises(ModelFileError, match="null"):
        load_model(str(tmp_path / "a\0b.convolab"))


def test_plain_safetensors_is_not_a_model(tmp_path):
    import safetensors.numpy

    path = tmp_path / "x.safetensors"
    path.write_bytes(safetensors.numpy.save({"w": np.zeros(3, np.float32)}, metadata={"format": "pt"}))
    with pytest.raises(ModelFileError, match="not a convolab one"):
        load_model(path)


def _doc_and_tensors(tmp_path):
    model, _, _ = trained()
    path = tmp_path / "m.convolab"
    model.save(path)
    header, payload = header_of(path)
    return header, payload, path


def _rewrite(path, header, payload, edit):
    doc = json.loads(header["__metadata__"]["convolab"])
    edit(doc)
    header = dict(header, __metadata__={"convolab": json.dumps(doc)})
    write_raw(path, header, payload)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda d: d["model"]["config"]["layers"][0].update(class_name="Lambda"), "class_name"),
        (lambda d: d["model"]["config"]["layers"][0].update(class_name="os.system"), "class_name"),
        # "Functional" is a valid class now: a stack's config under that name is refused by the graph schema
        (lambda d: d["model"].update(class_name="Functional"), "unknown key"),
        (lambda d: d["model"].update(class_name="Subclassed"), "class_name"),
        (lambda d: d["model"]["config"]["layers"][4]["config"].update(units="8"), "units"),
        (lambda d: d["model"]["config"]["layers"][4]["config"].update(units=True), "units"),
        (lambda d: d["model"]["config"]["layers"][4]["config"].update(units=-1), "units"),
        (lambda d: d["model"]["config"]["layers"][4]["config"].update(function="__import__('os')"), "unknown key"),
        (lambda d: d["model"]["config"]["layers"][4]["config"].pop("activation"), "missing key"),
        (lambda d: d["model"]["config"]["layers"][4]["config"].update(activation="eval"), "activation"),
        (lambda d: d["model"]["config"]["layers"][0]["config"].update(kernel_initializer="os.system"), "initializer"),
        (lambda d: d["model"]["config"]["layers"][0]["config"].update(kernel_size=[3]), "kernel_size"),
        (lambda d: d["model"]["config"]["layers"][0]["config"].update(kernel_size=[30, 30], padding="valid"), "larger"),
        (lambda d: d["model"]["config"]["layers"][2]["config"].update(rate=1.5), "rate"),
        (lambda d: d["model"]["config"]["layers"][0]["config"].update(dtype="object"), "dtype"),
        (lambda d: d["model"]["config"].update(input_shape=[6, 6]), "differs from the model"),
        (
            lambda d: [
                d["model"]["config"].update(input_shape=[6, 6]),
                d["model"]["config"]["layers"][0]["config"].pop("input_shape"),
            ],
            "expects 4-D",
        ),
        (lambda d: d["model"]["config"].update(input_shape=[6, 6, 2**40]), "input_shape"),
        (lambda d: d["model"]["config"].update(layers=[]), "layers"),
        (lambda d: d["compile"]["optimizer"].update(class_name="Evil"), "class_name"),
        (lambda d: d["compile"]["optimizer"]["config"].update(learning_rate=-1), "learning_rate"),
        (lambda d: d["compile"]["optimizer"]["config"].update(learning_rate=10**400), "learning_rate"),
        (lambda d: d["model"]["config"]["layers"][5]["config"].update(threshold=-(10**400)), "threshold"),
        (lambda d: d["compile"]["loss"].update(class_name="Loss"), "class_name"),
        (lambda d: d["compile"].update(metrics=["exec"]), "metric"),
        (lambda d: d["training_state"].update(optimizer_slots=3), "optimizer state"),
        (
            lambda d: d["training_state"]["rng"].update(layers={"0": d["training_state"]["rng"]["global"]}),
            "seeded Dropout",
        ),
        (lambda d: d["training_state"]["rng"]["global"].update(bit_generator="MT19937"), "bit_generator"),
        (lambda d: d.update(compile=None), "training state without compile"),
        (lambda d: d.update(format_version=2), "upgrade convolab"),
        (lambda d: d.update(kind="script"), "kind"),
        (lambda d: d.update(extra=1), "unknown key"),
    ],
)
def test_crafted_documents_are_refused(tmp_path, edit, match):
    header, payload, path = _doc_and_tensors(tmp_path)
    _rewrite(path, header, payload, edit)
    with pytest.raises(ModelFileError, match=match):
        load_model(path)


def test_json_tricks_are_refused(tmp_path):
    header, payload, path = _doc_and_tensors(tmp_path)
    text = header["__metadata__"]["convolab"]
    for bad in [
        text.replace('"learning_rate": 0.001', '"learning_rate": NaN'),
        text.replace('"learning_rate": 0.001', '"learning_rate": 1e999'),
        text.replace('"iterations": 6', '"iterations": 6, "iterations": 7'),
        "[" * 200_000 + "]" * 200_000,
        text.replace('"iterations": 6', '"iterations": 1' + "0" * 5000),
    ]:
        assert bad != text
        write_raw(path, dict(header, __metadata__={"convolab": bad}), payload)
        with pytest.raises(ModelFileError):
            load_model(path)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda h: h["layers.0.kernel"].update(dtype="I64"), "dtype"),
        (lambda h: h["layers.0.kernel"].update(dtype="F64"), "span|architecture says"),
        (lambda h: h["layers.0.kernel"].update(shape=[3, 3, 2, 4]), "span|needs"),
        (lambda h: h["layers.0.kernel"].update(shape=[10**12, 10**12]), "shape"),
        (lambda h: h["layers.0.kernel"].update(data_offsets=[0, 10**15]), "span|tile|cover"),
        (lambda h: h["layers.0.kernel"].update(data_offsets=[-8, 100]), "data_offsets"),
        (lambda h: h["layers.0.kernel"].update(extra=1), "exactly"),
        (lambda h: h.pop("layers.4.kernel"), "tile|cover|missing"),
        (lambda h: h.pop("optimizer.3.velocity"), "tile|cover|missing"),
        (
            lambda h: h.__setitem__("layers.99.kernel", {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}),
            "unexpected",
        ),
    ],
)
def test_crafted_headers_are_refused(tmp_path, edit, match):
    header, payload, path = _doc_and_tensors(tmp_path)
    edit(header)
    write_raw(path, header, payload)
    with pytest.raises(ModelFileError, match=match):
        load_model(path)


def test_swapped_shapes_are_refused_against_architecture(tmp_path):
    # Same byte count, different shape: only the architecture check can catch it.
    header, payload, path = _doc_and_tensors(tmp_path)
    header["layers.4.kernel"]["shape"] = header["layers.4.kernel"]["shape"][::-1]
    write_raw(path, header, payload)
    with pytest.raises(ModelFileError, match="the architecture needs"):
        load_model(path)


def test_huge_architecture_is_refused_before_allocating(tmp_path):
    import tracemalloc

    header, payload, path = _doc_and_tensors(tmp_path)
    _rewrite(path, header, payload, lambda d: d["model"]["config"]["layers"][4]["config"].update(units=2**30))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="shape"):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_truncations_and_oversize(tmp_path, monkeypatch):
    header, payload, path = _doc_and_tensors(tmp_path)
    full = path.read_bytes()
    for cut in [len(full) - 1, len(full) - 100, 8 + 10, 9, 7, 1]:
        path.write_bytes(full[:cut])
        with pytest.raises(ModelFileError):
            load_model(path)
    path.write_bytes(full + b"\0")
    with pytest.raises(ModelFileError, match="cover"):
        load_model(path)
    path.write_bytes(full)
    monkeypatch.setattr(container, "MAX_FILE_BYTES", len(full) - 1)
    with pytest.raises(ModelFileError, match="up to"):
        load_model(path)


# -- ModelCheckpoint -------------------------------------------------------------------
def test_checkpoint_every_epoch_with_formatted_names(tmp_path):
    model, x, y = trained()
    cb = ModelCheckpoint(str(tmp_path / "ck-{epoch:02d}-{loss:.3f}.convolab"))
    hist = model.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_data=(x, y), callbacks=[cb])
    names = sorted(os.listdir(tmp_path))
    assert names == [f"ck-{e + 1:02d}-{hist.history['loss'][e]:.3f}.convolab" for e in range(3)]
    last = load_model(tmp_path / names[-1])
    for a, b in zip(model.get_weights(), last.get_weights()):
        assert np.array_equal(a, b)


def test_checkpoint_save_best_only_and_modes(tmp_path, capsys):
    model, x, y = trained()
    path = tmp_path / "best.convolab"
    cb = ModelCheckpoint(path, monitor="val_loss", save_best_only=True, verbose=1)
    cb.set_model(model)
    for epoch, val in enumerate([1.0, 0.5, 0.7, 0.4]):
        model.layers[0].kernel.assign(np.full(model.layers[0].kernel.shape, epoch))
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, {"val_loss": val})
    assert cb.best == 0.4 and np.all(load_model(path).layers[0].kernel == 3)
    out = capsys.readouterr().out
    assert "Epoch 3: val_loss did not improve from 0.50000" in out
    assert "Epoch 4: val_loss improved from 0.50000 to 0.40000, saving model to" in out

    acc = ModelCheckpoint(tmp_path / "acc.convolab", monitor="val_acc", save_best_only=True, save_weights_only=True)
    assert acc.mode == "max" and acc.best == -np.inf
    acc.set_model(model)
    model.layers[0].kernel.assign(np.full(model.layers[0].kernel.shape, 7))
    acc.on_epoch_end(0, {"val_acc": 0.3})
    model.layers[0].kernel.assign(np.full(model.layers[0].kernel.shape, 8))
    acc.on_epoch_end(1, {"val_acc": 0.2})
    header, _ = header_of(tmp_path / "acc.convolab")
    assert json.loads(header["__metadata__"]["convolab"])["kind"] == "weights"
    other = small_model()
    other.load_weights(tmp_path / "acc.convolab")
    assert np.all(other.layers[0].kernel == 7)

    thr = ModelCheckpoint(tmp_path / "thr.convolab", save_best_only=True, initial_value_threshold=0.1)
    thr.set_model(model)
    thr.on_epoch_end(0, {"val_loss": 0.2})
    assert not (tmp_path / "thr.convolab").exists()
    with pytest.warns(UserWarning, match="val_loss"):
        thr.on_epoch_end(1, {"loss": 0.01})


def test_checkpoint_save_freq_batches(tmp_path):
    model, x, y = trained()  # 24 samples, batch 8: 3 batches per epoch
    cb = ModelCheckpoint(tmp_path / "b-{epoch}-{batch}.convolab", save_freq=2)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[cb])
    assert sorted(os.listdir(tmp_path)) == ["b-1-2.convolab", "b-2-1.convolab", "b-2-3.convolab"]


def test_checkpoint_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        ModelCheckpoint(tmp_path / "a.convolab", mode="up")
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint(tmp_path / "a.convolab", save_freq="batch")
    with pytest.raises(ValueError, match=r"\.convolab"):
        ModelCheckpoint(tmp_path / "a.pkl")
    with pytest.raises(ValueError, match=r"\.weights\.h5"):  # 'a.h5' is a legacy model file, not weights
        ModelCheckpoint(tmp_path / "a.h5", save_weights_only=True)
    cb = ModelCheckpoint(str(tmp_path / "{nope}.convolab"))
    cb.set_model(trained()[0])
    with pytest.raises(KeyError, match="nope"):
        cb.on_epoch_end(0, {"loss": 1.0})
    assert keras.callbacks.ModelCheckpoint is ModelCheckpoint


def test_resave_is_byte_identical(tmp_path):
    model, _, _ = trained(dropout_seed=4)
    model.save(tmp_path / "a.convolab")
    load_model(tmp_path / "a.convolab").save(tmp_path / "b.convolab")
    assert (tmp_path / "a.convolab").read_bytes() == (tmp_path / "b.convolab").read_bytes()


def test_input_layer_frozen_layer_and_float64(tmp_path):
    convolab.backend.set_floatx("float64")
    try:
        model = keras.models.Sequential(
            [
                keras.Input(shape=(4, 4, 1)),
                keras.layers.Conv2D(2, 2),
                keras.layers.Flatten(),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
    finally:
        convolab.backend.set_floatx("float32")
    model.layers[0].trainable = False
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((6, 4, 4, 1))
    y = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    model.save(tmp_path / "m.convolab")
    header, _ = header_of(tmp_path / "m.convolab")
    assert header["layers.0.kernel"]["dtype"] == "F64"
    loaded = load_model(tmp_path / "m.convolab")
    assert loaded.layers[0].kernel.dtype == np.float64 and not loaded.layers[0].trainable
    assert len(loaded.optimizer.state) == 2  # the frozen conv has no optimizer slots
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)


def test_export_without_onnx_says_how_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    model = keras.models.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ImportError, match="pip install"):
        model.export(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
