"""Fuzz the loader: thousands of mutated files; nothing but ModelFileError may come out.

Mutations: byte flips (biased to the header), truncations and junk tails, edits of the
safetensors header (entries, dtypes, shapes, offsets, the length prefix) and of the JSON
document inside it (values replaced by arbitrary JSON, keys removed or added, raw text
damaged). A mutated file may also load fine (a damaged header can still describe a model);
the only failure is an exception other than ModelFileError. Flipped weight bytes never load:
each tensor's checksum refuses them.
"""

import json
import os
import shutil
import struct
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

# Fixed examples by default so CI is repeatable; CONVOLAB_FUZZ_EXAMPLES=20000 explores afresh.
_EXAMPLES = int(os.environ.get("CONVOLAB_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_EXAMPLES or 1000,
    deadline=None,
    database=None,
    derandomize=not _EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

L = keras.layers


def make_model():
    model = keras.models.Sequential(
        [
            L.Conv2D(2, 3, padding="same", activation="relu", input_shape=(5, 5, 1)),
            L.AveragePooling2D(2),
            L.Dropout(0.3, seed=3),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


def _base_files():
    convolab.set_random_seed(0)
    model = make_model()
    model.fit(np.ones((4, 5, 5, 1), np.float32), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    d = Path(tempfile.mkdtemp(prefix="convolab-fuzz-"))
    model.save(d / "model.convolab")
    model.save_weights(d / "weights.convolab")
    return d, (d / "model.convolab").read_bytes(), (d / "weights.convolab").read_bytes()


WORKDIR, MODEL_BYTES, WEIGHTS_BYTES = _base_files()
TARGET = make_model()  # what load_weights loads into


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(WORKDIR, ignore_errors=True)


def attempt(blob, weights=False):
    """Load ``blob``; returns True if it loaded, False if refused with ModelFileError."""
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
HEADER_PATHS = [p for p in paths_of(MODEL_HEADER) if not p or p[0] != "__metadata__"]
HEADER_END = 8 + struct.unpack("<Q", MODEL_BYTES[:8])[0]
mutation = st.tuples(
    st.sampled_from(["replace", "replace", "delete", "add", "duplicate"]), json_values, st.text(max_size=8)
)


def test_base_files_load():
    assert attempt(MODEL_BYTES) and attempt(WEIGHTS_BYTES, weights=True)


@FUZZ
@given(st.data())
def test_byte_flips(data):
    blob = bytearray(data.draw(st.sampled_from([MODEL_BYTES, WEIGHTS_BYTES])))
    end = HEADER_END if len(blob) == len(MODEL_BYTES) else len(blob)
    flips = data.draw(
        st.lists(
            st.tuples(
                st.one_of(st.integers(0, 15), st.integers(0, end - 1), st.integers(0, len(blob) - 1)),
                st.integers(1, 255),
            ),
            min_size=1,
            max_size=6,
        )
    )
    for pos, bits in flips:
        blob[pos] ^= bits
    attempt(bytes(blob), weights=data.draw(st.booleans()))


WEIGHTS_HEADER_END = 8 + struct.unpack("<Q", WEIGHTS_BYTES[:8])[0]


@settings(FUZZ, max_examples=_EXAMPLES or 300)
@given(st.data())
def test_flipped_weight_bytes_are_refused(data):
    """Every tensor carries a CRC-32: flips of up to 4 bytes (CRC-32 catches every burst of up to 32 bits
    and every change of 3 bits or fewer; more, spread out, slip past once in 2**32)."""
    original, end = data.draw(st.sampled_from([(MODEL_BYTES, HEADER_END), (WEIGHTS_BYTES, WEIGHTS_HEADER_END)]))
    blob = bytearray(original)
    start = data.draw(st.integers(end, len(blob) - 1))
    for pos in range(start, min(start + data.draw(st.integers(1, 4)), len(blob))):
        blob[pos] ^= data.draw(st.integers(1, 255))
    path = WORKDIR / "fuzzed.convolab"
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match="fails its checksum"):
        # load_model refuses a weights file before it reads a tensor
        load_weights(TARGET, path) if original is WEIGHTS_BYTES or data.draw(st.booleans()) else load_model(path)


@FUZZ
@given(st.sampled_from([MODEL_BYTES, WEIGHTS_BYTES]), st.integers(0, 10**6), st.binary(max_size=40), st.booleans())
def test_truncations_and_tails(blob, cut, tail, weights):
    cut %= len(blob) + 1
    attempt(blob[:cut] + tail, weights=weights)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(HEADER_PATHS), mutation), min_size=1, max_size=3),
    st.sampled_from([0, 0, 0, -1, 1, -8, 8, 10**9]),
    st.booleans(),
)
def test_header_edits(edits, delta, weights):
    root = [json.loads(json.dumps(MODEL_HEADER))]
    for path, (op, value, key) in edits:
        try:
            mutate(root, path, op, value, key)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit removed or retyped this path
    if not isinstance(root[0], dict):
        root[0] = {"root": root[0]}
    attempt(join(root[0], MODEL_PAYLOAD, delta), weights=weights)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(DOC_PATHS), mutation), min_size=1, max_size=3), st.booleans())
def test_document_edits(edits, weights):
    root = [json.loads(json.dumps(MODEL_DOC))]
    for path, (op, value, key) in edits:
        try:
            mutate(root, path, op, value, key)
        except (KeyError, IndexError, TypeError):
            pass
    header = dict(MODEL_HEADER, __metadata__={"convolab": json.dumps(root[0])})
    attempt(join(header, MODEL_PAYLOAD), weights=weights)


@FUZZ
@given(st.data())
def test_raw_document_text_damage(data):
    text = MODEL_HEADER["__metadata__"]["convolab"]
    start = data.draw(st.integers(0, len(text)))
    stop = data.draw(st.integers(start, min(len(text), start + 8)))
    text = text[:start] + data.draw(st.text(max_size=6)) + text[stop:]
    header = dict(MODEL_HEADER, __metadata__={"convolab": text})
    attempt(join(header, MODEL_PAYLOAD))
