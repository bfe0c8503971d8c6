"""Fuzz the loader with mutated functional files (a toy ResNet with a nested model and a shared
layer); nothing but ModelFileError may come out. Same mutations as test_saving_fuzz.py."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import convolab
from convolab import keras
from convolab.saving import ModelFileError, load_model, load_weights
from support.model_files import join, split

pytest.importorskip("hypothesis")  # the fuzzers draw with it: skipped, not a collection error, without it
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from support.mutations import json_values, mutate, paths_of  # noqa: E402

_EXAMPLES = int(os.environ.get("CONVOLAB_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_EXAMPLES or 300,
    deadline=None,
    database=None,
    derandomize=not _EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
L = keras.layers


def make_model():
    inner_in = keras.Input(shape=(5, 5, 2))
    inner = keras.Model(inner_in, L.Conv2D(2, 3, padding="same")(inner_in), name="inner")
    inp = keras.Input(shape=(5, 5, 2))
    x = L.Add()([inp, inner(inp)])
    shared = L.Conv2D(2, 1)
    x = L.Concatenate()([shared(x), shared(inp)])
    x = L.Dropout(0.3, seed=3)(x)
    out = keras.models.Sequential([L.Flatten(), L.Dense(3, activation="softmax")], name="head")
    out.build((None, 5, 5, 4))
    model = keras.Model(inp, out(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


def _base_files():
    convolab.set_random_seed(0)
    model = make_model()
    model.fit(np.ones((4, 5, 5, 2), np.float32), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    d = Path(tempfile.mkdtemp(prefix="convolab-graph-fuzz-"))
    model.save(d / "model.convolab")
    model.save_weights(d / "weights.convolab")
    return d, (d / "model.convolab").read_bytes(), (d / "weights.convolab").read_bytes()


WORKDIR, MODEL_BYTES, WEIGHTS_BYTES = _base_files()
TARGET = make_model()


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(WORKDIR, ignore_errors=True)


def attempt(blob, weights=False):
    path = WORKDIR / "fuzzed.convolab"
    path.write_bytes(blob)
    try:
        if weights:
            load_weights(TARGET, path)
        else:
            load_model(path)
        return True
    except ModelFileError as e:
        assert str(e)
        return False


MODEL_HEADER, MODEL_PAYLOAD = split(MODEL_BYTES)
MODEL_DOC = json.loads(MODEL_HEADER["__metadata__"]["convolab"])
DOC_PATHS = paths_of(MODEL_DOC)
WEIGHTS_HEADER, WEIGHTS_PAYLOAD = split(WEIGHTS_BYTES)
WEIGHTS_DOC = json.loads(WEIGHTS_HEADER["__metadata__"]["convolab"])
mutation = st.tuples(
    st.sampled_from(["replace", "replace", "delete", "add", "duplicate"]), json_values, st.text(max_size=8)
)
graph_values = st.sampled_from(
    [
        "inner",
        "head",
        "add",
        "concatenate",
        "InputLayer",
        "Functional",
        "Sequential",
        "Add",
        "Concatenate",
        0,
        1,
        2,
        63,
        999,
        [],
        ["inner", 0, 0],
        ["add", 1, 0],
        [["inner", 0, 0]],
        [None, 5, 5, 2],
        [None, 5, 5, 3],
        -1,
        7,
    ]
)


def test_base_files_load():
    assert attempt(MODEL_BYTES) and attempt(WEIGHTS_BYTES, weights=True)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(DOC_PATHS), mutation, graph_values, st.booleans()), min_size=1, max_size=3),
    st.booleans(),
)
def test_document_edits(edits, weights):
    root = [json.loads(json.dumps(MODEL_DOC))]
    for path, (op, value, key), graph_value, use_graph_value in edits:
        try:
            mutate(root, path, op, graph_value if use_graph_value else value, key)
        except (KeyError, IndexError, TypeError):
            pass
    header = dict(MODEL_HEADER, __metadata__={"convolab": json.dumps(root[0])})
    attempt(join(header, MODEL_PAYLOAD), weights=weights)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(paths_of(WEIGHTS_DOC)), mutation), min_size=1, max_size=3))
def test_weights_document_edits(edits):
    root = [json.loads(json.dumps(WEIGHTS_DOC))]
    for path, (op, value, key) in edits:
        try:
            mutate(root, path, op, value, key)
        except (KeyError, IndexError, TypeError):
            pass
    header = dict(WEIGHTS_HEADER, __metadata__={"convolab": json.dumps(root[0])})
    attempt(join(header, WEIGHTS_PAYLOAD), weights=True)


@FUZZ
@given(st.data())
def test_byte_flips(data):
    blob = bytearray(data.draw(st.sampled_from([MODEL_BYTES, WEIGHTS_BYTES])))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(1, 255)), min_size=1, max_size=6))
    for pos, bits in flips:
        blob[pos] ^= bits
    attempt(bytes(blob), weights=data.draw(st.booleans()))
