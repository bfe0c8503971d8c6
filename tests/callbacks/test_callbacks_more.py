"""LearningRateScheduler, ReduceLROnPlateau and CSVLogger, against values worked out by hand."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from convolab import keras
from convolab.callbacks import Callback, CSVLogger, LambdaCallback, LearningRateScheduler, ReduceLROnPlateau
from convolab.losses import SparseCategoricalCrossentropy


def _model(lr=0.1):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, kernel_initializer="glorot_uniform")])
    model.compile(
        optimizer=keras.optimizers.SGD(lr), loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"]
    )
    return model


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


class _FakeModel:
    """Just what the learning-rate callbacks touch: an optimizer."""

    def __init__(self, lr):
        self.optimizer = keras.optimizers.SGD(lr)


class _LrAtEpochBegin(Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        self.rates.append(self.model.optimizer.learning_rate)


class _Script(Callback):
    """Writes scripted values into logs[key] at each epoch end, before the callbacks after it read them."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


# ---------------------------------------------------------------------------
# LearningRateScheduler
# ---------------------------------------------------------------------------


def test_scheduler_sets_rate_each_epoch_and_logs_it():
    model = _model(0.1)
    x, y = _data()
    seen = []
    spy = _LrAtEpochBegin()
    sched = LearningRateScheduler(lambda epoch, lr: (seen.append((epoch, lr)), 0.4 / 2 ** (epoch + 1))[1])
    hist = model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[sched, spy])
    assert seen == [(0, 0.1), (1, 0.2), (2, 0.1)]  # schedule gets the current rate as a float
    assert spy.rates == [0.2, 0.1, 0.05]
    assert hist.history["learning_rate"] == [0.2, 0.1, 0.05]
    assert model.optimizer.learning_rate == 0.05


def test_scheduler_training_equals_setting_the_rate_by_hand():
    x, y = _data()
    rates = [0.3, 0.1, 0.02]
    scheduled = _model()
    by_hand = _model()
    by_hand.set_weights(scheduled.get_weights())
    scheduled.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        shuffle=False,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda epoch, lr: rates[epoch])],
    )
    for rate in rates:
        by_hand.optimizer.learning_rate = rate
        by_hand.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(scheduled.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_scheduler_counts_from_initial_epoch_and_accepts_one_argument_schedules():
    model = _model()
    x, y = _data()
    epochs = []
    hist = model.fit(
        x,
        y,
        epochs=4,
        initial_epoch=2,
        batch_size=8,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda epoch: (epochs.append(epoch), 0.01 * (epoch + 1))[1])],
    )
    assert epochs == [2, 3]
    assert hist.history["learning_rate"] == [0.03, 0.04]


def test_scheduler_output_must_be_a_float():
    model = _model()
    x, y = _data()
    with pytest.raises(ValueError, match=r"must return a float; got 1 of type int at epoch 0"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: 1)])
    # np.float32 is a float to Keras too.
    model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: np.float32(0.5))])
    assert model.optimizer.learning_rate == 0.5


def test_scheduler_errors_inside_the_schedule_are_not_hidden():
    def schedule(epoch, lr):
        return lr + "oops"

    with pytest.raises(TypeError, match="unsupported operand"):
        _model().fit(*_data(), epochs=1, verbose=0, callbacks=[LearningRateScheduler(schedule)])


def test_scheduler_verbose_line(capsys):
    _model().fit(
        *_data(), epochs=2, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: 0.5 / (e + 1), verbose=1)]
    )
    out = capsys.readouterr().out
    assert out == (
        "\nEpoch 1: LearningRateScheduler setting learning rate to 0.5.\n"
        "\nEpoch 2: LearningRateScheduler setting learning rate to 0.25.\n"
    )


# ---------------------------------------------------------------------------
# ReduceLROnPlateau
# ---------------------------------------------------------------------------


def _run_plateau(cb, lr, values, monitor="val_loss"):
    """Feed scripted monitored values; return (logged learning_rate, rate after the epoch) per epoch."""
    cb.set_model(_FakeModel(lr))
    cb.on_train_begin({})
    logged, after = [], []
    for epoch, value in enumerate(values):
        logs = {monitor: value}
        cb.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
        after.append(cb.model.optimizer.learning_rate)
    return logged, after


def test_plateau_min_mode_patience_cooldown_min_delta_and_floor():
    # Worked by hand with Keras's rules: improvement is value < best - min_delta; the cooldown counter
    # is decremented (and wait zeroed) before the comparison, so with cooldown=1 the epoch after a
    # reduction already counts; the floor is min_lr and a rate at the floor is "reduced" to itself.
    cb = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_delta=0.01, min_lr=0.02)
    values = [1.0, 0.9, 0.895, 0.89, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    logged, after = _run_plateau(cb, 0.1, values)
    assert logged == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02]
    assert after == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02]


def test_plateau_auto_maximises_accuracy_and_cooldown_pauses_counting():
    cb = ReduceLROnPlateau(monitor="val_acc", factor=0.1, patience=1, cooldown=2, min_delta=0)
    logged, after = _run_plateau(cb, 1.0, [0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.6], monitor="val_acc")
    assert logged == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01, 0.01], rel=1e-12)
    assert after == pytest.approx([1.0, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001], rel=1e-12)


def test_plateau_defaults_and_max_mode():
    cb = ReduceLROnPlateau()
    assert (cb.monitor, cb.factor, cb.patience, cb.verbose, cb.mode, cb.min_delta, cb.cooldown, cb.min_lr) == (
        "val_loss",
        0.1,
        10,
        0,
        "auto",
        1e-4,
        0,
        0.0,
    )
    # Ten epochs without improvement after the first: reduced at the 11th epoch (index 10).
    _, after = _run_plateau(cb, 1.0, [1.0] * 12)
    assert after == pytest.approx([1.0] * 10 + [0.1] * 2, rel=1e-12)
    # 'max' on a loss: a falling loss is no improvement.
    _, after = _run_plateau(ReduceLROnPlateau(mode="max", patience=2, factor=0.5), 1.0, [3.0, 2.0, 1.0, 0.5])
    assert after == [1.0, 1.0, 0.5, 0.5]


def test_plateau_on_a_real_fit_logs_the_rate_each_epoch_trained_with():
    model = _model(0.2)
    x, y = _data()
    spy = _LrAtEpochBegin()
    hist = model.fit(
        x,
        y,
        epochs=5,
        batch_size=8,
        verbose=0,
        validation_data=(x, y),
        callbacks=[
            _Script("val_loss", [1.0, 1.0, 1.0, 0.5, 0.5]),
            ReduceLROnPlateau(patience=1, factor=0.5, min_delta=0),
            spy,
        ],
    )
    assert spy.rates == [0.2, 0.2, 0.1, 0.05, 0.05]
    assert hist.history["learning_rate"] == [0.2, 0.2, 0.1, 0.05, 0.05]
    assert model.optimizer.learning_rate == 0.025


def test_plateau_warns_when_the_monitor_is_missing_and_validates_arguments():
    cb = ReduceLROnPlateau(monitor="val_loss")
    cb.set_model(_FakeModel(0.1))
    cb.on_train_begin({})
    with pytest.warns(UserWarning, match=r"'val_loss', which is not available; available: loss, learning_rate"):
        cb.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(ValueError, match=r"factor >= 1.0; got factor=1.0"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match=r"`mode` must be 'auto', 'min' or 'max'; got 'minimum'"):
        ReduceLROnPlateau(mode="minimum")


def test_plateau_verbose_line(capsys):
    cb = ReduceLROnPlateau(patience=1, factor=0.5, verbose=1)
    _run_plateau(cb, 1.0, [1.0, 1.0])
    assert capsys.readouterr().out == "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.5.\n"


# ---------------------------------------------------------------------------
# CSVLogger
# ---------------------------------------------------------------------------


def test_csv_logger_exact_bytes(tmp_path):
    path = tmp_path / "log.csv"
    cb = CSVLogger(path)
    cb.on_train_begin({})
    cb.on_epoch_end(0, {"loss": 0.5, "acc": 0.25, "val_loss": 0.75})
    cb.on_epoch_end(1, {"loss": 0.125, "acc": 0.5})  # a missing key is written NA
    cb.on_epoch_end(2, {"loss": 0.0625, "acc": 1.0, "val_loss": 0.1, "extra": 7})  # new keys are not added
    cb.on_train_end({})
    assert path.read_bytes() == (
        b"epoch,acc,loss,val_loss\r\n0,0.25,0.5,0.75\r\n1,0.5,0.125,NA\r\n2,1.0,0.0625,0.1\r\n"
    )


def test_csv_logger_separator_append_and_arrays(tmp_path):
    path = tmp_path / "log.csv"
    cb = CSVLogger(str(path), separator=";", append=True)
    for start in (0, 2):  # a second run appends rows without a second header
        cb.on_train_begin({})
        cb.on_epoch_end(start, {"loss": 1.5, "v": np.array([1, 2])})
        cb.on_epoch_end(start + 1, {"loss": 2.5, "v": "s"})
        cb.on_train_end({})
    # As Keras: an iterable is written "[1, 2]" with its quotes, which the csv module then doubles.
    assert path.read_bytes() == (b'epoch;loss;v\r\n0;1.5;"""[1, 2]"""\r\n1;2.5;s\r\n2;1.5;"""[1, 2]"""\r\n3;2.5;s\r\n')
    CSVLogger(path).on_train_begin({})  # append=False starts the file again
    assert path.read_bytes() == b""


def test_csv_logger_in_fit_matches_history(tmp_path):
    path = tmp_path / "log.csv"
    model = _model()
    x, y = _data()
    hist = model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        verbose=0,
        validation_data=(x, y),
        callbacks=[LearningRateScheduler(lambda e, lr: 0.1 / (e + 1)), CSVLogger(path)],
    )
    rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    assert rows[0] == ["epoch", "acc", "learning_rate", "loss", "val_acc", "val_loss"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    for col, key in enumerate(rows[0][1:], start=1):
        assert [float(r[col]) for r in rows[1:]] == hist.history[key]


# ---------------------------------------------------------------------------
# LambdaCallback
# ---------------------------------------------------------------------------


def test_lambda_callback_takes_any_hook_by_keyword_and_refuses_others():
    calls = []
    cb = LambdaCallback(
        on_test_batch_end=lambda batch, logs: calls.append(("test", batch, sorted(logs))),
        on_predict_end=lambda logs: calls.append(("predict_end", logs)),
    )
    model = _model()
    x, y = _data(10)
    model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[cb])
    model.predict(x, batch_size=8, verbose=0, callbacks=[cb])
    assert calls == [("test", 0, ["acc", "loss"]), ("test", 1, ["acc", "loss"]), ("predict_end", {})]
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) on_epoch_start; expected hooks among"):
        LambdaCallback(on_epoch_start=print)
    with pytest.raises(TypeError, match=r"`on_epoch_end` must be callable; got 3"):
        LambdaCallback(on_epoch_end=3)
