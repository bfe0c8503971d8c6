"""convolab.datasets on small files written here in each real format; no network, no ../shared.

Downloads go to a local HTTP server on 127.0.0.1 (or a patched urlopen); an autouse fixture
refuses any other host, keeps HOME and the cache inside tmp_path, and silences progress bars.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import pickle
import socket
import struct
import sys
import tarfile
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from convolab import datasets
from convolab.datasets import ChecksumError, DatasetUnavailableError, UnsafePickleError, cifar10, fashion_mnist, mnist
from convolab.datasets import cifar_format, download, idx

MNIST_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


# ---------------------------------------------------------------------------------------------
# File builders in the real formats
# ---------------------------------------------------------------------------------------------


def idx_bytes(arr, code=0x08):
    """An uncompressed IDX file: magic 00 00 <code> <ndim>, big-endian dims, big-endian values."""
    dtype = idx.IDX_DTYPES[code]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + np.asarray(arr, dtype=dtype).tobytes()


def py2_pickle(obj):
    """Pickles ``obj`` the way Python 2's ``cPickle.dump(obj, f, 2)`` wrote the CIFAR-10 batches:
    str (here: bytes) as BINSTRING, ints as BININT*, arrays through
    ``numpy.core.multiarray._reconstruct`` with a numpy-1.x dtype state. Python 3's own pickler
    cannot produce this (protocol 2 there encodes bytes through ``_codecs.encode``)."""
    out = bytearray(b"\x80\x02")

    def string(b):
        out.extend(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b)

    def integer(n):
        if 0 <= n < 256:
            out.extend(b"K" + bytes([n]))
        elif 0 <= n < 65536:
            out.extend(b"M" + struct.pack("<H", n))
        else:
            out.extend(b"J" + struct.pack("<i", n))

    def emit(o):
        if isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                emit(k)
                emit(v)
            out.extend(b"u")
        elif isinstance(o, list):
            out.extend(b"](")
            for v in o:
                emit(v)
            out.extend(b"e")
        elif isinstance(o, bytes):
            string(o)
        elif isinstance(o, int):
            integer(o)
        elif isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            integer(0)
            out.extend(b"\x85")
            string(b"b")
            out.extend(b"\x87R(")
            integer(1)
            out.extend(b"(")
            for d in o.shape:
                integer(d)
            out.extend(b"tcnumpy\ndtype\n")
            string(b"u1")
            integer(0)
            integer(1)
            out.extend(b"\x87R(")
            integer(3)
            string(b"|")
            out.extend(b"NNN")
            integer(-1)
            integer(-1)
            integer(0)
            out.extend(b"tb\x89")
            string(o.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(o))

    emit(obj)
    out.extend(b".")
    return bytes(out)


def gz(data):
    return gzip.compress(data, mtime=0)


def specs_for(files):
    """FileSpecs (md5 + sha256) for ``{name: bytes}``, standing in for the published ones."""
    return [
        download.FileSpec(
            name, {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}, len(data)
        )
        for name, data in files.items()
    ]


def make_mnist_like(seed=0, n_train=5, n_test=3):
    """The four gzip'd IDX files of a tiny MNIST-style dataset and the arrays they hold."""
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, n_train, dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_test = rng.integers(0, 10, n_test, dtype=np.uint8)
    files = dict(zip(MNIST_NAMES, (gz(idx_bytes(a)) for a in (x_train, y_train, x_test, y_test))))
    return files, ((x_train, y_train), (x_test, y_test))


def write_files(folder, files):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def make_cifar(seed=0, per_batch=2, n_test=3):
    """Tiny CIFAR-10: 5 train batches of ``per_batch`` images, a test batch; NHWC arrays."""
    rng = np.random.default_rng(seed)
    train = [
        (rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, per_batch, dtype=np.uint8))
        for _ in range(5)
    ]
    test = (rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8))
    return train, test


def channel_major(x):
    """NHWC -> the datasets' (N, 3072) rows: all red, then green, then blue."""
    return x.transpose(0, 3, 1, 2).reshape(len(x), -1)


def cifar_python_batches(train, test):
    out = {}
    for i, (x, y) in enumerate(train, 1):
        out[f"data_batch_{i}"] = py2_pickle(
            {
                b"batch_label": b"training batch %d of 5" % i,
                b"labels": [int(v) for v in y],
                b"data": channel_major(x),
                b"filenames": [b"img_%d.png" % j for j in range(len(x))],
            }
        )
    x, y = test
    out["test_batch"] = py2_pickle(
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": [int(v) for v in y],
            b"data": channel_major(x),
            b"filenames": [b"t_%d.png" % j for j in range(len(x))],
        }
    )
    out["batches.meta"] = py2_pickle(
        {b"label_names": [n.encode() for n in cifar10.LABELS], b"num_cases_per_batch": 10000, b"num_vis": 3072}
    )
    return out


def cifar_binary_batches(train, test):
    def records(x, y):
        return np.concatenate([y[:, None], channel_major(x)], axis=1).astype(np.uint8).tobytes()

    out = {f"data_batch_{i}.bin": records(x, y) for i, (x, y) in enumerate(train, 1)}
    out["test_batch.bin"] = records(*test)
    out["batches.meta.txt"] = "\n".join(cifar10.LABELS).encode()
    return out


def tar_gz(folder_name, members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder_name}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def expected_cifar(train, test):
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train]).reshape(-1, 1)
    return (x_train, y_train), (test[0], test[1].reshape(-1, 1))


def assert_same(got, want):
    for (gx, gy), (wx, wy) in zip(got, want):
        assert gx.dtype == np.uint8 and gy.dtype == np.uint8
        assert gx.shape == wx.shape and gy.shape == wy.shape
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)


# ---------------------------------------------------------------------------------------------
# Fixtures: isolation, a local HTTP server
# ---------------------------------------------------------------------------------------------


def closed_port_url():
    """A 127.0.0.1 URL nobody listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real network, no real home cache, no progress bars, no CONVOLAB_DATA_DIR from outside."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(download.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv(download.ENV_NO_PROGRESS, "1")
    real_urlopen = urllib.request.urlopen

    def local_only(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        if urlsplit(url).hostname != "127.0.0.1":
            raise AssertionError(f"test tried to reach the network: {url}")
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    dead = closed_port_url()
    for module in (mnist, fashion_mnist, cifar10):
        monkeypatch.setattr(module, "MIRRORS", [dead])
    return home


class FakeMirror:
    """Serves ``files`` over HTTP on 127.0.0.1, under several prefixes:
    ``/ok/<name>`` the bytes; ``/cut/<name>`` announces the full length, sends half, hangs up;
    ``/bad/<name>`` same length, wrong bytes; anything else 404."""

    def __init__(self, files):
        self.files = dict(files)
        self.requests = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                _, mode, name = self.path.split("/", 2)
                data = mirror.files.get(name)
                if data is None or mode not in ("ok", "cut", "bad"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if mode == "ok":
                    self.wfile.write(data)
                elif mode == "cut":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(bytes(b ^ 0xFF for b in data))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, mode):
        return f"{self.base}{mode}/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tiny_mnist(monkeypatch):
    """Tiny MNIST files whose checksums stand in for the published ones."""
    files, arrays = make_mnist_like()
    monkeypatch.setattr(mnist, "SPECS", specs_for(files))
    return files, arrays


@pytest.fixture
def mirror(tiny_mnist):
    server = FakeMirror(tiny_mnist[0])
    yield server
    server.close()


def leftovers(folder):
    return sorted(p.name for p in Path(folder).glob(".*.part"))


# ---------------------------------------------------------------------------------------------
# IDX parser
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code,values",
    [
        (0x08, np.array([[0, 1, 255], [7, 8, 9]], dtype=np.uint8)),
        (0x09, np.array([-128, -1, 0, 127], dtype=np.int8)),
        (0x0B, np.array([[-300, 2], [3, 32000]], dtype=np.int16)),
        (0x0C, np.array([-70000, 1, 2**30], dtype=np.int32)),
        (0x0D, np.array([[0.5, -1.25]], dtype=np.float32)),
        (0x0E, np.array([1e-300, -2.5], dtype=np.float64)),
    ],
)
def test_parse_idx_round_trips_every_type(code, values):
    arr = idx.parse_idx(idx_bytes(values, code))
    assert arr.shape == values.shape
    assert arr.dtype == values.dtype.newbyteorder("=")
    np.testing.assert_array_equal(arr, values)


def test_parse_idx_hand_made_bytes():
    data = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(idx.parse_idx(bytearray(data)), [[1, 2, 3], [4, 5, 6]])
    assert idx.parse_idx(bytearray(data)).flags.writeable


@pytest.mark.parametrize(
    "data,match",
    [
        (b"\x00\x00", "only 2 bytes"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "not an IDX file"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), "unknown IDX type code 0x07"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 1]), "truncated IDX header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3]), r"shape \(4,\).*holds 3"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), r"shape \(2,\).*holds 3"),
    ],
)
def test_parse_idx_rejects_malformed(data, match):
    with pytest.raises(ValueError, match=match):
        idx.parse_idx(data)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gz(idx_bytes(np.zeros((2, 28, 28), np.uint8)))[:-10])
    with pytest.raises(ValueError, match="not a readable gzip file"):
        idx.read_idx_gz(path)


# ---------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST from data_dir
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [mnist, fashion_mnist], ids=["mnist", "fashion_mnist"])
def test_load_from_data_dir_round_trips(module, tmp_path, monkeypatch):
    files, arrays = make_mnist_like(seed=3)
    monkeypatch.setattr(module, "SPECS", specs_for(files))
    folder = write_files(tmp_path / "orig", files)
    got = module.load_data(data_dir=folder)
    assert_same(got, arrays)
    (x_train, y_train), (x_test, y_test) = got
    assert x_train.shape == (5, 28, 28) and y_train.shape == (5,)
    assert x_test.shape == (3, 28, 28) and y_test.shape == (3,)
    assert x_train.flags.writeable
    assert module.load_data(data_dir=str(folder))[0][1].tolist() == arrays[0][1].tolist()


def test_data_dir_file_with_wrong_checksum_is_refused(tmp_path, tiny_mnist):
    files, _ = tiny_mnist
    tampered = dict(files)
    tampered["t10k-labels-idx1-ubyte.gz"] = gz(idx_bytes(np.array([1, 2, 3], np.uint8)))
    folder = write_files(tmp_path / "orig", tampered)
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(data_dir=folder)
    message = str(info.value)
    assert info.value.missing == ["t10k-labels-idx1-ubyte.gz"]
    assert "failed verification" in message and "md5" in message
    assert str(folder) in message


def test_data_dir_missing_files_are_named_and_nothing_is_downloaded(tmp_path, tiny_mnist, mirror):
    files, _ = tiny_mnist
    mnist.MIRRORS[:] = [mirror.url("ok")]
    folder = write_files(tmp_path / "orig", {MNIST_NAMES[0]: files[MNIST_NAMES[0]]})
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(data_dir=folder)
    assert info.value.missing == list(MNIST_NAMES[1:])
    message = str(info.value)
    for name in MNIST_NAMES[1:]:
        assert name in message
    assert f"in:\n  {folder}" in message and "never downloaded into" in message
    assert mirror.requests == []
    assert sorted(p.name for p in folder.iterdir()) == [MNIST_NAMES[0]]


def test_images_and_labels_count_mismatch(tmp_path, monkeypatch):
    files, _ = make_mnist_like()
    files["t10k-labels-idx1-ubyte.gz"] = gz(idx_bytes(np.arange(4, dtype=np.uint8)))
    monkeypatch.setattr(mnist, "SPECS", specs_for(files))
    with pytest.raises(ValueError, match="holds 3 images but .* holds 4 labels"):
        mnist.load_data(data_dir=write_files(tmp_path / "d", files))


# ---------------------------------------------------------------------------------------------
# Downloads, cache, mirrors
# ---------------------------------------------------------------------------------------------


def test_download_fills_cache_and_second_call_is_a_cache_hit(tmp_path, tiny_mnist, mirror):
    files, arrays = tiny_mnist
    mnist.MIRRORS[:] = [mirror.url("ok")]
    cache = tmp_path / "cache"
    assert_same(mnist.load_data(cache_dir=cache), arrays)
    assert sorted(mirror.requests) == sorted(f"/ok/{n}" for n in MNIST_NAMES)
    for name in MNIST_NAMES:
        assert (cache / "mnist" / name).read_bytes() == files[name]
    assert leftovers(cache / "mnist") == []

    mirror.requests.clear()
    assert_same(mnist.load_data(cache_dir=cache), arrays)
    assert_same(mnist.load_data(cache_dir=cache, download=False), arrays)
    assert mirror.requests == []


def test_mirror_fallback_first_unreachable_then_404_then_ok(tmp_path, tiny_mnist, mirror):
    _, arrays = tiny_mnist
    mnist.MIRRORS[:] = [closed_port_url(), mirror.url("missing"), mirror.url("ok")]
    assert_same(mnist.load_data(cache_dir=tmp_path / "c"), arrays)
    assert sorted(p for p in mirror.requests if p.startswith("/ok/")) == sorted(f"/ok/{n}" for n in MNIST_NAMES)
    assert sum(p.startswith("/missing/") for p in mirror.requests) == 4


def test_cut_off_download_leaves_no_file_and_next_mirror_is_used(tmp_path, tiny_mnist, mirror):
    files, arrays = tiny_mnist
    cache = tmp_path / "c"
    mnist.MIRRORS[:] = [mirror.url("cut")]
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(cache_dir=cache)
    assert "connection closed early" in str(info.value)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == []  # no final, no .part file

    mnist.MIRRORS[:] = [mirror.url("cut"), mirror.url("ok")]
    assert_same(mnist.load_data(cache_dir=cache), arrays)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(MNIST_NAMES)


def test_checksum_mismatch_download_is_refused(tmp_path, tiny_mnist, mirror):
    mnist.MIRRORS[:] = [mirror.url("bad")]
    cache = tmp_path / "c"
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(cache_dir=cache)
    message = str(info.value)
    assert "checksum mismatch" in message and "md5" in message
    assert list((cache / "mnist").iterdir()) == []


def test_corrupt_cached_file_is_downloaded_again(tmp_path, tiny_mnist, mirror):
    files, arrays = tiny_mnist
    mnist.MIRRORS[:] = [mirror.url("ok")]
    cached = write_files(tmp_path / "c" / "mnist", files)
    (cached / MNIST_NAMES[1]).write_bytes(files[MNIST_NAMES[1]][:-3])
    assert_same(mnist.load_data(cache_dir=tmp_path / "c"), arrays)
    assert mirror.requests == [f"/ok/{MNIST_NAMES[1]}"]
    assert (cached / MNIST_NAMES[1]).read_bytes() == files[MNIST_NAMES[1]]


class _DyingResponse:
    """A urlopen response that sends one chunk, then fails like a dropped connection."""

    def __init__(self, total, error):
        self.headers = {"Content-Length": str(total)}
        self.error = error
        self.calls = 0

    def read(self, n):
        self.calls += 1
        if self.calls == 1:
            return b"\x1f\x8b" + b"x" * 100
        raise self.error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"), TimeoutError("timed out")])
def test_connection_dying_midway_with_patched_urlopen(tmp_path, monkeypatch, tiny_mnist, error):
    monkeypatch.setattr(urllib.request, "urlopen", lambda request, timeout=None: _DyingResponse(10_000, error))
    mnist.MIRRORS[:] = ["http://127.0.0.1:1/a/", "http://127.0.0.1:1/b/"]
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(cache_dir=tmp_path / "c")
    assert type(error).__name__ in str(info.value)
    assert str(info.value).count("http://127.0.0.1:1/b/") == 4  # each file tried on both mirrors
    assert list((tmp_path / "c" / "mnist").iterdir()) == []


def test_interrupted_download_removes_its_temporary_file(tmp_path, monkeypatch, tiny_mnist):
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda request, timeout=None: _DyingResponse(10_000, KeyboardInterrupt())
    )
    dest = tmp_path / "c" / MNIST_NAMES[0]
    with pytest.raises(KeyboardInterrupt):
        download.download_file("http://127.0.0.1:1/x", dest, mnist.SPECS[0])
    assert list(dest.parent.iterdir()) == []


def test_offline_error_names_files_mirrors_and_where_to_put_them(tmp_path, tiny_mnist):
    dead = [closed_port_url(), "http://127.0.0.1:1/second/"]
    mnist.MIRRORS[:] = dead
    cache = tmp_path / "c"
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data(cache_dir=cache)
    err = info.value
    assert isinstance(err, OSError)
    message = str(err)
    assert err.missing == list(MNIST_NAMES)
    assert err.target == str(cache / "mnist")
    for name in MNIST_NAMES:
        assert name in message
        for base in dead:
            assert base + name in message
    assert "unreachable" in message
    assert f"in:\n  {cache / 'mnist'}" in message
    assert "data_dir=" in message and "CONVOLAB_DATA_DIR" in message


def test_download_false_reports_without_trying(tmp_path, tiny_mnist, mirror):
    mnist.MIRRORS[:] = [mirror.url("ok")]
    with pytest.raises(DatasetUnavailableError, match=r"download=False") as info:
        mnist.load_data(cache_dir=tmp_path / "c", download=False)
    assert mirror.requests == []
    assert info.value.missing == list(MNIST_NAMES)


def test_env_var_sets_the_cache_and_is_searched(tmp_path, monkeypatch, tiny_mnist, mirror, isolated):
    files, arrays = tiny_mnist
    mnist.MIRRORS[:] = [mirror.url("ok")]
    env_cache = tmp_path / "env-cache"
    monkeypatch.setenv("CONVOLAB_DATA_DIR", str(env_cache))
    assert_same(mnist.load_data(), arrays)
    assert sorted(p.name for p in (env_cache / "mnist").iterdir()) == sorted(MNIST_NAMES)
    assert not (isolated / ".convolab").exists()

    # An explicit cache_dir wins for new downloads, but files already in $CONVOLAB_DATA_DIR count.
    mirror.requests.clear()
    assert_same(mnist.load_data(cache_dir=tmp_path / "other", download=False), arrays)
    assert mirror.requests == []
    assert download.cache_roots(tmp_path / "other")[:2] == [tmp_path / "other", env_cache]


def test_default_cache_is_under_home(tiny_mnist, mirror, isolated):
    _, arrays = tiny_mnist
    mnist.MIRRORS[:] = [mirror.url("ok")]
    assert_same(mnist.load_data(), arrays)
    assert sorted(p.name for p in (isolated / ".convolab" / "datasets" / "mnist").iterdir()) == sorted(MNIST_NAMES)


def test_path_argument(tmp_path, tiny_mnist, mirror, isolated):
    _, arrays = tiny_mnist
    mnist.MIRRORS[:] = [mirror.url("ok")]
    assert_same(mnist.load_data(tmp_path / "abs"), arrays)  # absolute: used as is
    assert len(list((tmp_path / "abs").iterdir())) == 4
    assert_same(mnist.load_data("mine", cache_dir=tmp_path / "c"), arrays)
    assert len(list((tmp_path / "c" / "mine").iterdir())) == 4
    mirror.requests.clear()
    assert_same(mnist.load_data("mnist.npz", cache_dir=tmp_path / "c"), arrays)  # Keras's name
    assert (tmp_path / "c" / "mnist").is_dir() and not (tmp_path / "c" / "mnist.npz").exists()


def test_progress_bar_only_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.delenv(download.ENV_NO_PROGRESS)
    assert download._progress_bar(100, "f") is None
    monkeypatch.setattr(sys, "stderr", Tty())
    pytest.importorskip("tqdm")
    bar = download._progress_bar(100, "f")
    assert bar is not None and bar.total == 100
    bar.close()
    monkeypatch.setenv(download.ENV_NO_PROGRESS, "1")
    assert download._progress_bar(100, "f") is None


# ---------------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_cifar():
    train, test = make_cifar(seed=7)
    return train, test, expected_cifar(train, test)


def test_parse_python_batch_py2_pickle_exact(tiny_cifar):
    train, _, _ = tiny_cifar
    x, y = train[0]
    data = py2_pickle(
        {b"batch_label": b"b", b"labels": [int(v) for v in y], b"data": channel_major(x), b"filenames": [b"a", b"b"]}
    )
    assert b"numpy.core.multiarray\n_reconstruct" in data and b"_codecs" not in data
    gx, gy = cifar_format.parse_python_batch(data)
    assert gx.shape == (2, 32, 32, 3) and gx.flags.c_contiguous
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)


def test_channel_major_layout_is_transposed_to_hwc():
    rows = np.zeros((1, 3072), np.uint8)
    rows[0, 0] = 10  # red of pixel (0, 0)
    rows[0, 1024 + 33] = 20  # green of pixel (1, 1)
    rows[0, 2048 + 1023] = 30  # blue of pixel (31, 31)
    x, _ = cifar_format.parse_binary_batch(np.concatenate([[[3]], rows], axis=1).astype(np.uint8).tobytes())
    assert x[0, 0, 0, 0] == 10 and x[0, 1, 1, 1] == 20 and x[0, 31, 31, 2] == 30
    assert int(x.sum()) == 60


def test_python3_pickles_with_str_keys_also_load(tiny_cifar):
    train, _, _ = tiny_cifar
    x, y = train[1]
    data = pickle.dumps({"data": channel_major(x), "labels": y.tolist()}, protocol=4)
    gx, gy = cifar_format.parse_python_batch(data)
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)
    # Python 3's protocol 2 pickles bytes through _codecs.encode: not on the allow-list.
    with pytest.raises(UnsafePickleError, match="_codecs.encode"):
        cifar_format.parse_python_batch(pickle.dumps({"data": channel_major(x)}, protocol=2))


def test_python_tarball_round_trip(tmp_path, monkeypatch, tiny_cifar):
    train, test, want = tiny_cifar
    blob = tar_gz("cifar-10-batches-py", cifar_python_batches(train, test))
    monkeypatch.setattr(cifar10, "PYTHON_SPEC", specs_for({"cifar-10-python.tar.gz": blob})[0])
    write_files(tmp_path / "d", {"cifar-10-python.tar.gz": blob})
    got = cifar10.load_data(data_dir=tmp_path / "d")
    assert_same(got, want)
    (x_train, y_train), (x_test, y_test) = got
    assert x_train.shape == (10, 32, 32, 3) and y_train.shape == (10, 1)
    assert x_test.shape == (3, 32, 32, 3) and y_test.shape == (3, 1)
    assert not (tmp_path / "d" / "cifar-10-batches-py").exists()  # read, never extracted


def test_binary_tarball_round_trip(tmp_path, monkeypatch, tiny_cifar):
    train, test, want = tiny_cifar
    blob = tar_gz("cifar-10-batches-bin", cifar_binary_batches(train, test))
    monkeypatch.setattr(cifar10, "BINARY_SPEC", specs_for({"cifar-10-binary.tar.gz": blob})[0])
    write_files(tmp_path / "d", {"cifar-10-binary.tar.gz": blob})
    assert_same(cifar10.load_data(data_dir=tmp_path / "d"), want)


@pytest.mark.parametrize("fmt,nested", [("python", True), ("binary", True), ("python", False), ("binary", False)])
def test_extracted_folders(tmp_path, tiny_cifar, fmt, nested):
    train, test, want = tiny_cifar
    batches = (cifar_python_batches if fmt == "python" else cifar_binary_batches)(train, test)
    folder = cifar_format.FORMATS[fmt][0]
    target = tmp_path / "d" / folder if nested else tmp_path / "d"
    write_files(target, batches)
    assert_same(cifar10.load_data(data_dir=tmp_path / "d"), want)


def test_extracted_folder_missing_a_batch(tmp_path, tiny_cifar):
    train, test, _ = tiny_cifar
    batches = cifar_python_batches(train, test)
    del batches["data_batch_4"]
    write_files(tmp_path / "d" / "cifar-10-batches-py", batches)
    with pytest.raises(ValueError, match="missing data_batch_4"):
        cifar10.load_data(data_dir=tmp_path / "d")


def test_cifar_download_with_fallback_and_cache_hit(tmp_path, monkeypatch, tiny_cifar):
    train, test, want = tiny_cifar
    blob = tar_gz("cifar-10-batches-py", cifar_python_batches(train, test))
    monkeypatch.setattr(cifar10, "PYTHON_SPEC", specs_for({"cifar-10-python.tar.gz": blob})[0])
    server = FakeMirror({"cifar-10-python.tar.gz": blob})
    try:
        cifar10.MIRRORS[:] = [server.url("bad"), server.url("cut"), server.url("ok")]
        assert_same(cifar10.load_data(cache_dir=tmp_path / "c"), want)
        assert server.requests == [
            "/bad/cifar-10-python.tar.gz",
            "/cut/cifar-10-python.tar.gz",
            "/ok/cifar-10-python.tar.gz",
        ]
        assert sorted(p.name for p in (tmp_path / "c" / "cifar-10").iterdir()) == ["cifar-10-python.tar.gz"]
        server.requests.clear()
        assert_same(cifar10.load_data(cache_dir=tmp_path / "c"), want)
        assert server.requests == []
    finally:
        server.close()


def test_cifar_offline_message_mentions_other_accepted_forms(tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        cifar10.load_data(cache_dir=tmp_path / "c")
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and "cifar-10-binary.tar.gz" in message
    assert "cifar-10-batches-py/" in message and str(tmp_path / "c" / "cifar-10") in message


def test_cifar_tarball_with_wrong_md5_is_refused(tmp_path, tiny_cifar):
    train, test, _ = tiny_cifar
    blob = tar_gz("cifar-10-batches-py", cifar_python_batches(train, test))
    write_files(tmp_path / "d", {"cifar-10-python.tar.gz": blob})  # real published md5 kept
    with pytest.raises(DatasetUnavailableError, match="failed verification.*md5"):
        cifar10.load_data(data_dir=tmp_path / "d")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_crafted_pickle_with_os_system_is_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"data": _Evil(marker), "labels": [1]}, protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle global (os|posix|nt)\.system"):
        cifar_format.parse_python_batch(data)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"cbuiltins\neval\n(S'1+1'\ntR.",
        b"c__builtin__\neval\n(S'1+1'\ntR.",
        b"csubprocess\nPopen\n((S'true'\nltR.",
        b"cnumpy\nload\n(S'x'\ntR.",
        b"cnumpy.core.multiarray\nscalar\n(tR.",
        b"\x80\x02}q\x00X\x04\x00\x00\x00dataq\x01Q.",  # persistent id
    ],
)
def test_other_globals_are_refused(payload):
    with pytest.raises(UnsafePickleError):
        cifar_format.parse_python_batch(payload)


def test_evil_batch_inside_a_tarball_is_refused(tmp_path, monkeypatch, tiny_cifar):
    train, test, _ = tiny_cifar
    marker = tmp_path / "pwned"
    batches = cifar_python_batches(train, test)
    batches["data_batch_3"] = pickle.dumps({"data": _Evil(marker), "labels": [0]}, protocol=2)
    blob = tar_gz("cifar-10-batches-py", batches)
    monkeypatch.setattr(cifar10, "PYTHON_SPEC", specs_for({"cifar-10-python.tar.gz": blob})[0])
    write_files(tmp_path / "d", {"cifar-10-python.tar.gz": blob})
    with pytest.raises(UnsafePickleError, match="data_batch_3"):
        cifar10.load_data(data_dir=tmp_path / "d")
    assert not marker.exists()


@pytest.mark.parametrize(
    "batch,match",
    [
        (py2_pickle([1, 2]), "expected a pickled dict"),
        (py2_pickle({b"data": np.zeros((2, 3072), np.uint8)}), "expected keys 'data' and 'labels'"),
        (py2_pickle({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), r"shape \(N, 3072\)"),
        (py2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "2 images but labels"),
        (py2_pickle({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}), "labels must be 0-9"),
        (b"\x80\x02}q\x00(U", "not a readable CIFAR-10 batch"),
    ],
)
def test_malformed_python_batches(batch, match):
    with pytest.raises(ValueError, match=match):
        cifar_format.parse_python_batch(batch)


def test_binary_batch_with_partial_record():
    with pytest.raises(ValueError, match="not a whole number of 3073-byte records"):
        cifar_format.parse_binary_batch(b"\x00" * 3074)


# ---------------------------------------------------------------------------------------------
# Arguments, public surface, bundled sample
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [mnist, fashion_mnist, cifar10], ids=["mnist", "fashion_mnist", "cifar10"])
def test_argument_validation(module, tmp_path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    with pytest.raises(TypeError, match="download must be True or False; got str 'yes'"):
        module.load_data(download="yes")
    with pytest.raises(TypeError, match="data_dir must be a str or os.PathLike"):
        module.load_data(data_dir=123)
    with pytest.raises(TypeError, match="path must be"):
        module.load_data(b"mnist")
    with pytest.raises(TypeError, match="cache_dir must be"):
        module.load_data(cache_dir=["a"])
    with pytest.raises(ValueError, match="does not exist"):
        module.load_data(data_dir=tmp_path / "nope")
    with pytest.raises(ValueError, match="is not a folder"):
        module.load_data(data_dir=a_file)
    with pytest.raises(ValueError, match="cannot be combined"):
        module.load_data(data_dir=tmp_path, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="empty"):
        module.load_data(cache_dir="")
    with pytest.raises(TypeError):
        module.load_data(None, tmp_path)  # data_dir is keyword-only


def test_public_surface():
    from convolab.datasets import cifar10 as c, fashion_mnist as f, mnist as m
    from convolab.keras import datasets as keras_datasets

    assert keras_datasets.mnist is m and keras_datasets.cifar10 is c
    assert keras_datasets.fashion_mnist is f
    assert issubclass(DatasetUnavailableError, OSError) and issubclass(ChecksumError, DatasetUnavailableError)
    assert callable(datasets.load_sample)


def test_load_sample_is_the_real_mnist_test_set():
    x, y = datasets.load_sample()
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.uint8
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x.max() == 255 and x.min() == 0
