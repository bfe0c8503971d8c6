"""Damaged and hostile Keras files (issue 20): each case below either escaped as an h5py/zipfile error
instead of ModelFileError, or loaded at a memory cost far above what the model needs; and a
Sequential whose layers share a name could not be saved as ``.keras``."""

import io
import json
import subprocess
import sys
import textwrap
import warnings
import zipfile
import zlib

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from convolab import keras  # noqa: E402
from convolab.saving import ModelFileError  # noqa: E402
from convolab.saving.keras_h5 import layer_slots  # noqa: E402

L = keras.layers
RNG = np.random.default_rng(0)


def model():
    return keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization(), L.Dense(2)])


def weights_bytes(edit=None):
    buf = io.BytesIO()
    m = model()
    with h5py.File(buf, "w") as f:
        f.create_group("vars")
        for path, layer in layer_slots(m):
            g = f.create_group(f"{path}/vars")
            for i, w in enumerate(layer.params.values()):
                g[str(i)] = RNG.standard_normal(w.shape).astype("float32")
        if edit:
            edit(f)
    return buf.getvalue()


def keras_bytes(weights=None, compression=zipfile.ZIP_DEFLATED, tmp_path=None):
    buf = io.BytesIO()
    model().save(tmp_path / "base.keras")
    with zipfile.ZipFile(tmp_path / "base.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if weights is not None:
        members["model.weights.h5"] = weights
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return buf.getvalue()


def load_weights(tmp_path, blob):
    path = tmp_path / "w.weights.h5"
    path.write_bytes(blob)
    model().load_weights(path)


def load_keras(tmp_path, blob):
    path = tmp_path / "m.keras"
    path.write_bytes(blob)
    return keras.models.load_model(path)


# -- item 1: a damaged HDF5 file is ModelFileError -------------------------------------------
def replace(name, **kwargs):
    def edit(f):
        del f[name]
        f.create_dataset(name, **kwargs)

    return edit


def test_shapeless_dataset_refused(tmp_path):
    """A null dataspace has no shape (h5py gives None): it was ``tuple(None)``, a TypeError."""
    blob = weights_bytes(replace("layers/dense/vars/0", data=h5py.Empty("f4")))
    with pytest.raises(ModelFileError, match="variable 0 holds no array"):
        load_weights(tmp_path, blob)


@pytest.mark.parametrize("signature", [b"TREE", b"SNOD", b"HEAP"])
@pytest.mark.parametrize("fmt", ["weights.h5", "keras"])
def test_damaged_hdf5_structures_refused(tmp_path, signature, fmt):
    """A damaged B-tree, symbol table or local heap made h5py raise RuntimeError or KeyError while
    convolab walked the groups (child lookups, listing a group)."""
    blob = weights_bytes()
    assert signature in blob
    blob = blob.replace(signature, b"JUNK")
    with pytest.raises(ModelFileError, match="HDF5"):
        if fmt == "keras":
            load_keras(tmp_path, keras_bytes(blob, tmp_path=tmp_path))
        else:
            load_weights(tmp_path, blob)


def test_member_name_that_is_not_text_refused(tmp_path):
    """h5py lists a name that is not UTF-8 as bytes; sorting it among str names was a TypeError."""

    def edit(f):
        f["layers/dense/vars"].create_group(b"\xff\xfe")

    with pytest.raises(ModelFileError, match="not UTF-8"):
        load_weights(tmp_path, weights_bytes(edit))


def test_compressed_chunk_that_inflates_without_bound_refused(tmp_path):
    """HDF5's deflate filter grows its buffer until the stream ends: a 4x3 variable whose one chunk
    inflates to 64 MiB loaded, after allocating those 64 MiB. Keras never compresses weights."""

    def edit(f):
        del f["layers/dense/vars/0"]
        ds = f.create_dataset("layers/dense/vars/0", shape=(4, 3), dtype="f4", chunks=(4, 3), compression="gzip")
        ds.id.write_direct_chunk((0, 0), zlib.compress(bytes(64 * 2**20), 9), 0)

    with pytest.raises(ModelFileError, match=r"stored compressed \(deflate.*h5repack"):
        load_weights(tmp_path, weights_bytes(edit))


def test_chunks_far_larger_than_the_data_refused(tmp_path):
    """HDF5 allocates a whole chunk to read any part of it."""

    def edit(f):
        del f["layers/dense/vars/0"]
        ds = f.create_dataset("layers/dense/vars/0", shape=(4, 3), dtype="f4", chunks=(2**19, 3), maxshape=(None, 3))
        ds[...] = 1.0

    with pytest.raises(ModelFileError, match=r"chunks of \(524288, 3\)"):
        load_weights(tmp_path, weights_bytes(edit))


def test_shuffled_checksummed_chunks_still_load(tmp_path):
    """Filters that keep a chunk's size are fine."""
    data = RNG.standard_normal((4, 3)).astype("f4")
    blob = weights_bytes(replace("layers/dense/vars/0", data=data, chunks=(2, 3), shuffle=True, fletcher32=True))
    path = tmp_path / "w.weights.h5"
    path.write_bytes(blob)
    m = model()
    m.load_weights(path)
    np.testing.assert_array_equal(m.layers[0].params["kernel"], data)


# -- item 2: the weights member of a .keras file is capped by the architecture and streamed -------
def bomb(tmp_path, size, lie=False):
    """A .keras file of the 4-3-2 model whose model.weights.h5 is a good HDF5 file padded with zeros to ``size``;
    ``lie``: the zip's headers declare the good file's size instead."""
    good = weights_bytes()
    blob = bytearray(keras_bytes(good + bytes(size - len(good)), tmp_path=tmp_path))
    if lie:
        real = size.to_bytes(4, "little")
        for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            pos = blob.find(sig)
            while pos >= 0:
                if blob[pos + at : pos + at + 4] == real:
                    blob[pos + at : pos + at + 4] = len(good).to_bytes(4, "little")
                pos = blob.find(sig, pos + 1)
    return bytes(blob)


@pytest.mark.parametrize("load", ["model", "weights"])
def test_weights_member_past_what_the_architecture_needs_refused(tmp_path, load):
    """16 MiB of weights member for 31 weights: within the old 2 GiB cap, so it was inflated whole and loaded."""
    blob = bomb(tmp_path, 16 * 2**20)
    path = tmp_path / "bomb.keras"
    path.write_bytes(blob)
    with pytest.raises(ModelFileError, match=r"model.weights.h5 is 16,777,216 bytes; at most 1,\d{3},\d{3} \(what "):
        if load == "model":
            keras.models.load_model(path)
        else:
            model().load_weights(path)


def test_weights_member_that_lies_about_its_size_refused(tmp_path):
    with pytest.raises(ModelFileError, match="model.weights.h5 cannot be read"):
        load_keras(tmp_path, bomb(tmp_path, 8 * 2**20, lie=True))


def test_keras_file_with_optimizer_state_still_loads(tmp_path):
    """Keras writes the optimizer's state next to the weights (Adam: two moments per weight, AMSGrad three):
    the cap leaves room for it."""

    def big():
        return keras.Sequential([keras.Input((300,)), L.Dense(300), L.Dense(10)])

    m = big()
    m.save(tmp_path / "big.keras")
    with zipfile.ZipFile(tmp_path / "big.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        g = f.create_group("optimizer/vars")
        g["0"] = np.array(7, "int64")
        k = 1
        for w in m.weights:
            for _ in range(3):  # AMSGrad: momentums, velocities, velocity_hats
                g[str(k)] = np.zeros(w.shape, "float32")
                k += 1
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "keras-like.keras", "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    x = RNG.random((2, 300)).astype("float32")
    loaded = keras.models.load_model(tmp_path / "keras-like.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))


BOMB_MEMORY = textwrap.dedent("""
    import io, resource, sys, zipfile
    from convolab import keras
    from convolab.saving import ModelFileError
    good, bomb = sys.argv[1], sys.argv[2]
    keras.models.load_model(good)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        keras.models.load_model(bomb)
    except ModelFileError:
        pass
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
""")


def test_bomb_costs_little_memory(tmp_path):
    """Peak memory while refusing a 128 MiB weights member (a 128 KiB file), measured in a fresh process:
    it was inflated whole (and copied: 256 MiB and more)."""
    good = tmp_path / "good.keras"
    good.write_bytes(keras_bytes(tmp_path=tmp_path))
    path = tmp_path / "bomb.keras"
    path.write_bytes(bomb(tmp_path, 128 * 2**20))
    out = subprocess.run(
        [sys.executable, "-c", BOMB_MEMORY, str(good), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert int(out.stdout.split()[-1]) < 16, out.stdout  # MiB above a good file's load (was 46 to 256)


# -- item 10 (part): a Sequential whose layers share a name ------------------------------------
def test_sequential_with_shared_layer_names_saves_as_keras(tmp_path):
    """convolab builds it and its own files keep it (by position), but Keras refuses shared names
    (``Sequential.add``): the .keras file names the later layer ``d_2`` (``d_1`` is taken) and says so."""
    m = keras.Sequential(
        [keras.Input((4,)), L.Dense(3, name="d"), L.Dense(3, name="d"), L.Dense(2, name="d_1")], name="stack"
    )
    m.save(tmp_path / "m.convolab")
    loaded = keras.models.load_model(tmp_path / "m.convolab")
    assert [l.name for l in loaded.layers] == ["d", "d", "d_1"]
    with pytest.warns(UserWarning, match=r"renames layer 'd' of 'stack' to 'd_2'"):
        loaded.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        layers = json.loads(zf.read("config.json"))["config"]["layers"]
    names = [l["config"]["name"] for l in layers]
    assert names == ["stack_input", "d", "d_2", "d_1"] and len(set(names)) == len(names)
    again = keras.models.load_model(tmp_path / "m.keras")
    assert [l.name for l in again.layers] == ["d", "d_2", "d_1"]
    x = RNG.random((2, 4)).astype("float32")
    np.testing.assert_array_equal(again.predict(x, verbose=0), m.predict(x, verbose=0))


def test_input_layer_name_yields_to_a_layer_of_that_name(tmp_path):
    m = keras.Sequential([keras.Input((4,)), L.Dense(2, name="stack_input")], name="stack")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the input is convolab's own: renamed without a word
        m.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        layers = json.loads(zf.read("config.json"))["config"]["layers"]
    assert [l["config"]["name"] for l in layers] == ["stack_input_1", "stack_input"]


def test_functional_model_with_shared_layer_names_still_refused_by_name(tmp_path):
    """A functional config refers to its layers by name: there the clash cannot be renamed away."""
    i = keras.Input((4,))
    m = keras.Model(i, L.Dense(2, name="d")(L.Dense(3, name="d")(i)))
    with pytest.raises(ValueError, match="two layers named 'd'"):
        m.save(tmp_path / "m.keras")
