"""TensorBoard: event files read back with TensorBoard's own reader, against history.history."""

from __future__ import annotations

import builtins
import os

import numpy as np
import pytest

from convolab import keras
from convolab.callbacks import LearningRateScheduler, TensorBoard
from convolab.losses import SparseCategoricalCrossentropy

# TensorBoard's own reader checks the files: skipped, not a collection error, without it
EventAccumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator").EventAccumulator


def _model():
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"]
    )
    return model


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


def _read(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _f32(values):
    return [float(np.float32(v)) for v in values]  # event files hold float32


def test_epoch_scalars_equal_history(tmp_path):
    model = _model()
    x, y = _data()
    hist = model.fit(
        x, y, epochs=3, batch_size=8, verbose=0, validation_data=(x[:10], y[:10]), callbacks=[TensorBoard(tmp_path)]
    )
    train, val = _read(tmp_path / "train"), _read(tmp_path / "validation")
    assert set(train.Tags()["scalars"]) == {"epoch_loss", "epoch_acc", "epoch_learning_rate"}
    for name in ("loss", "acc"):
        assert _scalars(train, f"epoch_{name}") == list(enumerate(_f32(hist.history[name])))
        assert _scalars(val, f"epoch_{name}") == list(enumerate(_f32(hist.history[f"val_{name}"])))
    assert _scalars(train, "epoch_learning_rate") == list(enumerate(_f32([0.1] * 3)))
    # The validation pass is an evaluation too: Keras also logs it against the optimizer's iterations.
    assert _scalars(val, "evaluation_loss_vs_iterations") == list(zip([3, 6, 9], _f32(hist.history["val_loss"])))
    # write_graph: the model's config under Keras's graph_keras_model plugin, at step 0.
    assert train.Tags()["tensors"] == ["keras"]
    assert train.SummaryMetadata("keras").plugin_data.plugin_name == "graph_keras_model"
    assert b'"class_name": "Sequential"' in train.Tensors("keras")[0].tensor_proto.string_val[0]
    assert train.Tags()["histograms"] == []


def test_learning_rate_scalars_follow_the_scheduler(tmp_path):
    model = _model()
    hist = model.fit(
        *_data(),
        epochs=3,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda e, lr: 0.5 / 2**e), TensorBoard(tmp_path, write_graph=False)],
    )
    train = _read(tmp_path / "train")
    assert _scalars(train, "epoch_learning_rate") == list(enumerate(_f32(hist.history["learning_rate"])))
    assert hist.history["learning_rate"] == [0.5, 0.25, 0.125]
    assert train.Tags()["tensors"] == []


@pytest.mark.parametrize("update_freq, steps", [("batch", list(range(1, 10))), (2, [2, 4, 6, 8]), (4, [4, 8])])
def test_batch_scalars(tmp_path, update_freq, steps):
    batch_logs = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batch_logs.append(dict(logs))

    model = _model()
    model.fit(
        *_data(),
        epochs=3,
        batch_size=8,
        verbose=0,  # 3 batches an epoch, 9 in all, counted from 1
        callbacks=[Spy(), TensorBoard(tmp_path, update_freq=update_freq)],
    )
    train = _read(tmp_path / "train")
    for name in ("loss", "acc"):
        assert _scalars(train, f"batch_{name}") == list(zip(steps, _f32([batch_logs[s - 1][name] for s in steps])))


def test_histograms_images_and_steps_per_second(tmp_path):
    model = _model()
    model.fit(
        *_data(),
        epochs=3,
        batch_size=8,
        verbose=0,
        callbacks=[
            TensorBoard(tmp_path, histogram_freq=2, write_images=True, write_steps_per_second=True, update_freq="batch")
        ],
    )
    train = _read(tmp_path / "train")
    names = [f"{layer.name}/{key}" for layer in model.layers for key in layer.params]
    assert sorted(train.Tags()["histograms"]) == sorted(f"{n}/histogram" for n in names)
    assert sorted(train.Tags()["images"]) == sorted(f"{n}/image" for n in names)
    kernel = model.layers[1].params["kernel"]
    last = train.Histograms(f"{model.layers[1].name}/kernel/histogram")
    assert [h.step for h in last] == [0, 2]  # epochs 0 and 2 with histogram_freq=2
    assert last[-1].histogram_value.num == kernel.size
    assert last[-1].histogram_value.min == pytest.approx(kernel.min())
    assert last[-1].histogram_value.max == pytest.approx(kernel.max())
    assert last[-1].histogram_value.sum == pytest.approx(kernel.sum(dtype=np.float64), rel=1e-6)
    assert [s for s, _ in _scalars(train, "epoch_steps_per_second")] == [0, 1, 2]
    assert all(v > 0 for _, v in _scalars(train, "epoch_steps_per_second"))
    assert [s for s, _ in _scalars(train, "batch_steps_per_second")] == list(range(1, 10))


def test_standalone_evaluate_writes_evaluation_scalars(tmp_path):
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # 3 optimizer steps
    tb = TensorBoard(tmp_path)
    logs = model.evaluate(x, y, verbose=0, return_dict=True, callbacks=[tb])
    val = _read(tmp_path / "validation")
    assert _scalars(val, "evaluation_loss_vs_iterations") == [(3, float(np.float32(logs["loss"])))]
    assert _scalars(val, "evaluation_acc_vs_iterations") == [(3, float(np.float32(logs["acc"])))]
    # The files were closed: a second run into the same folder (same second) adds a file, overwrites none.
    model.evaluate(x, y, verbose=0, callbacks=[tb])
    assert len(os.listdir(tmp_path / "validation")) == 2
    assert len(_scalars(_read(tmp_path / "validation"), "evaluation_loss_vs_iterations")) == 2


def test_arguments_keras_cannot_honour_here_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"profile_batch=5 is not supported by convolab"):
        TensorBoard(tmp_path, profile_batch=5)
    with pytest.raises(ValueError, match=r"embeddings_freq=1 is not supported"):
        TensorBoard(tmp_path, embeddings_freq=1)
    with pytest.raises(ValueError, match=r"`update_freq` must be 'epoch', 'batch' or a positive int; got 0"):
        TensorBoard(tmp_path, update_freq=0)
    with pytest.raises(ValueError, match=r"`histogram_freq` must be an int >= 0; got -1"):
        TensorBoard(tmp_path, histogram_freq=-1)
    tb = TensorBoard()
    assert (
        tb.log_dir,
        tb.histogram_freq,
        tb.write_graph,
        tb.write_images,
        tb.write_steps_per_second,
        tb.update_freq,
    ) == ("logs", 0, True, False, False, "epoch")
    assert keras.callbacks.TensorBoard is TensorBoard


def test_without_tensorboardx_the_error_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_tensorboardx(name, *args, **kwargs):
        if name == "tensorboardX" or name.startswith("tensorboardX."):
            raise ImportError("No module named 'tensorboardX'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboardx)
    with pytest.raises(ImportError, match=r'pip install "convolab\[tensorboard\]"'):
        TensorBoard("logs")
