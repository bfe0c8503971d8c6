"""The hooks fit/evaluate/predict call, in Keras 3's order, each with a logs dict; their argument lists."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from convolab import keras
from convolab.callbacks import Callback, CallbackList, History, LambdaCallback
from convolab.losses import SparseCategoricalCrossentropy
from convolab.models.sequential import Sequential


def _model():
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"]
    )
    return model


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


class Recorder(Callback):
    """Records every hook with a copy of its logs; fails the test if logs is ever not a dict."""

    def __init__(self):
        super().__init__()
        self.calls = []


def _recording(name):
    def hook(self, *args, **kwargs):
        logs = kwargs["logs"] if "logs" in kwargs else args[-1]
        assert isinstance(logs, dict), f"{name} got logs={logs!r}"
        index = args[0] if ("batch" in name or "epoch" in name) else None
        self.calls.append((name[3:], index, dict(logs)))

    return hook


# Keras 3's Callback hooks (keras/src/callbacks/callback.py), less the old on_batch_* aliases.
KERAS_HOOKS = [
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
    "on_train_begin",
    "on_train_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
]
for _name in KERAS_HOOKS:
    assert callable(getattr(Callback, _name)), _name
    setattr(Recorder, _name, _recording(_name))


def _names(calls):
    return [(name, index) for name, index, _ in calls]


def test_fit_calls_every_hook_in_keras_order_with_validation():
    rec = Recorder()
    model = _model()
    x, y = _data()
    hist = model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        validation_data=(x[:10], y[:10]),
        validation_batch_size=6,
        callbacks=[rec],
    )
    epoch = [("train_batch_begin", b) if k == 0 else ("train_batch_end", b) for b in range(3) for k in (0, 1)] + [
        ("test_begin", None),
        ("test_batch_begin", 0),
        ("test_batch_end", 0),
        ("test_batch_begin", 1),
        ("test_batch_end", 1),
        ("test_end", None),
    ]
    expected = [("train_begin", None)]
    for e in range(2):
        expected += [("epoch_begin", e)] + epoch + [("epoch_end", e)]
    expected += [("train_end", None)]
    assert _names(rec.calls) == expected

    by_name = {}
    for name, index, logs in rec.calls:
        by_name.setdefault(name, []).append((index, logs))
    for name in ("train_begin", "epoch_begin", "train_batch_begin", "test_begin", "test_batch_begin"):
        assert all(logs == {} for _, logs in by_name[name]), name
    # The last training batch's running logs are the epoch's training logs.
    last_batches = [logs for index, logs in by_name["train_batch_end"] if index == 2]
    assert [l["loss"] for l in last_batches] == pytest.approx(hist.history["loss"], rel=1e-12)
    # Validation: running means per batch, the whole set at the end, under the plain names.
    ends = by_name["test_end"]
    assert [logs["loss"] for _, logs in ends] == hist.history["val_loss"]
    assert [logs["acc"] for _, logs in ends] == hist.history["val_acc"]
    assert [logs for i, logs in by_name["test_batch_end"] if i == 1] == [logs for _, logs in ends]
    assert by_name["epoch_end"][-1][1] == {k: v[-1] for k, v in hist.history.items()}
    assert by_name["train_end"][0][1] == by_name["epoch_end"][-1][1]


def test_validation_batch_logs_are_running_means():
    rec = Recorder()
    model = _model()
    x, y = _data()
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=20,
        verbose=0,
        validation_data=(x[:10], y[:10]),
        validation_batch_size=4,
        callbacks=[rec],
    )
    test_batches = [logs for name, _, logs in rec.calls if name == "test_batch_end"]
    for n, logs in zip((4, 8, 10), test_batches):  # batches of 4, 4 and 2 samples
        expected = model.evaluate(x[:n], y[:n], verbose=0, return_dict=True)
        assert logs == pytest.approx(expected, rel=1e-6)


def test_evaluate_calls_test_hooks():
    rec = Recorder()
    model = _model()
    x, y = _data(10)
    result = model.evaluate(x, y, batch_size=4, verbose=0, callbacks=[rec])
    assert _names(rec.calls) == (
        [("test_begin", None)]
        + [(f"test_batch_{k}", b) for b in range(3) for k in ("begin", "end")]
        + [("test_end", None)]
    )
    assert rec.calls[-1][2] == dict(zip(model.metrics_names, result))
    assert rec.params == {"epochs": 1, "steps": 3, "verbose": 0, "batch_size": 4}


def test_predict_calls_predict_hooks_with_batch_outputs():
    rec = Recorder()
    model = _model()
    x, _ = _data(10)
    out = model.predict(x, batch_size=4, verbose=0, callbacks=[rec])
    assert _names(rec.calls) == (
        [("predict_begin", None)]
        + [(f"predict_batch_{k}", b) for b in range(3) for k in ("begin", "end")]
        + [("predict_end", None)]
    )
    outputs = [logs["outputs"] for name, _, logs in rec.calls if name == "predict_batch_end"]
    assert [o.shape for o in outputs] == [(4, 3), (4, 3), (2, 3)]
    np.testing.assert_array_equal(np.concatenate(outputs), out)
    assert all(logs == {} for name, _, logs in rec.calls if name != "predict_batch_end")


def test_callbacks_can_stop_evaluate_and_predict_early():
    model = _model()
    x, y = _data(10)
    stop_eval = LambdaCallback(on_test_batch_end=lambda batch, logs: setattr(model, "stop_evaluating", batch == 0))
    assert model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True, callbacks=[stop_eval]) == pytest.approx(
        model.evaluate(x[:4], y[:4], verbose=0, return_dict=True), rel=1e-12
    )
    stop_pred = LambdaCallback(on_predict_batch_end=lambda batch, logs: setattr(model, "stop_predicting", batch == 1))
    assert model.predict(x, batch_size=4, callbacks=[stop_pred]).shape == (8, 3)
    assert model.predict(x, batch_size=4).shape == (10, 3)  # reset for the next call


def test_old_batch_hook_names_are_called_during_fit():
    seen = []

    class Old(Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch, logs))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch, sorted(logs)))

    _model().fit(*_data(), epochs=1, batch_size=8, verbose=0, callbacks=[Old()])
    assert seen == [x for b in range(3) for x in (("begin", b, {}), ("end", b, ["acc", "loss"]))]


def test_callback_list_skips_callbacks_without_batch_hooks():
    history = History()
    plain = CallbackList([history], None, {})
    assert not any(plain.wants(h) for h in KERAS_HOOKS if "_batch_" in h)
    lam = CallbackList([history, LambdaCallback(on_test_batch_end=lambda b, logs: None)], None, {})
    assert lam.wants("on_test_batch_end") and not lam.wants("on_train_batch_end")
    assert not lam.wants("on_predict_batch_end")
    # And a hook given logs=None passes {} on.
    got = []
    lst = CallbackList(
        [
            LambdaCallback(
                on_train_batch_begin=lambda b, logs: got.append(logs), on_epoch_end=lambda e, logs: got.append(logs)
            )
        ],
        None,
        {},
    )
    lst.on_train_batch_begin(0)
    lst.on_epoch_end(0, None)
    assert got == [{}, {}]


def test_history_and_progbar_run_after_user_callbacks_and_a_given_history_is_used():
    model = _model()
    mine = History()
    early = LambdaCallback(on_epoch_end=lambda e, logs: logs.update(extra=float(e)))
    hist = model.fit(*_data(), epochs=2, verbose=0, callbacks=[early, mine])
    assert hist is mine and model.history is mine
    assert hist.history["extra"] == [0.0, 1.0]


# ---------------------------------------------------------------------------
# Keras 3's argument lists
# ---------------------------------------------------------------------------


def _params(fn):
    return list(inspect.signature(fn).parameters)[1:]


def test_argument_lists_are_keras_3s():
    assert _params(Sequential.evaluate) == [
        "x",
        "y",
        "batch_size",
        "verbose",
        "sample_weight",
        "steps",
        "callbacks",
        "return_dict",
    ]
    assert _params(Sequential.predict) == ["x", "batch_size", "verbose", "steps", "callbacks"]
    assert _params(Sequential.fit) == [
        "x",
        "y",
        "batch_size",
        "epochs",
        "verbose",
        "callbacks",
        "validation_split",
        "validation_data",
        "shuffle",
        "class_weight",
        "sample_weight",
        "initial_epoch",
        "steps_per_epoch",
        "validation_steps",
        "validation_batch_size",
        "validation_freq",
    ]


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_unknown_keyword_arguments_raise_type_error(call):
    model = _model()
    x, y = _data(8)
    args = (x,) if call == "predict" else (x, y)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'epoch'"):
        getattr(model, call)(*args, verbose=0, epoch=2)


def test_arguments_convolab_cannot_honour_yet_are_refused():
    model = _model()
    x, y = _data(8)
    # sample_weight is honoured now (tests/metrics/test_sample_weights.py); steps still is not
    with pytest.raises(
        ValueError,
        match=r"evaluate: `steps` is not supported by convolab yet \(expected None\); "
        r"got steps=2",
    ):
        model.evaluate(x, y, verbose=0, sample_weight=np.ones(8), steps=2)
    with pytest.raises(
        ValueError,
        match=r"predict: `steps` is not supported by convolab yet \(expected None\); "
        r"got steps=1",
    ):
        model.predict(x, steps=1)


def test_callbacks_must_be_callbacks_in_evaluate_and_predict():
    model = _model()
    x, y = _data(8)
    with pytest.raises(
        TypeError,
        match=r"Callback instances; got <built-in function print> of type "
        r"builtin_function_or_method",
    ):
        model.evaluate(x, y, verbose=0, callbacks=[print])
    with pytest.raises(TypeError, match=r"Callback instances; got 3 of type int"):
        model.predict(x, callbacks=[3])
