"""Issue 20, items 5, 7, 8, 9 (shard generators) and 10 (export errors, empty zip).

Threads: one Sequential predicting on several threads at once; fit or evaluate beside another
thread's call refused with RuntimeError; seeded sharded training with augmentation repeatable.
Files: a killed save's temporary file removed by the next save (a live writer's never); a flipped
bit in the weights refused by its checksum; old files without checksums still loading; errors
naming the target, not the temporary file; an empty zip called an empty zip.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import convolab
from convolab import keras
from convolab.models import parallel
from convolab.models.plan import worth_sharding
from convolab.saving import ModelFileError, load_model, load_weights
from convolab.saving import atomic
from convolab.saving.container import CHECKSUM_KEY

L = keras.layers
SRC = str(Path(convolab.__file__).resolve().parents[1])


@pytest.fixture
def two_threads():
    parallel.set_num_threads(2)
    yield
    parallel.set_num_threads(None)


def shardable_model():
    """A model worth sharding at batch 32 on 2 threads (so predict runs a ShardRunner)."""
    convolab.set_random_seed(0)
    model = keras.models.Sequential(
        [L.Conv2D(32, 3, activation="relu", input_shape=(32, 32, 3)), L.Flatten(), L.Dense(10, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["acc"])
    assert worth_sharding(model, 32, 2)
    return model


def small_model():
    """A model too small to shard: predict runs the layers themselves on the calling thread."""
    convolab.set_random_seed(0)
    model = keras.models.Sequential(
        [L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 3)), L.Flatten(), L.Dense(3, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["acc"])
    assert not worth_sharding(model, 32, 2)
    return model


def on_threads(fn, n):
    """Run ``fn()`` on ``n`` threads at once; returns their results and exceptions."""
    start = threading.Barrier(n)
    results, errors = [None] * n, []

    def work(i):
        start.wait()
        try:
            results[i] = fn()
        except Exception as e:  # collected for the assertion, which shows them
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


# -- item 5: predict on several threads ----------------------------------------------------------
@pytest.mark.parametrize("make", [shardable_model, small_model])
def test_concurrent_predict_gives_the_single_thread_numbers(two_threads, make):
    model = make()
    shape = model.input_shape[1:]
    x = np.random.default_rng(1).random((96,) + shape, dtype=np.float32)
    expected = model.predict(x, verbose=0)

    def predict_thrice():
        return [model.predict(x, verbose=0) for _ in range(3)]

    results, errors = on_threads(predict_thrice, 4)
    assert errors == []
    for outs in results:
        for out in outs:
            np.testing.assert_array_equal(out, expected)
    assert model._runners == {} and model.__dict__.get("_thread_use") == {}


def test_concurrent_predict_leaves_blas_threads_as_they_were():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):  # whatever earlier tests left
        if not blas_threads():
            pytest.skip("threadpoolctl finds no BLAS library")
        first, second = parallel.blas_single_threaded(), parallel.blas_single_threaded()
        first.__enter__()
        second.__enter__()  # another thread's predict starts
        first.__exit__(None, None, None)  # and the first one ends before it
        assert blas_threads() == [1] * len(blas_threads())  # the second still runs: still one BLAS thread
        second.__exit__(None, None, None)
        assert blas_threads() == [2] * len(blas_threads())


class _Hold(keras.callbacks.Callback):
    """Stops its call at the first batch until the test has tried the other thread's call."""

    def __init__(self):
        super().__init__()
        self.inside, self.release = threading.Event(), threading.Event()

    def _hold(self, *args, **kwargs):
        self.inside.set()
        assert self.release.wait(30)

    on_train_batch_begin = on_test_batch_begin = on_predict_batch_begin = _hold


def _while_running(call, attempt):
    """Run ``call(hold)`` on a thread; once it is inside, ``attempt()`` here; returns what that raised."""
    hold = _Hold()
    errors = []

    def run():
        try:
            call(hold)
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=run, name="worker")
    t.start()
    try:
        assert hold.inside.wait(30)
        with pytest.raises(RuntimeError) as info:
            attempt()
    finally:
        hold.release.set()
        t.join()
    assert errors == []
    return str(info.value)


def _data(model, n=64):
    rng = np.random.default_rng(2)
    return rng.random((n,) + model.input_shape[1:], dtype=np.float32), rng.integers(0, 10, n) % model.output_shape[-1]


@pytest.mark.parametrize("make", [shardable_model, small_model])
def test_predict_beside_another_threads_fit_is_refused(two_threads, make):
    model = make()
    x, y = _data(model)
    before = [w.copy() for w in model.get_weights()]
    message = _while_running(
        lambda hold: model.fit(x, y, epochs=1, verbose=0, callbacks=[hold]), lambda: model.predict(x, verbose=0)
    )
    assert "predict() was called" in message and "fit() runs on thread 'worker'" in message
    assert not all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the fit went on


@pytest.mark.parametrize(
    "first,second",
    [("predict", "fit"), ("evaluate", "evaluate"), ("evaluate", "fit"), ("fit", "evaluate"), ("fit", "fit")],
)
def test_calls_that_cannot_share_a_model_are_refused(two_threads, first, second):
    model = shardable_model()
    x, y = _data(model)
    calls = {
        "fit": lambda cbs: model.fit(x, y, epochs=1, verbose=0, callbacks=cbs),
        "evaluate": lambda cbs: model.evaluate(x, y, verbose=0, callbacks=cbs),
        "predict": lambda cbs: model.predict(x, verbose=0, callbacks=cbs),
    }
    message = _while_running(lambda hold: calls[first]([hold]), lambda: calls[second](None))
    assert f"{second}() was called" in message and f"{first}() runs on thread 'worker'" in message


def test_evaluate_and_predict_may_share_a_model(two_threads):
    model = shardable_model()
    x, y = _data(model)
    expected = model.predict(x, verbose=0)
    hold = _Hold()
    t = threading.Thread(target=lambda: model.evaluate(x, y, verbose=0, callbacks=[hold]))
    t.start()
    try:
        assert hold.inside.wait(30)
        np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    finally:
        hold.release.set()
        t.join()


def test_predict_inside_fit_on_the_same_thread_still_works(two_threads):
    model = shardable_model()
    x, y = _data(model)
    seen = []

    class PredictEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.predict(x[:8], verbose=0))

    model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y), callbacks=[PredictEachEpoch()])
    assert len(seen) == 2 and seen[0].shape == (8, 10)


# -- item 9: each shard its own generator ---------------------------------------------------------
@pytest.mark.parametrize("seed", [3, None])
def test_seeded_sharded_training_with_augmentation_repeats(seed):
    parallel.set_num_threads(4)
    try:
        runs = []
        for _ in range(3):
            convolab.set_random_seed(1)
            model = keras.models.Sequential(
                [
                    L.RandomFlip("horizontal", seed=seed, input_shape=(32, 32, 3)),
                    L.RandomTranslation(0.2, 0.2, seed=seed),
                    L.Conv2D(32, 3, activation="relu"),
                    L.Flatten(),
                    L.Dense(10, activation="softmax"),
                ]
            )
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
            assert worth_sharding(model, 64, 4)
            rng = np.random.default_rng(0)
            x, y = rng.random((256, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 256)
            model.fit(x, y, batch_size=64, epochs=2, verbose=0)
            runs.append(model.get_weights())
    finally:
        parallel.set_num_threads(None)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


# -- item 7: temporary files of killed saves ------------------------------------------------------
KILLED_SAVE = """
import os, signal, sys
from convolab.saving import atomic
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # killed after writing, before the rename
atomic.atomic_write_bytes(sys.argv[1], b"half a model" * 1000)
"""


def _killed_save(path):
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_SAVE, str(path)],
        env=dict(os.environ, PYTHONPATH=SRC),
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _temps(directory):
    return sorted(n for n in os.listdir(directory) if n.startswith(atomic.TMP_PREFIX))


def test_next_save_removes_what_killed_saves_left(tmp_path):
    path = tmp_path / "m.convolab"
    _killed_save(path)
    (first,) = _temps(tmp_path)
    _killed_save(path)  # a killed save cleans up too, before it writes
    (second,) = _temps(tmp_path)
    assert second != first and not path.exists()
    _killed_save(tmp_path / "other.convolab")  # another target's: not this save's business
    live = atomic.temp_name(path)  # a save of the same target still running, in this process
    Path(live).write_bytes(b"being written")
    old_style = tmp_path / f"{atomic.TMP_PREFIX}m.convolab.0123456789ab"  # writer unknown: kept
    old_style.write_bytes(b"?")
    small_model().save(path)
    assert _temps(tmp_path) == sorted(
        [os.path.basename(live), old_style.name] + [n for n in os.listdir(tmp_path) if "other.convolab" in n]
    )
    assert load_model(path).layers[0].kernel.shape == (3, 3, 3, 4)


def test_temp_file_of_a_live_writer_in_another_process_is_kept(tmp_path):
    path = tmp_path / "m.convolab"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from convolab.saving import atomic; "
            "Path(atomic.temp_name(sys.argv[1])).write_bytes(b'x'); print('ready', flush=True); sys.stdin.read()",
            str(path),
        ],
        env=dict(os.environ, PYTHONPATH=SRC),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        (live,) = _temps(tmp_path)
        assert f".{writer.pid}." in live
        small_model().save(path)
        assert _temps(tmp_path) == [live]
    finally:
        writer.communicate("", timeout=60)
    small_model().save(path)  # its writer is gone now
    assert _temps(tmp_path) == []


# -- item 8: checksums ------------------------------------------------------------------------------
def _layout(path):
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    return bytearray(blob), json.loads(blob[8 : 8 + n]), 8 + n


def _flip_in(path, tensor, bit=0x10):
    blob, header, base = _layout(path)
    begin, end = header[tensor]["data_offsets"]
    blob[base + (begin + end) // 2] ^= bit
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("what", ["model", "weights"])
def test_a_flipped_bit_in_the_weights_is_refused(tmp_path, what):
    model = small_model()
    path = tmp_path / f"{what}.convolab"
    model.save(path) if what == "model" else model.save_weights(path)
    _flip_in(path, "layers.2.kernel")
    with pytest.raises(ModelFileError, match=rf"{what}\.convolab.*'layers\.2\.kernel' fails its checksum"):
        load_model(path) if what == "model" else load_weights(small_model(), path)
    with pytest.raises(ModelFileError, match="'layers.2.kernel' fails its checksum"):
        small_model().load_weights(path)


def test_a_flipped_bit_in_a_functional_models_weights_is_refused(tmp_path):
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, L.Dense(2, name="out")(L.Dense(4, name="hidden")(inputs)))
    path = tmp_path / "f.convolab"
    model.save(path)
    blob, header, _ = _layout(path)
    _flip_in(path, next(n for n in header if n.endswith("hidden/kernel")), bit=0x01)
    with pytest.raises(ModelFileError, match="hidden/kernel' fails its checksum"):
        load_model(path)


def test_files_written_before_checksums_still_load(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    model = small_model()
    path = tmp_path / "m.convolab"
    model.save(path)
    blob, header, base = _layout(path)
    meta = header.pop("__metadata__")
    assert set(meta) == {"convolab", CHECKSUM_KEY}
    tensors = {
        name: np.frombuffer(
            bytes(blob[base + e["data_offsets"][0] : base + e["data_offsets"][1]]),
            "<f4" if e["dtype"] == "F32" else "<f8",
        ).reshape(e["shape"])
        for name, e in header.items()
    }
    old = tmp_path / "old.convolab"
    old.write_bytes(st.save(tensors, metadata={"convolab": meta["convolab"]}))  # as convolab wrote it before
    for a, b in zip(load_model(old).get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("table", ['{"layers.0.kernel": "zz"}', "[1, 2]", "{", '{"layers.0.kernel": "00000000"}'])
def test_a_damaged_checksum_table_is_refused(tmp_path, table):
    path = tmp_path / "m.convolab"
    small_model().save(path)
    blob, header, base = _layout(path)
    header["__metadata__"][CHECKSUM_KEY] = table
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + bytes(blob[base:]))
    with pytest.raises(ModelFileError, match="checksum table"):
        load_model(path)


SAVE_SEEDED = """
import sys, convolab
from convolab import keras
convolab.set_random_seed(0)
m = keras.models.Sequential([keras.layers.Dense(3, input_shape=(4,)), keras.layers.Dense(2)])
m.compile(optimizer="adam", loss="mse")
m.save(sys.argv[1])
"""


def test_the_same_model_saved_in_two_processes_gives_the_same_bytes(tmp_path):
    for i, hashseed in enumerate(("1", "2")):
        subprocess.run(
            [sys.executable, "-c", SAVE_SEEDED, str(tmp_path / f"{i}.convolab")],
            check=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=SRC, PYTHONHASHSEED=hashseed),
        )
    assert (tmp_path / "0.convolab").read_bytes() == (tmp_path / "1.convolab").read_bytes()


# -- item 10: errors that name the right thing ----------------------------------------------------
def test_saving_into_a_missing_directory_names_the_target(tmp_path):
    target = tmp_path / "no" / "such" / "m.convolab"
    with pytest.raises(FileNotFoundError) as info:
        small_model().save(target)
    assert info.value.filename == str(target) and atomic.TMP_PREFIX not in str(info.value)


def test_export_to_an_unwritable_path_names_the_target(tmp_path):
    pytest.importorskip("onnx")
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    target = blocker / "m.onnx"  # a file where a directory should be
    with pytest.raises(NotADirectoryError) as info:
        small_model().export(target)
    assert info.value.filename == str(target) and atomic.TMP_PREFIX not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_export_into_a_read_only_directory_names_the_target(tmp_path):
    pytest.importorskip("onnx")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as info:
            small_model().export(tmp_path / "m.onnx")
    finally:
        tmp_path.chmod(0o755)
    assert info.value.filename == str(tmp_path / "m.onnx") and atomic.TMP_PREFIX not in str(info.value)


def test_an_empty_zip_is_called_an_empty_zip(tmp_path):
    path = tmp_path / "empty.keras"
    zipfile.ZipFile(path, "w").close()
    for load in (load_model, lambda p: load_weights(small_model(), p)):
        with pytest.raises(ModelFileError, match=r"empty\.keras' is an empty zip archive.*\.keras files") as info:
            load(path)
        assert "header length" not in str(info.value)
