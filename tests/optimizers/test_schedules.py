"""Learning-rate schedules: Keras's formulas, configs, and how optimizers and fit use them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convolab import keras, kernels, optimizers
from convolab.optimizers import SGD, Adam, RMSprop
from convolab.optimizers.schedules import (
    CosineDecay,
    ExponentialDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
    deserialize,
    serialize,
)


def values(schedule, steps):
    return [schedule(s) for s in steps]


# -- formulas --------------------------------------------------------------------------------


def test_exponential_decay_hand_values():
    s = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    np.testing.assert_allclose(
        values(s, [0, 5, 10, 15, 20]), [0.1, 0.1 / math.sqrt(2), 0.05, 0.05 / math.sqrt(2), 0.025], rtol=1e-15
    )
    st = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    np.testing.assert_allclose(values(st, [0, 9, 10, 19, 20, 35]), [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125], rtol=1e-15)


@pytest.mark.parametrize(
    "lr0,steps,rate,stair", [(0.01, 1000, 0.96, False), (3e-4, 7, 0.9, True), (1.0, 2.5, 1.1, False)]
)
def test_exponential_decay_formula(lr0, steps, rate, stair):
    s = ExponentialDecay(lr0, steps, rate, staircase=stair)
    for step in [0, 1, 2, 6, 7, 8, 999, 1000, 12345]:
        p = step / steps
        if stair:
            p = math.floor(p)
        assert s(step) == pytest.approx(lr0 * rate**p, rel=1e-14)


def test_piecewise_constant_intervals_are_closed_on_the_right():
    s = PiecewiseConstantDecay([2, 5], [1.0, 0.5, 0.1])
    assert values(s, range(9)) == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1]
    assert s(10**9) == 0.1
    one = PiecewiseConstantDecay([0], [0.3, 0.2])
    assert values(one, [0, 1, 2]) == [0.3, 0.2, 0.2]


def test_cosine_decay_hand_values():
    s = CosineDecay(1.0, decay_steps=4)
    np.testing.assert_allclose(
        values(s, [0, 1, 2, 3, 4, 8]),
        [1.0, 0.5 + 0.5 * math.sqrt(0.5), 0.5, 0.5 - 0.5 * math.sqrt(0.5), 0.0, 0.0],
        rtol=1e-15,
        atol=1e-16,
    )
    a = CosineDecay(2.0, decay_steps=4, alpha=0.2)
    # 2 * (0.8 * cosine + 0.2): cosine = 1, 0.5, 0
    np.testing.assert_allclose(values(a, [0, 2, 4, 100]), [2.0, 1.2, 0.4, 0.4], rtol=1e-15)


def test_cosine_decay_warmup_hand_values():
    s = CosineDecay(0.0, decay_steps=4, warmup_target=1.0, warmup_steps=2)
    # warmup 0 -> 1 over 2 steps, then the cosine from 1 over 4 steps, then flat
    np.testing.assert_allclose(values(s, [0, 1, 2, 4, 6, 50]), [0.0, 0.5, 1.0, 0.5, 0.0, 0.0], rtol=1e-15, atol=1e-16)
    w = CosineDecay(0.1, decay_steps=10, warmup_target=0.5, warmup_steps=4, alpha=0.1)
    # warmup from 0.1: 0.1 + 0.4 * 3/4 = 0.4 at step 3; decay at step 9 (5 into the cosine): 0.5 * (0.9 * 0.5 + 0.1)
    np.testing.assert_allclose(values(w, [3, 4, 9, 14]), [0.4, 0.5, 0.275, 0.05], rtol=1e-14)


def test_cosine_decay_warmup_target_without_warmup_steps_decays_from_the_target():
    s = CosineDecay(0.1, decay_steps=2, warmup_target=1.0)
    np.testing.assert_allclose(values(s, [0, 1, 2]), [1.0, 0.5, 0.0], rtol=1e-15, atol=1e-16)


@pytest.mark.parametrize(
    "lr0,steps,alpha,target,warm", [(0.1, 100, 0.0, None, 0), (0.01, 7, 0.3, None, 0), (1e-4, 50, 0.05, 0.02, 13)]
)
def test_cosine_decay_formula(lr0, steps, alpha, target, warm):
    s = CosineDecay(lr0, steps, alpha=alpha, warmup_target=target, warmup_steps=warm)
    for step in [0, 1, 5, 12, 13, 14, 49, 62, 63, 64, 1000]:
        if target is None:
            k, peak = min(step, steps), lr0
        else:
            k = min(step, steps + warm)
            if k < warm:
                assert s(step) == pytest.approx((target - lr0) * (k / warm) + lr0, rel=1e-14)
                continue
            k, peak = k - warm, target
        expect = peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * k / steps)) + alpha)
        assert s(step) == pytest.approx(expect, rel=1e-14, abs=1e-18)


# -- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule,config",
    [
        (
            ExponentialDecay(0.1, 100, 0.9),
            dict(initial_learning_rate=0.1, decay_steps=100, decay_rate=0.9, staircase=False, name="ExponentialDecay"),
        ),
        (
            PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001]),
            dict(boundaries=[10, 20], values=[0.1, 0.01, 0.001], name="PiecewiseConstant"),
        ),
        (
            CosineDecay(0.1, 1000, alpha=0.1, warmup_target=0.2, warmup_steps=5),
            dict(
                initial_learning_rate=0.1,
                decay_steps=1000,
                alpha=0.1,
                name="CosineDecay",
                warmup_target=0.2,
                warmup_steps=5,
            ),
        ),
    ],
)
def test_get_config_is_keras_and_round_trips(schedule, config):
    assert schedule.get_config() == config
    back = type(schedule).from_config(schedule.get_config())
    assert back.get_config() == config
    assert values(back, [0, 7, 15, 500, 2000]) == values(schedule, [0, 7, 15, 500, 2000])
    again = deserialize(serialize(schedule))
    assert type(again) is type(schedule) and again.get_config() == config
    assert keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule)).get_config() == config


def test_keras_namespace():
    import convolab.keras.optimizers.schedules as ks

    for name in ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "CosineDecay"]:
        assert getattr(ks, name) is getattr(optimizers.schedules, name)


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: ExponentialDecay(0.1, 0, 0.9), r"ExponentialDecay: `decay_steps` must be a finite number > 0; got 0"),
        (
            lambda: ExponentialDecay(0.1, 10, -0.5),
            r"ExponentialDecay: `decay_rate` must be a finite number > 0; got -0.5",
        ),
        (
            lambda: ExponentialDecay(-0.1, 10, 0.5),
            r"ExponentialDecay: `initial_learning_rate` must be .* >= 0; got -0.1",
        ),
        (lambda: ExponentialDecay("0.1", 10, 0.5), r"ExponentialDecay: `initial_learning_rate` .*; got '0.1'"),
        (
            lambda: PiecewiseConstantDecay([10], [0.1]),
            r"PiecewiseConstantDecay: the length of `boundaries` should be 1 "
            r"less than the length of `values`; got boundaries=\[10\] of length 1",
        ),
        (
            lambda: PiecewiseConstantDecay([10, 5], [0.1, 0.2, 0.3]),
            r"PiecewiseConstantDecay: `boundaries` must be "
            r"strictly increasing; got \[10, 5\]",
        ),
        (
            lambda: PiecewiseConstantDecay([1.5], [0.1, 0.2]),
            r"PiecewiseConstantDecay: `boundaries` must be integer steps; "
            r"got 1.5",
        ),
        (lambda: PiecewiseConstantDecay([], [0.1]), r"PiecewiseConstantDecay: `boundaries` needs at least one step"),
        (
            lambda: PiecewiseConstantDecay([3], [0.1, float("nan")]),
            r"PiecewiseConstantDecay: `values\[1\]` must be a "
            r"finite number >= 0; got nan",
        ),
        (lambda: CosineDecay(0.1, -5), r"CosineDecay: `decay_steps` must be a finite number > 0; got -5"),
        (lambda: CosineDecay(0.1, 5, alpha=1.5), r"CosineDecay: `alpha` must be a finite number in \[0, 1\]; got 1.5"),
        (lambda: CosineDecay(0.1, 5, warmup_steps=-1), r"CosineDecay: `warmup_steps` must be a finite number >= 0"),
        (lambda: CosineDecay(0.1, 5, warmup_target=float("inf")), r"CosineDecay: `warmup_target` must be .*; got inf"),
    ],
)
def test_bad_arguments_name_the_class(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "cls,args",
    [(ExponentialDecay, (0.1, 10, 0.9)), (PiecewiseConstantDecay, ([1], [0.1, 0.2])), (CosineDecay, (0.1, 10))],
)
def test_unknown_keyword_is_a_type_error(cls, args):
    with pytest.raises(TypeError, match=rf"{cls.__name__}.*unexpected keyword argument 'decay'"):
        cls(*args, decay=0.5)


def test_unknown_class_in_deserialize():
    with pytest.raises(
        ValueError,
        match=r"Unknown learning rate schedule class 'PolynomialDecay'; valid: "
        r"ExponentialDecay, PiecewiseConstantDecay, CosineDecay",
    ):
        deserialize({"class_name": "PolynomialDecay", "config": {}})


# -- optimizers with a schedule --------------------------------------------------------------


def test_learning_rate_reads_the_schedule_at_iterations():
    opt = SGD(learning_rate=PiecewiseConstantDecay([1, 3], [0.5, 0.25, 0.125]))
    w = np.array([0.0])
    seen = []
    for _ in range(5):
        seen.append(opt.learning_rate)
        opt.apply([np.array([1.0])], [w])
    # Keras evaluates at `iterations` before the step: steps 0, 1 -> 0.5; 2, 3 -> 0.25; 4 -> 0.125
    assert seen == [0.5, 0.5, 0.25, 0.25, 0.125]
    assert w[0] == -(0.5 + 0.5 + 0.25 + 0.25 + 0.125)
    assert opt.learning_rate == 0.125 and opt.lr == 0.125
    assert isinstance(opt.learning_rate_schedule, PiecewiseConstantDecay)
    assert SGD().learning_rate_schedule is None


def test_learning_rate_setter_with_a_schedule_follows_keras():
    opt = Adam(learning_rate=ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(
        TypeError,
        match=r"Adam was created with a learning-rate schedule \(ExponentialDecay\), so its "
        r"learning rate cannot be set to 0.01",
    ):
        opt.learning_rate = 0.01
    opt.learning_rate = CosineDecay(0.2, 10)  # another schedule may replace it
    assert opt.learning_rate == 0.2
    fixed = Adam(learning_rate=0.1)
    fixed.learning_rate = ExponentialDecay(0.3, 10, 0.5)
    assert fixed.learning_rate == 0.3
    fixed.iterations = 10
    assert fixed.learning_rate == pytest.approx(0.15, rel=1e-15)


def test_optimizer_config_holds_the_schedule():
    opt = SGD(learning_rate=CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=10), momentum=0.9)
    cfg = opt.get_config()
    assert cfg["learning_rate"] == {"class_name": "CosineDecay", "config": opt.learning_rate_schedule.get_config()}
    back = optimizers.deserialize(optimizers.serialize(opt))
    assert back.get_config() == cfg and back.learning_rate == 0.1
    back.iterations = 5
    assert back.learning_rate == pytest.approx(0.15)


class _Bad(LearningRateSchedule):
    def __call__(self, step):
        return float("nan") if step >= 1 else 0.1


def test_a_schedule_giving_a_bad_value_stops_before_any_variable_moves():
    opt = SGD(learning_rate=_Bad())
    w = np.array([1.0])
    opt.apply([np.array([1.0])], [w])
    with pytest.raises(
        ValueError,
        match=r"SGD: the learning-rate schedule _Bad gave nan at step 1; expected a finite "
        r"number >= 0",
    ):
        opt.apply([np.array([1.0])], [w])
    assert w[0] == 0.9 and opt.iterations == 1


def test_base_schedule_must_be_subclassed():
    with pytest.raises(NotImplementedError, match="'LearningRateSchedule' must override `__call__"):
        LearningRateSchedule()(0)
    with pytest.raises(NotImplementedError, match="must override `get_config"):
        _Bad().get_config()


@pytest.mark.parametrize("cls,kernel", [(Adam, "adam_f32"), (RMSprop, "rmsprop_f32")])
def test_c_kernels_get_the_scheduled_rate(cls, kernel):
    """float32 Adam/RMSprop run in C; each step must use schedule(iterations), like float64 NumPy."""
    if kernels.lib is None:
        pytest.skip("compiled kernels not built")
    sched = PiecewiseConstantDecay([1, 2], [0.1, 0.01, 0.001])
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(50), [rng.standard_normal(50) for _ in range(4)]
    w32, w64 = w0.astype(np.float32), w0.copy()
    fast, slow = cls(learning_rate=sched, epsilon=1e-3), cls(learning_rate=sched, epsilon=1e-3)
    before = kernels.calls[kernel]
    for g in grads:
        fast.apply([g.astype(np.float32)], [w32])
        slow.apply([g], [w64])
    assert kernels.calls[kernel] == before + len(grads)
    np.testing.assert_allclose(w32, w64, rtol=1e-5, atol=1e-6)
    # and it is not the same as a fixed rate: the schedule really reached the kernel
    fixed = cls(learning_rate=0.1, epsilon=1e-3)
    w_fixed = w0.astype(np.float32)
    for g in grads:
        fixed.apply([g.astype(np.float32)], [w_fixed])
    assert np.abs(w_fixed - w32).max() > 1e-3


# -- fit ---------------------------------------------------------------------------------------


def _model(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(4, activation="relu", input_shape=(3,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_fit_with_a_schedule_changes_the_rate_every_batch():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 3)), rng.integers(0, 2, 32)
    sched = ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5, staircase=True)
    scheduled = _model(SGD(learning_rate=sched))
    seen = []
    log = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs=None: seen.append(scheduled.optimizer.learning_rate)
    )
    scheduled.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[log])
    assert scheduled.optimizer.iterations == 8
    assert seen == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]
    assert scheduled.optimizer.learning_rate == 0.1 * 0.5**4

    # The same run with a fixed-rate SGD whose rate a callback sets before each batch, by hand.
    manual = _model(SGD(learning_rate=0.1))
    hand = [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]

    def set_rate(batch, logs=None):
        manual.optimizer.learning_rate = hand[manual.optimizer.iterations]

    manual.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_train_batch_begin=set_rate)],
    )
    for a, b in zip(scheduled.get_weights(), manual.get_weights()):
        np.testing.assert_array_equal(a, b)
    fixed = _model(SGD(learning_rate=0.1))
    fixed.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert not all(np.array_equal(a, b) for a, b in zip(fixed.get_weights(), scheduled.get_weights()))


def test_rate_callbacks_set_a_fixed_rate_and_refuse_a_schedule_as_keras_does():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    fixed = _model(Adam(learning_rate=0.01))
    cb = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    history = fixed.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[cb])
    assert history.history["learning_rate"] == [0.005, 0.0025, 0.00125]
    scheduled = _model(Adam(learning_rate=ExponentialDecay(0.01, 2, 0.5)))
    with pytest.raises(TypeError, match="Adam was created with a learning-rate schedule"):
        scheduled.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[cb])
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=1e9)
    with pytest.raises(TypeError, match="Adam was created with a learning-rate schedule"):
        scheduled.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[plateau])  # epoch 2 reduces
