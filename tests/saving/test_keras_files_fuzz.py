"""Fuzz Keras's file formats: seeded mutants of a ``.weights.h5`` and a ``.keras`` file that convolab
wrote from a small model; every mutant must either load or be refused with ModelFileError.

Mutations: byte flips and truncations of either file; HDF5 edits made with h5py (objects deleted,
datasets reshaped, retyped, emptied, chunked and compressed, stored outside the file, linked,
groups and datasets swapped, members added); zip edits (members swapped, renamed, dropped,
duplicated, added, recompressed, marked encrypted, replaced by an HDF5 mutant); ``config.json``
edits (values replaced, keys dropped or added, text damaged); and bombs (a member that inflates
far past what the architecture needs). A mutant that still loads is fine: a flipped weight is
still a weight. Each family runs a fixed number of seeded mutants (``CONVOLAB_KERAS_FUZZ=N``
runs N per family instead); a failure names the seed and the mutation, so it can be replayed.
"""

import io
import json
import os
import random
import warnings
import zipfile
from collections import Counter

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import convolab  # noqa: E402
from convolab import keras  # noqa: E402
from convolab.saving import ModelFileError  # noqa: E402

L = keras.layers
_SCALE = int(os.environ.get("CONVOLAB_KERAS_FUZZ", "0"))


def count(default):
    return _SCALE or default


def make_model():
    """Conv2D, BatchNormalization, a nested Sequential and a Dense: top-level and nested layer groups."""
    i = keras.Input((5, 5, 1))
    x = L.BatchNormalization()(L.Conv2D(2, 3)(i))
    inner = keras.Sequential([L.Flatten(), L.Dense(4, activation="relu")])
    model = keras.Model(i, L.Dense(3, activation="softmax")(inner(x)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


def _base_files(tmp):
    convolab.set_random_seed(0)
    model = make_model()
    model.save(tmp / "m.keras")
    model.save_weights(tmp / "m.weights.h5")
    with zipfile.ZipFile(tmp / "m.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    return (tmp / "m.weights.h5").read_bytes(), members


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keras-fuzz")
    h5, members = _base_files(tmp)
    return {"dir": tmp, "h5": h5, "members": members, "target": make_model()}


def zip_bytes(members, compression=zipfile.ZIP_STORED):
    """``members``: ``{name: bytes}`` or ``[(name, bytes)]`` (repeats allowed)."""
    buf = io.BytesIO()
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(buf, "w", compression) as zf, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # a repeated member is a mutation
        for name, body in items:
            zf.writestr(name, body)
    return buf.getvalue()


def outcome(base, blob, kind):
    """None if ``blob`` loads or is refused with ModelFileError; else the stray exception."""
    path = base["dir"] / ("fuzzed.weights.h5" if kind == "h5" else "fuzzed.keras")
    path.write_bytes(blob)
    try:
        if kind in ("h5", "keras-weights"):
            base["target"].load_weights(path)
        else:
            keras.models.load_model(path)
    except ModelFileError as e:
        assert str(e)
    except Exception as e:  # noqa: BLE001 - the point: anything else is a defect
        return e
    return None


def run_family(base, n, make, kind):
    strays = []
    for seed in range(n):
        rng = random.Random(seed)
        blob, what = make(base, rng)
        kinds = kind(rng) if callable(kind) else kind
        e = outcome(base, blob, kinds)
        if e is not None:
            strays.append((seed, what, kinds, f"{type(e).__name__}: {str(e)[:160]}"))
    by_type = Counter(s[3].split(":")[0] for s in strays)
    assert not strays, (
        f"{len(strays)} of {n} mutants raised something other than ModelFileError "
        f"({dict(by_type)}); first ones:\n" + "\n".join(map(repr, strays[:8]))
    )


# -- byte-level mutants ------------------------------------------------------------------
def flip(blob, rng, head=2048):
    out = bytearray(blob)
    flips = []
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(min(head, len(out))) if rng.random() < 0.5 else rng.randrange(len(out))
        bits = rng.randint(1, 255)
        out[pos] ^= bits
        flips.append((pos, bits))
    return bytes(out), f"flips {flips}"


def truncate(blob, rng):
    cut = rng.randrange(len(blob) + 1)
    tail = bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 1, 8, 40])))
    return blob[:cut] + tail, f"cut at {cut}, tail {tail!r}"


# -- HDF5 mutants via h5py ------------------------------------------------------------------
def _objects(f):
    names = []
    f.visit(names.append)
    return sorted(names)


def _datasets(f):
    return [
        n for n in _objects(f) if isinstance(f.get(n, getlink=True), h5py.HardLink) and isinstance(f[n], h5py.Dataset)
    ]


def _replace(f, name, **kwargs):
    data = kwargs.pop("data", None)
    del f[name]
    if data is None:
        f.create_dataset(name, **kwargs)
    else:
        f.create_dataset(name, data=data, **kwargs)


def h5_edit(f, rng):
    """One structural edit of an open h5py file; returns what it did."""
    objects = _objects(f)
    datasets = _datasets(f)
    op = rng.choice(
        [
            "delete",
            "shape",
            "shape",
            "dtype",
            "dtype",
            "empty",
            "scalar",
            "chunked",
            "external",
            "fill",
            "maxshape",
            "to_group",
            "to_dataset",
            "soft",
            "external_link",
            "hard_link",
            "extra",
            "attr",
            "rename",
            "big_chunks",
        ]
    )
    name = rng.choice(
        datasets
        if op
        in ("shape", "dtype", "empty", "scalar", "chunked", "external", "fill", "maxshape", "to_group", "big_chunks")
        and datasets
        else objects
    )
    if op == "delete":
        del f[name]
    elif op == "shape" and isinstance(f[name], h5py.Dataset):
        shape = list(f[name].shape)
        change = rng.choice(["grow", "shrink", "add", "drop", "zero"])
        if change == "grow" and shape:
            shape[rng.randrange(len(shape))] += rng.choice([1, 1000])
        elif change == "shrink" and shape:
            k = rng.randrange(len(shape))
            shape[k] = max(0, shape[k] - 1)
        elif change == "add":
            shape.insert(rng.randrange(len(shape) + 1), 1)
        elif change == "drop" and shape:
            shape.pop()
        elif change == "zero" and shape:
            shape[0] = 0
        _replace(f, name, data=np.zeros(shape, "float32"))
        return f"{name}: shape {shape}"
    elif op == "dtype" and isinstance(f[name], h5py.Dataset):
        shape = f[name].shape or ()
        dtype = rng.choice(
            [
                "int32",
                "uint8",
                "bool",
                "float16",
                "float64",
                "complex64",
                "S4",
                "vlen-str",
                "compound",
                "enum",
                "longdouble",
            ]
        )
        if dtype == "vlen-str":
            _replace(f, name, shape=shape, dtype=h5py.string_dtype())
        elif dtype == "compound":
            _replace(f, name, shape=shape, dtype=np.dtype([("a", "f4"), ("b", "i2")]))
        elif dtype == "enum":
            _replace(f, name, shape=shape, dtype=h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1"))
        else:
            _replace(f, name, data=np.zeros(shape, dtype))
        return f"{name}: dtype {dtype}"
    elif op == "empty" and isinstance(f[name], h5py.Dataset):
        _replace(f, name, data=h5py.Empty("f4"))
    elif op == "scalar" and isinstance(f[name], h5py.Dataset):
        _replace(f, name, data=np.float32(1.5))
    elif op == "chunked" and isinstance(f[name], h5py.Dataset) and f[name].shape:
        data = f[name][()]
        filters = rng.choice(
            [
                {"compression": "gzip"},
                {"compression": "lzf"},
                {"shuffle": True, "fletcher32": True},
                {"compression": "gzip", "compression_opts": 9, "shuffle": True},
                {"chunks": True},
            ]
        )
        _replace(f, name, data=data, **filters)
        return f"{name}: chunked {filters}"
    elif op == "big_chunks" and isinstance(f[name], h5py.Dataset) and f[name].shape:
        data = f[name][()]
        # the first axis grows until a chunk holds about 4M elements (16 MB), far more than the data
        rest = int(np.prod(data.shape[1:], dtype=np.int64)) or 1
        chunks = (max(1, 2**22 // rest),) + tuple(max(s, 1) for s in data.shape[1:])
        _replace(
            f, name, shape=data.shape, dtype=data.dtype, chunks=chunks, maxshape=(None,) * data.ndim, compression="gzip"
        )
        f[name][...] = data
        return f"{name}: chunks {chunks}"
    elif op == "external" and isinstance(f[name], h5py.Dataset) and f[name].shape:
        data = f[name][()]
        _replace(f, name, shape=data.shape, dtype=data.dtype, external=[("nowhere.bin", 0, h5py.h5f.UNLIMITED)])
    elif op == "fill" and isinstance(f[name], h5py.Dataset):
        shape, dtype = f[name].shape, f[name].dtype
        _replace(f, name, shape=shape, dtype=dtype, fillvalue=rng.choice([0.0, np.nan, 3.0]))
    elif op == "maxshape" and isinstance(f[name], h5py.Dataset) and f[name].shape:
        data = f[name][()]
        _replace(f, name, data=data, maxshape=(None,) * data.ndim)
    elif op == "to_group":
        del f[name]
        f.create_group(name)
    elif op == "to_dataset":
        del f[name]
        f[name] = np.zeros(3, "float32")
    elif op == "soft":
        del f[name]
        f[name] = h5py.SoftLink(rng.choice(["/", "/layers", "/nowhere", f"/{name}"]))
    elif op == "external_link":
        del f[name]
        f[name] = h5py.ExternalLink("other.h5", "/x")
    elif op == "hard_link":
        other = rng.choice(objects)
        if other != name and not other.startswith(name + "/"):
            del f[name]
            f[name] = f[other]
            return f"{name}: hard link to {other}"
    elif op == "extra":
        parent = f[name] if isinstance(f[name], h5py.Group) else f[name].parent
        kind = rng.choice(["group", "dataset", "layers"])
        if kind == "layers" and "layers" not in parent:
            parent.create_group("layers/dense_9/vars")
        elif kind == "group":
            parent.create_group(f"extra{rng.randrange(9)}")
        else:
            parent[f"{rng.randrange(9)}"] = np.zeros(2, "float32")
    elif op == "attr":
        f[name].attrs[rng.choice(["layer_names", "x"])] = rng.choice([np.zeros(3), b"dense", 7])
    elif op == "rename":
        new = (
            name.rsplit("/", 1)[0] + "/" + rng.choice(["dense_7", "0", "99", "vars", "layers", "-1"])
            if "/" in name
            else rng.choice(["weights", "layers2", "optimizer"])
        )
        if new not in f:
            f.move(name, new)
        return f"{name} -> {new}"
    return f"{name}: {op}"


def h5_mutant(base, rng):
    buf = io.BytesIO(base["h5"])
    done = []
    with h5py.File(buf, "r+") as f:
        for _ in range(rng.randint(1, 3)):
            try:
                done.append(h5_edit(f, rng))
            except (KeyError, ValueError, TypeError, RuntimeError, OSError) as e:
                done.append(f"(edit failed: {type(e).__name__})")  # an earlier edit removed its object
    return buf.getvalue(), "; ".join(done)


# -- zip and config mutants ------------------------------------------------------------------
NAMES = ["config.json", "metadata.json", "model.weights.h5"]


def keras_bytes(base, rng):
    return zip_bytes(base["members"], rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))


def zip_flip(base, rng):
    return flip(keras_bytes(base, rng), rng, head=len(base["members"]["config.json"]) + 200)


def zip_truncate(base, rng):
    return truncate(keras_bytes(base, rng), rng)


def zip_member_edit(base, rng):
    members = list(base["members"].items())
    op = rng.choice(["swap", "rename", "drop", "duplicate", "extra", "method", "encrypted", "h5", "h5", "empty"])
    what = op
    if op == "swap":
        i, j = rng.sample(range(len(members)), 2)
        (a, x), (b, y) = members[i], members[j]
        members[i], members[j] = (a, y), (b, x)
        what = f"swap {a} <-> {b}"
    elif op == "rename":
        k = rng.randrange(len(members))
        new = rng.choice(["../" + members[k][0], members[k][0].upper(), "assets/x", "model.weights.h5/", ""])
        members[k] = (new or "x", members[k][1])
        what = f"rename {members[k][0]}"
    elif op == "drop":
        members.pop(rng.randrange(len(members)))
    elif op == "duplicate":
        members.append(rng.choice(members))
    elif op == "extra":
        members.append((rng.choice(["variables.h5", "assets/a.txt", "/abs.json"]), b"{}"))
    elif op == "empty":
        k = rng.randrange(len(members))
        members[k] = (members[k][0], b"")
    elif op == "h5":
        body, what = h5_mutant(base, rng)
        members = [(n, body if n == "model.weights.h5" else b) for n, b in members]
    if op in ("method", "encrypted"):
        blob = bytearray(zip_bytes(members, zipfile.ZIP_DEFLATED))
        # patch the local and central headers of one member: flag bit 0 (encrypted) or the method
        k = rng.randrange(len(members))
        name = members[k][0].encode()
        for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
            at = -1
            while True:
                at = blob.find(sig, at + 1)
                if at < 0:
                    break
                name_at = at + (30 if sig == b"PK\x03\x04" else 46)
                if blob[name_at : name_at + len(name)] != name:
                    continue
                if op == "encrypted":
                    blob[at + flag_at] |= 1
                else:
                    blob[at + method_at : at + method_at + 2] = rng.choice([12, 14, 99, 0]).to_bytes(2, "little")
        return bytes(blob), f"{op} on {name!r}"
    return zip_bytes(members, rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])), what


JSON_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    3,
    2**31,
    2**63,
    10**30,
    -(10**30),
    1e308,
    0.5,
    -0.0,
    "",
    "x",
    "same",
    "relu",
    "Dense",
    "Functional",
    "Sequential",
    "float64",
    "__keras_tensor__",
    [],
    {},
    [None, 4],
    [None, 5, 5, 1],
    ["dense", 0, 0],
    ["nowhere", 0, 0],
    [[]],
    {"class_name": "Dense", "config": {}},
    {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "int8"}},
]


def _json_paths(v, prefix=()):
    out = [prefix]
    if isinstance(v, dict):
        for k, child in v.items():
            out += _json_paths(child, prefix + (k,))
    elif isinstance(v, list):
        for i, child in enumerate(v):
            out += _json_paths(child, prefix + (i,))
    return out


def config_edit(base, rng):
    text = base["members"]["config.json"].decode()
    if rng.random() < 0.15:
        at = rng.randrange(len(text))
        junk = rng.choice(["", "{", "]", '"', "NaN", "1e999", "\\ud800", ",", "\x00"])
        text = text[:at] + junk + text[at + rng.randint(0, 6) :]
        what = f"text at {at}: {junk!r}"
    else:
        root = [json.loads(text)]
        edits = []
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(_json_paths(root[0]))
            try:
                parent = root
                for step in ((0,) + path)[:-1]:
                    parent = parent[step]
                last = ((0,) + path)[-1]
                op = rng.choice(["replace", "replace", "delete", "add"])
                if op == "replace":
                    parent[last] = rng.choice(JSON_VALUES)
                elif op == "delete" and path:
                    del parent[last]
                elif op == "add" and isinstance(parent[last], dict):
                    parent[last][rng.choice(["name", "units", "extra", "layers", "config"])] = rng.choice(JSON_VALUES)
                elif op == "add" and isinstance(parent[last], list):
                    parent[last].append(rng.choice(JSON_VALUES))
                edits.append(f"{op} {path}")
            except (KeyError, IndexError, TypeError):
                edits.append(f"(skipped {path})")
        text = json.dumps(root[0])
        what = "; ".join(edits)
    members = dict(base["members"], **{"config.json": text.encode()})
    return zip_bytes(members, zipfile.ZIP_DEFLATED), what


def bomb(base, rng):
    """A member that inflates far past its purpose: padding after the HDF5 file, or a whole member of zeros."""
    size = rng.choice([8, 16, 64]) * 2**20
    which = rng.choice(["model.weights.h5", "model.weights.h5", "config.json", "metadata.json"])
    if which == "model.weights.h5":
        body = base["h5"] + bytes(size - len(base["h5"]))
    elif which == "config.json":
        body = base["members"]["config.json"] + b" " * size
    else:
        body = b"{" + b" " * size + b"}"
    return zip_bytes(dict(base["members"], **{which: body}), zipfile.ZIP_DEFLATED), f"{which} of {size:,} bytes"


# -- the tests ------------------------------------------------------------------------------
def test_base_files_load(base):
    assert outcome(base, base["h5"], "h5") is None
    assert outcome(base, zip_bytes(base["members"]), "keras") is None
    assert outcome(base, zip_bytes(base["members"]), "keras-weights") is None


def test_weights_h5_byte_flips(base):
    run_family(base, count(150), lambda b, rng: flip(b["h5"], rng), "h5")


def test_weights_h5_truncations(base):
    run_family(base, count(60), lambda b, rng: truncate(b["h5"], rng), "h5")


def test_weights_h5_structure_edits(base):
    run_family(base, count(250), h5_mutant, "h5")


def _keras_or_weights(rng):
    return "keras" if rng.random() < 0.75 else "keras-weights"


def test_keras_byte_flips(base):
    run_family(base, count(120), zip_flip, _keras_or_weights)


def test_keras_truncations(base):
    run_family(base, count(50), zip_truncate, _keras_or_weights)


def test_keras_member_edits(base):
    run_family(base, count(150), zip_member_edit, _keras_or_weights)


def test_keras_config_edits(base):
    run_family(base, count(200), config_edit, "keras")


def test_keras_bombs(base):
    run_family(base, count(8), bomb, _keras_or_weights)
