"""Issue 19's design step: one plan per model, one runner that owns the caches.

* :func:`compile_plan` decides the engine and the rewrites once, the same for a Sequential and for
  a functional model written as the same chain (a case table);
* a functional chain now trains on the stack engine and gives a Sequential's numbers bit for bit,
  and its ``run_eagerly=True`` twin (the tape, layer by layer) up to rounding;
* the user's layers hold no batch's caches after fit, evaluate, predict or a direct call: the
  runner's replicas did the work;
* a pass compiles its plan once (the validation pass inside fit shares fit's runner);
* every model, not only a Sequential, refuses fit beside another thread's call and predicts on
  several threads at once.
"""

import threading

import numpy as np
import pytest

from convolab import keras
from convolab.models import parallel, runner
from convolab.models.plan import compile_plan

L = keras.layers


class Doubler(L.Layer):
    """A user's layer: no hand-written backward, so the tape."""

    def call(self, x):
        return x * 2.0


def _chain_layers():
    return [
        L.Conv2D(4, 3, activation="relu", padding="same"),
        L.MaxPooling2D(),
        L.Conv2D(6, 3),
        L.BatchNormalization(),
        L.Flatten(),
        L.Dropout(0.25, seed=3),
        L.Dense(3, activation="softmax"),
    ]


def _sequential(layers, shape=(8, 8, 2)):
    return keras.Sequential([keras.Input(shape)] + layers)


def _functional(layers, shape=(8, 8, 2)):
    inp = keras.Input(shape)
    x = inp
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


def _compiled(model, **kw):
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy", **kw)
    return model


def _branchy():
    inp = keras.Input((8, 8, 2))
    a = L.Conv2D(2, 3, padding="same")(inp)
    x = L.Add()([inp, a])
    return keras.Model(inp, L.Dense(3, activation="softmax")(L.Flatten()(x)))


def _twice():
    inp = keras.Input((5,))
    d = L.Dense(5)
    return keras.Model(inp, d(d(inp)))


# -- the plan: a case table --------------------------------------------------------------------
CASES = {
    "sequential": (lambda: _compiled(_sequential(_chain_layers())), "stack", None),
    "functional chain": (lambda: _compiled(_functional(_chain_layers())), "stack", None),
    "branches": (lambda: _compiled(_branchy()), "tape", "branches or merges"),
    "user layer": (
        lambda: _compiled(_sequential([L.Flatten(), Doubler(), L.Dense(3, activation="softmax")])),
        "tape",
        "has no hand-written backward",
    ),
    "layer called twice": (lambda: _compiled(_twice()), "tape", "a layer called twice"),
    "run_eagerly": (lambda: _compiled(_sequential(_chain_layers()), run_eagerly=True), "tape", "run_eagerly"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_engine_and_why(case):
    make, engine, why = CASES[case]
    plan = compile_plan(make())
    assert plan.engine == engine
    if why is None:
        assert plan.why_tape is None
    else:
        assert why in plan.why_tape


@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_rewrites_are_decided_once_and_alike(build):
    plan = compile_plan(_compiled(build(_chain_layers())))
    assert [type(l).__name__ for l in plan.layers] == [type(l).__name__ for l in _chain_layers()]
    assert plan.fused_softmax  # softmax + sparse cross-entropy from the logits
    assert plan.relu_pool == frozenset({1})  # the Conv2D's ReLU backward folded into the pool's
    assert plan.folds == (2,) and plan.folds_logits == (2,)  # BatchNormalization into the Conv2D before it
    assert plan.first_trainable == 0 and plan.random_layers == (5,)
    assert "whole batch" in plan.why_whole  # BatchNormalization: never sharded
    no_bn = compile_plan(_compiled(build([l for l in _chain_layers() if not isinstance(l, L.BatchNormalization)])))
    assert no_bn.why_whole is None and no_bn.folds == ()


def test_a_loss_without_gradient_trains_on_the_tape_and_predicts_on_the_stack():
    model = _sequential([L.Flatten(), L.Dense(3)])

    def my_mse(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)

    model.compile(optimizer="sgd", loss=my_mse)
    plan = compile_plan(model)
    assert plan.stack and plan.loss_on_tape and not plan.fused_softmax


# -- the functional chain on the stack engine -----------------------------------------------------
def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 2)).astype("float32"), rng.integers(0, 3, n)


def _train(model, x, y):
    keras.utils.set_random_seed(5)
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, validation_data=(x[:16], y[:16]))
    return hist.history, model.get_weights(), model.predict(x, verbose=0)


def test_functional_chain_equals_sequential_bitwise_and_the_tape_closely():
    x, y = _data()
    keras.utils.set_random_seed(1)
    seq = _compiled(_sequential(_chain_layers()))
    fun = _compiled(_functional(_chain_layers()))
    eager = _compiled(_functional(_chain_layers()), run_eagerly=True)
    fun.set_weights(seq.get_weights())
    eager.set_weights(seq.get_weights())
    parallel.set_num_threads(1)  # the same (whole-batch) arithmetic in all three
    try:
        s, f, e = _train(seq, x, y), _train(fun, x, y), _train(eager, x, y)
    finally:
        parallel.set_num_threads(None)
    assert s[0] == f[0]
    for a, b in zip(s[1], f[1]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s[2], f[2])
    for key in s[0]:
        np.testing.assert_allclose(e[0][key], s[0][key], rtol=2e-5, err_msg=key)
    for a, b in zip(s[1], e[1]):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(e[2], s[2], rtol=2e-4, atol=2e-5)


def test_functional_chain_checks_its_input_shape():
    fun = _compiled(_functional([L.Flatten(), L.Dense(3, activation="softmax")]))
    with pytest.raises(ValueError, match=r"expects shape \(None, 8, 8, 2\); got data of shape \(4, 8, 9, 2\)"):
        fun.predict(np.zeros((4, 8, 9, 2), "float32"), verbose=0)


# -- no caches on the user's layers ---------------------------------------------------------------
def _holds_nothing(model):
    for layer in model.layers:
        assert getattr(layer, "_cache", None) is None, layer.name
        assert layer.grads == {}, layer.name
        assert getattr(layer, "last_output", None) is None, layer.name
        assert getattr(layer, "_y", None) is None and getattr(layer, "_mask", None) is None, layer.name


@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_the_layers_hold_no_batch_after_any_call(build):
    x, y = _data()
    model = _compiled(build(_chain_layers()))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, validation_split=0.25)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    model.train_on_batch(x[:8], y[:8])
    if build is _sequential:
        model(x[:4])
    _holds_nothing(model)
    assert model._runners == {}


# -- one compile per pass ---------------------------------------------------------------------
def test_a_pass_compiles_its_plan_once(monkeypatch):
    x, y = _data()
    calls = []
    real = runner.compile_plan
    monkeypatch.setattr(runner, "compile_plan", lambda m: calls.append(m.name) or real(m))
    model = _compiled(_sequential(_chain_layers()))
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, validation_data=(x[:16], y[:16]))
    assert len(calls) == 1  # 18 steps and 3 validation passes
    model.predict(x, batch_size=8, verbose=0)
    assert len(calls) == 2


# -- threads, for every model ---------------------------------------------------------------------
class _Hold(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.inside, self.release = threading.Event(), threading.Event()

    def on_train_batch_begin(self, *args, **kwargs):
        self.inside.set()
        assert self.release.wait(30)


@pytest.mark.parametrize("make", [lambda: _compiled(_branchy()), lambda: _compiled(_functional(_chain_layers()))])
def test_a_functional_model_refuses_predict_beside_fit(make):
    model = make()
    x, y = _data(16)
    hold, errors = _Hold(), []

    def run():
        try:
            model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[hold])
        except Exception as e:  # shown by the assertion
            errors.append(e)

    t = threading.Thread(target=run, name="trainer")
    t.start()
    try:
        assert hold.inside.wait(30)
        with pytest.raises(
            RuntimeError, match=r"Functional model .*predict\(\) was called .* while fit\(\) runs on thread 'trainer'"
        ):
            model.predict(x, verbose=0)
    finally:
        hold.release.set()
        t.join()
    assert errors == []


@pytest.mark.parametrize("make", [_branchy, lambda: _functional(_chain_layers())], ids=["tape", "stack"])
def test_a_functional_model_predicts_on_several_threads(make):
    model = make()
    x, _ = _data(64)
    expected = model.predict(x, verbose=0)
    start, results, errors = threading.Barrier(4), [None] * 4, []

    def work(i):
        start.wait()
        try:
            results[i] = [model.predict(x, verbose=0) for _ in range(3)]
        except Exception as e:  # shown by the assertion
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for outs in results:
        for out in outs:
            np.testing.assert_array_equal(out, expected)


def test_a_functional_chain_shards_like_one_thread(monkeypatch):
    x, y = _data(64)
    monkeypatch.setattr(parallel, "MIN_SHARD_FLOPS", 0)
    layers = [l for l in _chain_layers() if not isinstance(l, (L.BatchNormalization, L.Dropout))]
    weights, runs = None, {}
    try:
        for n in (1, 2):
            parallel.set_num_threads(n)
            keras.utils.set_random_seed(2)
            model = _compiled(_functional([type(l).from_config(l.get_config()) for l in layers]))
            if weights is None:
                weights = model.get_weights()
            model.set_weights(weights)
            model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
            runs[n] = model.get_weights()
    finally:
        parallel.set_num_threads(None)
    for a, b in zip(runs[1], runs[2]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
