"""Saving across processes: fresh-process loads, kill -9 during saves, and exact resume after a kill."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import convolab
from convolab.saving import load_model

SRC = str(Path(convolab.__file__).resolve().parents[1])


def python(script, *args, **kwargs):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


LENET = """
from convolab import keras
L = keras.layers
def lenet():
    model = keras.models.Sequential([
        L.Conv2D(6, 5, activation='relu', input_shape=(32, 32, 3)), L.MaxPooling2D(2, 2),
        L.Conv2D(16, 5, activation='relu'), L.MaxPooling2D(2, 2), L.Flatten(),
        L.Dense(120, activation='relu'), L.Dense(84, activation='relu'), L.Dense(10, activation='softmax')])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['acc'])
    return model
"""


def test_lenet_save_load_in_fresh_process_and_onnx(tmp_path):
    """The issue's definition of done, end to end."""
    ns = {}
    exec(LENET, ns)
    convolab.set_random_seed(0)
    model = ns["lenet"]()
    rng = np.random.default_rng(0)
    x = rng.random((48, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, 48)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.save(tmp_path / "lenet.convolab")
    np.save(tmp_path / "x.npy", x)
    proc = python(
        """
        import sys, numpy as np
        from convolab import keras
        model = keras.models.load_model(sys.argv[1])
        np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
        print(model.optimizer.iterations, model.metrics_names)
    """,
        tmp_path / "lenet.convolab",
        tmp_path / "x.npy",
        tmp_path / "p.npy",
    )
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert out.split()[0] == "6"
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model.export(tmp_path / "lenet.onnx")
    got = ort.InferenceSession(str(tmp_path / "lenet.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x}
    )[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


SAVER = """
import sys
import numpy as np
from convolab import keras
path, version = sys.argv[1], int(sys.argv[2])
model = keras.models.Sequential([keras.layers.Dense(256, input_shape=(256,)), keras.layers.Dense(64)])
print("ready", flush=True)
while True:
    for w in model.weights:
        w.assign(np.full(w.shape, version))
    model.save(path)
    version += 1
"""


def test_kill_during_saves_never_leaves_a_broken_file(tmp_path):
    path = tmp_path / "m.convolab"
    rnd = random.Random(0)
    last = -1
    loads = 0
    for round_ in range(5):
        base = round_ * 10**6
        proc = python(SAVER, path, base)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rnd.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        rc, _, err = finish(proc)
        assert rc == -signal.SIGKILL, err
        if not path.exists():
            continue
        model = load_model(path)  # must never raise
        values = np.unique(np.concatenate([w.ravel() for w in model.get_weights()]))
        assert values.size == 1, "weights from two different saves in one file"
        version = int(values[0])
        assert version == values[0] and version >= last and version < base + 10**6
        last = version
        loads += 1
    assert loads >= 3
    leftovers = [n for n in os.listdir(tmp_path) if n != "m.convolab"]
    assert all(n.startswith(".convolab-tmp-m.convolab.") for n in leftovers)


TRAINING = """
import numpy as np
import convolab
from convolab import keras
L = keras.layers
EPOCHS = 6
def setup():
    convolab.set_random_seed(0)
    rng = np.random.default_rng(42)
    x = rng.random((40, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 40)
    model = keras.models.Sequential([
        L.Conv2D(4, 3, activation='relu', input_shape=(8, 8, 1)), L.MaxPooling2D(2),
        L.Dropout(0.3), L.Flatten(), L.Dense(16, activation='relu'), L.Dropout(0.2, seed=5),
        L.Dense(3, activation='softmax')])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['acc'])
    return model, x, y
def fit(model, x, y, initial_epoch=0, callbacks=()):
    return model.fit(x, y, epochs=EPOCHS, batch_size=8, initial_epoch=initial_epoch, callbacks=list(callbacks),
                     validation_split=0.2, verbose=0)
"""

KILLED_RUN = (
    TRAINING
    + """
import os, signal, sys
from convolab.callbacks import Callback, ModelCheckpoint
kill_epoch = int(sys.argv[2])
class KillMidEpoch(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == kill_epoch and batch == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    def on_epoch_end(self, epoch, logs=None):
        print("epoch", epoch, flush=True)
model, x, y = setup()
fit(model, x, y, callbacks=[ModelCheckpoint(sys.argv[1] + '/ck-{epoch:02d}.convolab'), KillMidEpoch()])
"""
)


def uninterrupted():
    ns = {}
    exec(TRAINING, ns)
    model, x, y = ns["setup"]()
    ns["fit"](model, x, y)
    return model, ns


def latest_checkpoint(directory):
    names = sorted(n for n in os.listdir(directory) if n.startswith("ck-") and n.endswith(".convolab"))
    return (directory / names[-1], int(names[-1][3:5])) if names else (None, 0)


def resume_and_compare(reference, ns, directory):
    path, epoch = latest_checkpoint(directory)
    _, x, y = ns["setup"]()  # same data; setup also reseeds, which load_model's RNG state overrides
    model = load_model(path)
    ns["fit"](model, x, y, initial_epoch=epoch)
    for a, b in zip(reference.get_weights(), model.get_weights()):
        assert np.array_equal(a, b), "resumed training differs from the uninterrupted run"
    assert model.optimizer.iterations == reference.optimizer.iterations
    for s1, s2 in zip(reference.optimizer.state, model.optimizer.state):
        for k in s1:
            assert np.array_equal(s1[k], s2[k])
    assert convolab.random.get_state() == ns["final_rng"]
    return epoch


def test_resume_after_kill_mid_epoch_is_bitwise_identical(tmp_path):
    reference, ns = uninterrupted()
    ns["final_rng"] = convolab.random.get_state()
    proc = python(KILLED_RUN, tmp_path, 3)
    rc, out, err = finish(proc)
    assert rc == -signal.SIGKILL, err
    assert out.split() == ["epoch", "0", "epoch", "1", "epoch", "2"]
    # kill -9 lost only the epoch in progress: epochs 1..3 (1-based) are on disk
    assert sorted(os.listdir(tmp_path)) == ["ck-01.convolab", "ck-02.convolab", "ck-03.convolab"]
    assert resume_and_compare(reference, ns, tmp_path) == 3


def test_resume_after_kill_at_a_random_moment(tmp_path):
    reference, ns = uninterrupted()
    ns["final_rng"] = convolab.random.get_state()
    proc = python(KILLED_RUN, tmp_path, -1)
    deadline = time.monotonic() + 60
    while not (tmp_path / "ck-02.convolab").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    assert resume_and_compare(reference, ns, tmp_path) >= 1
