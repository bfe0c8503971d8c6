"""Adadelta, Adagrad, Nadam, AdamW and ``weight_decay`` against Keras 3's formulas.

The references are written out here in plain Python floats (``math.sqrt``), one scalar at a
time, independently of convolab's array code; the first steps of simple cases are also worked
out by hand as literal numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from convolab import keras, kernels, optimizers
from convolab.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, Nadam, RMSprop


def run(opt, w0, grads, dtype=np.float64):
    """Apply each step's gradients to a copy of ``w0``; return the weights after each step."""
    w = np.array(w0, dtype=dtype)
    out = []
    for g in grads:
        g = np.array(g, dtype=dtype)
        g_before = g.copy()
        opt.apply([g], [w])
        np.testing.assert_array_equal(g, g_before)  # the optimizer never writes into the gradient
        out.append(w.copy())
    return out


W0 = [1.0, -0.5, 2.0]
GRADS = [[0.5, -1.0, 1e-4], [0.1, 0.2, 1e-4], [-0.3, 0.4, -2e-4], [0.7, -0.1, 0.0]]


# -- references, one scalar at a time ---------------------------------------------------------


def ref_adagrad(w, grads, lr, acc0, eps):
    a, out = acc0, []
    for g in grads:
        a = a + g * g
        w = w - lr * g / math.sqrt(a + eps)
        out.append(w)
    return out


def ref_adadelta(w, grads, lr, rho, eps):
    a = s = 0.0
    out = []
    for g in grads:
        a = rho * a + (1 - rho) * g * g
        d = -math.sqrt(s + eps) * g / math.sqrt(a + eps)
        s = rho * s + (1 - rho) * d * d
        w = w + lr * d
        out.append(w)
    return out


def ref_nadam(w, grads, lr, b1, b2, eps):
    m = v = 0.0
    u_prod = 1.0
    out = []
    for i, g in enumerate(grads):
        t = i + 1
        u_t = b1 * (1 - 0.5 * 0.96**t)
        u_next = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_prod = u_prod * u_t
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_next * m / (1 - u_prod * u_next) + (1 - u_t) * g / (1 - u_prod)
        v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(w)
    return out


def ref_adamw(w, grads, lr, wd, b1, b2, eps):
    m = v = 0.0
    out = []
    for i, g in enumerate(grads):
        t = i + 1
        w = w - w * wd * lr  # Keras: decay first, with the step's learning rate
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        w = w - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (math.sqrt(v) + eps)
        out.append(w)
    return out


def by_coordinate(ref, **kw):
    """``ref`` run on each coordinate of W0/GRADS, transposed to one row per step."""
    cols = [ref(W0[i], [g[i] for g in GRADS], **kw) for i in range(len(W0))]
    return [list(row) for row in zip(*cols)]


# -- defaults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls,expected",
    [
        (Adadelta, dict(learning_rate=0.001, rho=0.95, epsilon=1e-7)),
        (Adagrad, dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7)),
        (Nadam, dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)),
        (AdamW, dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False)),
    ],
)
def test_keras_defaults_and_names(cls, expected):
    opt = cls()
    for key, value in expected.items():
        assert getattr(opt, key) == value, key
    assert opt.name == cls.__name__.lower()
    assert opt.get_config() == {"name": opt.name, **expected}


def test_adamw_positional_order_is_keras():
    opt = AdamW(0.01, 0.1, 0.8)
    assert (opt.learning_rate, opt.weight_decay, opt.beta_1) == (0.01, 0.1, 0.8)


# -- Adagrad ---------------------------------------------------------------------------------


def test_adagrad_hand_values():
    # a = 0 + 3**2 = 9:      w = 1 - 0.1 * 3 / 3 = 0.9
    # a = 9 + 4**2 = 25:     w = 0.9 - 0.1 * 4 / 5 = 0.82
    steps = run(Adagrad(learning_rate=0.1, initial_accumulator_value=0.0, epsilon=0.0), [1.0], [[3.0], [4.0]])
    np.testing.assert_allclose([s[0] for s in steps], [0.9, 0.82], rtol=1e-15)


def test_adagrad_initial_accumulator_hand_value():
    # a = 0.75 + 0.5**2 = 1:  w = 2 - 0.1 * 0.5 / 1 = 1.95
    steps = run(Adagrad(learning_rate=0.1, initial_accumulator_value=0.75, epsilon=0.0), [2.0], [[0.5]])
    np.testing.assert_allclose(steps[0], [1.95], rtol=1e-15)


@pytest.mark.parametrize("kw", [{}, dict(learning_rate=0.05, initial_accumulator_value=0.01, epsilon=1e-3)])
def test_adagrad_formula(kw):
    full = {**dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7), **kw}
    expect = by_coordinate(
        ref_adagrad, lr=full["learning_rate"], acc0=full["initial_accumulator_value"], eps=full["epsilon"]
    )
    np.testing.assert_allclose(run(Adagrad(**kw), W0, GRADS), expect, rtol=1e-13)


# -- Adadelta --------------------------------------------------------------------------------


def test_adadelta_first_step_hand_value():
    # rho = 0.5, eps = 1, g = 4:  a = 0.5 * 16 = 8;  d = -sqrt(0 + 1) * 4 / sqrt(8 + 1) = -4/3;
    # w = 1 + 0.3 * (-4/3) = 0.6;  s = 0.5 * 16/9 = 8/9
    opt = Adadelta(learning_rate=0.3, rho=0.5, epsilon=1.0)
    w = np.array([1.0])
    opt.apply([np.array([4.0])], [w])
    np.testing.assert_allclose(w, [0.6], rtol=1e-15)
    state = opt.get_state(w)
    np.testing.assert_allclose(state["accumulated_grad"], [8.0], rtol=1e-15)
    np.testing.assert_allclose(state["accumulated_delta_var"], [8.0 / 9.0], rtol=1e-15)


@pytest.mark.parametrize("kw", [{}, dict(learning_rate=1.0, rho=0.9, epsilon=1e-6)])
def test_adadelta_formula(kw):
    full = {**dict(learning_rate=0.001, rho=0.95, epsilon=1e-7), **kw}
    expect = by_coordinate(ref_adadelta, lr=full["learning_rate"], rho=full["rho"], eps=full["epsilon"])
    np.testing.assert_allclose(run(Adadelta(**kw), W0, GRADS), expect, rtol=1e-13)


# -- Nadam -----------------------------------------------------------------------------------


def test_nadam_first_step_hand_value_and_momentum_cache():
    # u1 = 0.9 (1 - 0.5 * 0.96)   = 0.468;  u2 = 0.9 (1 - 0.5 * 0.9216) = 0.48528
    # g = 1: m = 0.1, v = 0.001, v_hat = 1;  m_hat = 0.48528 * 0.1 / (1 - 0.468 * 0.48528) + 0.532 / 0.532
    opt = Nadam(learning_rate=0.01, epsilon=0.0)
    assert opt.get_global_state() == {"u_product": 1.0}
    w = np.array([1.0])
    opt.apply([np.array([1.0])], [w])
    m_hat = 0.048528 / (1 - 0.22711104) + 1.0
    np.testing.assert_allclose(w, [1.0 - 0.01 * m_hat], rtol=1e-14)
    np.testing.assert_allclose(opt.get_global_state()["u_product"], 0.468, rtol=1e-15)
    opt.apply([np.array([1.0])], [w])
    np.testing.assert_allclose(opt.get_global_state()["u_product"], 0.468 * 0.48528, rtol=1e-15)


def test_nadam_cache_advances_once_per_step_not_per_variable():
    opt = Nadam()
    opt.apply([np.ones(2), np.ones(3), np.ones(1)], [np.zeros(2), np.zeros(3), np.zeros(1)])
    np.testing.assert_allclose(opt.get_global_state()["u_product"], 0.468, rtol=1e-15)


@pytest.mark.parametrize("kw", [{}, dict(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-4)])
def test_nadam_formula(kw):
    full = {**dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7), **kw}
    expect = by_coordinate(
        ref_nadam, lr=full["learning_rate"], b1=full["beta_1"], b2=full["beta_2"], eps=full["epsilon"]
    )
    np.testing.assert_allclose(run(Nadam(**kw), W0, GRADS), expect, rtol=1e-13)


def test_nadam_global_state_is_checked():
    opt = Nadam()
    with pytest.raises(ValueError, match=r"Nadam: global state must have the keys \['u_product'\]; got \['u'\]"):
        opt.set_global_state({"u": 0.5})
    with pytest.raises(ValueError, match="Nadam: `u_product` must be a finite number; got nan"):
        opt.set_global_state({"u_product": float("nan")})
    opt.set_global_state({"u_product": 0.25})
    assert opt.get_global_state() == {"u_product": 0.25}


# -- AdamW and weight_decay ------------------------------------------------------------------


def test_adamw_first_step_hand_value():
    # decay: w = 2 - 2 * 0.5 * 0.1 = 1.9; Adam's first step with eps = 0 moves by lr * sign(g): 1.8
    steps = run(AdamW(learning_rate=0.1, weight_decay=0.5, epsilon=0.0), [2.0], [[0.5]])
    np.testing.assert_allclose(steps[0], [1.8], rtol=1e-15)


@pytest.mark.parametrize("kw", [{}, dict(learning_rate=0.01, weight_decay=0.1, beta_1=0.8, beta_2=0.99, epsilon=1e-4)])
def test_adamw_formula(kw):
    full = {**dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7), **kw}
    expect = by_coordinate(
        ref_adamw,
        lr=full["learning_rate"],
        wd=full["weight_decay"],
        b1=full["beta_1"],
        b2=full["beta_2"],
        eps=full["epsilon"],
    )
    np.testing.assert_allclose(run(AdamW(**kw), W0, GRADS), expect, rtol=1e-13)


def test_adamw_is_adam_with_weight_decay():
    a = run(AdamW(learning_rate=0.01, weight_decay=0.3, amsgrad=True), W0, GRADS)
    b = run(Adam(learning_rate=0.01, weight_decay=0.3, amsgrad=True), W0, GRADS)
    np.testing.assert_array_equal(a, b)


def test_adamw_float32_c_kernel_matches_the_float64_formula():
    if kernels.lib is None:
        pytest.skip("compiled kernels not built")
    before = kernels.calls["adam_f32"]
    steps = run(AdamW(learning_rate=0.01, weight_decay=0.1, epsilon=1e-3), W0, GRADS, dtype=np.float32)
    assert kernels.calls["adam_f32"] == before + len(GRADS)
    expect = by_coordinate(ref_adamw, lr=0.01, wd=0.1, b1=0.9, b2=0.999, eps=1e-3)
    np.testing.assert_allclose(steps, expect, rtol=1e-5, atol=1e-6)


def test_weight_decay_comes_before_the_update_for_any_optimizer():
    # decay first: 1 - 1 * 0.2 * 0.1 = 0.98, then SGD: 0.98 - 0.1 * 0.5 = 0.93
    # (the other order would give (1 - 0.05) * 0.98 = 0.931)
    steps = run(SGD(learning_rate=0.1, weight_decay=0.2), [1.0], [[0.5]])
    np.testing.assert_allclose(steps[0], [0.93], rtol=1e-15)
    assert SGD(weight_decay=0.2).get_config()["weight_decay"] == 0.2
    assert "weight_decay" not in SGD().get_config()


@pytest.mark.parametrize(
    "make",
    [
        lambda: RMSprop(learning_rate=0.01, weight_decay=0.05),
        lambda: Adagrad(learning_rate=0.1, weight_decay=0.05),
        lambda: Nadam(learning_rate=0.01, weight_decay=0.05),
        lambda: Adadelta(learning_rate=1.0, weight_decay=0.05),
    ],
)
def test_weight_decay_is_the_plain_step_on_decayed_weights(make):
    # One step of opt(weight_decay) == decaying by hand, then one step of the same opt without decay.
    w = np.array(W0)
    opt = make()
    opt.apply([np.array(GRADS[0])], [w])
    plain = make()
    lr = plain.learning_rate
    plain.weight_decay = None
    v = np.array([x - x * 0.05 * lr for x in W0])
    plain.apply([np.array(GRADS[0])], [v])
    np.testing.assert_array_equal(w, v)


def test_weight_decay_follows_clipping_and_uses_the_scheduled_rate():
    sched = optimizers.schedules.PiecewiseConstantDecay([0], [0.1, 0.5])  # 0.1 at step 0, then 0.5
    steps = run(SGD(learning_rate=sched, weight_decay=0.2, clipvalue=0.25), [1.0], [[1.0], [1.0]])
    w1 = 1 - 1 * 0.2 * 0.1 - 0.1 * 0.25
    w2 = w1 - w1 * 0.2 * 0.5 - 0.5 * 0.25
    np.testing.assert_allclose([s[0] for s in steps], [w1, w2], rtol=1e-15)


# -- lookup, keras namespace, errors ---------------------------------------------------------


@pytest.mark.parametrize(
    "name,cls", [("adadelta", Adadelta), ("Adagrad", Adagrad), ("nadam", Nadam), ("AdamW", AdamW), ("adamw", AdamW)]
)
def test_get_by_name(name, cls):
    a, b = optimizers.get(name), optimizers.get(name)
    assert type(a) is cls and a is not b
    assert getattr(keras.optimizers, cls.__name__) is cls


def test_get_from_serialized_dict():
    opt = optimizers.get({"class_name": "Nadam", "config": {"learning_rate": 0.01, "beta_1": 0.8}})
    assert type(opt) is Nadam and (opt.learning_rate, opt.beta_1) == (0.01, 0.8)
    back = optimizers.deserialize(optimizers.serialize(AdamW(weight_decay=0.2, clipnorm=1.0)))
    assert type(back) is AdamW and back.get_config() == AdamW(weight_decay=0.2, clipnorm=1.0).get_config()


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Adadelta(rho=1.5), r"Adadelta: `rho` must be a finite number in \[0, 1\]; got 1.5"),
        (lambda: Adadelta(epsilon=-1e-7), r"Adadelta: `epsilon` must be a finite number >= 0; got -1e-07"),
        (
            lambda: Adagrad(initial_accumulator_value=-0.1),
            r"Adagrad: `initial_accumulator_value` must be a finite number >= 0; got -0.1",
        ),
        (lambda: Adagrad(epsilon="1e-7"), r"Adagrad: `epsilon` must be a finite number >= 0; got '1e-7'"),
        (lambda: Nadam(beta_1=1.0), r"Nadam: `beta_1` must be a finite number in \[0, 1\); got 1.0"),
        (lambda: Nadam(beta_2=float("nan")), r"Nadam: `beta_2` must be a finite number in \[0, 1\); got nan"),
        (lambda: AdamW(weight_decay=None), r"AdamW: `weight_decay` must be a float .*; got None"),
        (lambda: AdamW(weight_decay=-0.1), r"AdamW: `weight_decay` must be a finite number >= 0; got -0.1"),
        (lambda: AdamW(beta_2=True), r"AdamW: `beta_2` must be a finite number in \[0, 1\); got True"),
        (lambda: SGD(weight_decay=float("inf")), r"SGD: `weight_decay` must be a finite number >= 0; got inf"),
        (lambda: Adagrad(learning_rate=0), r"Adagrad: `learning_rate` must be a positive number; got 0"),
        (lambda: Nadam(learning_rate=10**400), r"Nadam: `learning_rate` must be a positive number; got 1000"),
    ],
)
def test_bad_arguments_name_the_class(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "cls,kw", [(Adadelta, "decay_rate"), (Adagrad, "initial_accumulator"), (Nadam, "beta1"), (AdamW, "wd")]
)
def test_unknown_keyword_is_a_type_error(cls, kw):
    with pytest.raises(TypeError, match=rf"{cls.__name__}: unexpected keyword argument\(s\) {kw}"):
        cls(**{kw: 0.5})


@pytest.mark.parametrize("cls", [Adadelta, Adagrad, Nadam, AdamW])
def test_float32_stays_float32_and_state_is_per_variable(cls):
    opt = cls(learning_rate=0.01)
    a, b = np.ones(3, np.float32), np.ones((2, 2), np.float32)
    for _ in range(2):
        opt.apply([np.full(3, 0.5, np.float32), np.full((2, 2), -1.0, np.float32)], [a, b])
    assert a.dtype == b.dtype == np.float32
    for p in (a, b):
        state = opt.get_state(p)
        assert all(s.shape == p.shape and s.dtype == np.float32 for s in state.values())
    expect64 = run(cls(learning_rate=0.01), [1.0] * 3, [[0.5] * 3] * 2)[-1]
    np.testing.assert_allclose(a, expect64, rtol=1e-5)
