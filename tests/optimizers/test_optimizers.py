"""Optimisers against Keras's update formulas, worked out by hand in plain Python floats.

Each expected value below is computed from Keras's formula with scalar arithmetic
(``math.sqrt`` and floats), never by calling convolab, and the first steps of the
simplest cases are also written out as literal numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from convolab import optimizers
from convolab.optimizers import SGD, Adam, RMSprop


def run(opt, w0, grads, dtype=np.float64):
    """Apply ``grads`` (a list of per-step lists) to a copy of ``w0``; return the weights after each step."""
    w = np.array(w0, dtype=dtype)
    out = []
    for g in grads:
        g = np.array(g, dtype=dtype)
        g_before = g.copy()
        opt.apply([g], [w])
        np.testing.assert_array_equal(g, g_before)  # the optimiser never writes into the gradient
        out.append(w.copy())
    return out


# Three steps on three weights; the last coordinate has a tiny gradient, where epsilon matters.
W0 = [1.0, -0.5, 2.0]
GRADS = [[0.5, -1.0, 1e-4], [0.1, 0.2, 1e-4], [-0.3, 0.4, -2e-4]]


# ---------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------


def test_sgd_default_learning_rate_hand_values():
    opt = SGD()
    assert opt.learning_rate == 0.01 and opt.momentum == 0.0 and opt.nesterov is False
    steps = run(opt, [1.0, -2.0], [[0.5, -1.0], [0.1, 0.2]])
    # w -= 0.01 * g
    np.testing.assert_allclose(steps[0], [0.995, -1.99], rtol=1e-15)
    np.testing.assert_allclose(steps[1], [0.994, -1.992], rtol=1e-15)
    assert opt.iterations == 2


def test_sgd_momentum_hand_values():
    # m = 0.9 m - 0.1 g; w += m.  g = 1.0, 0.5, -2.0 from w = 1.
    # m1 = -0.1        w1 = 0.9
    # m2 = -0.14       w2 = 0.76
    # m3 = 0.074       w3 = 0.834
    steps = run(SGD(learning_rate=0.1, momentum=0.9), [1.0], [[1.0], [0.5], [-2.0]])
    np.testing.assert_allclose([s[0] for s in steps], [0.9, 0.76, 0.834], rtol=1e-13)


def test_sgd_nesterov_hand_values():
    # m = 0.9 m - 0.1 g; w += 0.9 m - 0.1 g (Keras's Nesterov form).
    # step 1: m = -0.1,  w = 1 - 0.1 - 0.09            = 0.81
    # step 2: m = -0.14, w = 0.81 - 0.05 - 0.126        = 0.634
    # step 3: m = 0.074, w = 0.634 + 0.2 + 0.0666       = 0.9006
    steps = run(SGD(learning_rate=0.1, momentum=0.9, nesterov=True), [1.0], [[1.0], [0.5], [-2.0]])
    np.testing.assert_allclose([s[0] for s in steps], [0.81, 0.634, 0.9006], rtol=1e-13)


def test_sgd_momentum_vector_formula():
    lr, mom = 0.05, 0.8
    w, m, expect = list(W0), [0.0] * 3, []
    for g in GRADS:
        for i in range(3):
            m[i] = mom * m[i] - lr * g[i]
            w[i] = w[i] + m[i]
        expect.append(list(w))
    steps = run(SGD(learning_rate=lr, momentum=mom), W0, GRADS)
    np.testing.assert_allclose(steps, expect, rtol=1e-13)


# ---------------------------------------------------------------------------
# RMSprop
# ---------------------------------------------------------------------------


def _rmsprop_ref(lr=0.001, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    w, v, m, a, expect = list(W0), [0.0] * 3, [0.0] * 3, [0.0] * 3, []
    for g in GRADS:
        for i in range(3):
            v[i] = rho * v[i] + (1 - rho) * g[i] ** 2
            if centered:
                a[i] = rho * a[i] + (1 - rho) * g[i]
                denom = v[i] - a[i] ** 2 + eps
            else:
                denom = v[i] + eps
            inc = lr * g[i] / math.sqrt(denom)  # epsilon INSIDE the square root (Keras)
            if momentum:
                m[i] = momentum * m[i] + inc
                w[i] -= m[i]
            else:
                w[i] -= inc
        expect.append(list(w))
    return expect


def test_rmsprop_defaults_first_step_hand_value():
    opt = RMSprop()
    assert (opt.learning_rate, opt.rho, opt.momentum, opt.epsilon, opt.centered) == (0.001, 0.9, 0.0, 1e-7, False)
    steps = run(opt, [1.0], [[0.5]])
    # v = 0.1 * 0.25 = 0.025; w = 1 - 0.001 * 0.5 / sqrt(0.025 + 1e-7) = 1 - 0.0031622713 = 0.9968377287
    np.testing.assert_allclose(steps[0][0], 0.9968377287, rtol=1e-10)


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(momentum=0.9), dict(centered=True), dict(centered=True, momentum=0.5, rho=0.8, lr=0.01)],
    ids=["plain", "momentum", "centered", "centered-momentum"],
)
def test_rmsprop_three_steps_formula(kwargs):
    kwargs = dict(kwargs)
    lr = kwargs.pop("lr", 0.001)
    opt = RMSprop(learning_rate=lr, **kwargs)
    ref = _rmsprop_ref(
        lr=lr, rho=kwargs.get("rho", 0.9), momentum=kwargs.get("momentum", 0.0), centered=kwargs.get("centered", False)
    )
    np.testing.assert_allclose(run(opt, W0, GRADS), ref, rtol=1e-12)


def test_rmsprop_epsilon_is_inside_the_sqrt():
    # g = 1e-4: v = 1e-9.  Inside: step = 1e-3 * 1e-4 / sqrt(1.01e-7) = 3.1466e-4.
    # Outside (the other common form) it would be 1e-3 * 1e-4 / (3.162e-5 + 1e-7) = 3.152e-3.
    steps = run(RMSprop(), [0.0], [[1e-4]])
    assert -steps[0][0] == pytest.approx(1e-7 / math.sqrt(1e-9 + 1e-7), rel=1e-12)
    assert -steps[0][0] == pytest.approx(3.1466e-4, rel=1e-4)
    assert -steps[0][0] < 1e-3  # not the eps-outside value 3.152e-3


# ---------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------


def _adam_ref(lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False):
    w, m, v, vh, expect = list(W0), [0.0] * 3, [0.0] * 3, [0.0] * 3, []
    for t, g in enumerate(GRADS, start=1):
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        for i in range(3):
            m[i] = m[i] + (g[i] - m[i]) * (1 - b1)
            v[i] = v[i] + (g[i] ** 2 - v[i]) * (1 - b2)
            vv = v[i]
            if amsgrad:
                vh[i] = max(vh[i], v[i])
                vv = vh[i]
            w[i] -= alpha * m[i] / (math.sqrt(vv) + eps)
        expect.append(list(w))
    return expect


def test_adam_defaults_first_step_hand_value():
    opt = Adam()
    assert (opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon, opt.amsgrad) == (0.001, 0.9, 0.999, 1e-7, False)
    # Step 1 from g = 0.5: m = 0.05, v = 0.00025, alpha = 0.001 * sqrt(0.001) / 0.1 = 3.16227766e-4,
    # w = 1 - alpha * 0.05 / (0.0158113883 + 1e-7) = 1 - 9.99993675e-4
    steps = run(opt, [1.0], [[0.5]])
    np.testing.assert_allclose(steps[0][0], 1.0 - 9.99993675e-4, rtol=1e-11)


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(amsgrad=True), dict(lr=0.01, b1=0.5, b2=0.9, eps=1e-3)],
    ids=["default", "amsgrad", "custom"],
)
def test_adam_three_steps_formula(kwargs):
    ref = _adam_ref(**kwargs)
    opt = Adam(
        learning_rate=kwargs.get("lr", 0.001),
        beta_1=kwargs.get("b1", 0.9),
        beta_2=kwargs.get("b2", 0.999),
        epsilon=kwargs.get("eps", 1e-7),
        amsgrad=kwargs.get("amsgrad", False),
    )
    np.testing.assert_allclose(run(opt, W0, GRADS), ref, rtol=1e-12)


def test_adam_amsgrad_differs_from_adam_when_v_shrinks():
    # A large gradient then small ones: v falls, v_hat keeps the maximum, so amsgrad steps are smaller.
    grads = [[10.0], [0.01], [0.01], [0.01]]
    plain = run(Adam(learning_rate=0.1), [0.0], grads)
    ams = run(Adam(learning_rate=0.1, amsgrad=True), [0.0], grads)
    assert plain[0][0] == ams[0][0]
    assert abs(ams[3][0] - ams[2][0]) < abs(plain[3][0] - plain[2][0])


def test_float32_parameters_stay_float32_and_match_formula():
    ref = _adam_ref()
    steps = run(Adam(), W0, GRADS, dtype=np.float32)
    assert steps[-1].dtype == np.float32
    np.testing.assert_allclose(steps, ref, rtol=2e-6, atol=1e-7)


def test_state_is_per_parameter():
    opt = SGD(learning_rate=0.1, momentum=0.9)
    a, b = np.array([1.0]), np.array([1.0])
    opt.apply([np.array([1.0]), np.array([0.0])], [a, b])
    opt.apply([np.array([1.0]), np.array([0.0])], [a, b])
    # a: m = -0.1, -0.19 -> 1 - 0.1 - 0.19 = 0.71; b never moves.
    np.testing.assert_allclose(a, [0.71], rtol=1e-14)
    np.testing.assert_array_equal(b, [1.0])


# ---------------------------------------------------------------------------
# Lookup, validation, clipping, apply_gradients
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,cls", [("sgd", SGD), ("rmsprop", RMSprop), ("adam", Adam), ("Adam", Adam), ("RMSprop", RMSprop), ("SGD", SGD)]
)
def test_get_by_name_gives_fresh_default_instance(name, cls):
    a, b = optimizers.get(name), optimizers.get(name)
    assert type(a) is cls and a is not b
    assert a.learning_rate == {SGD: 0.01, RMSprop: 0.001, Adam: 0.001}[cls]


def test_get_by_instance_and_class():
    opt = Adam(learning_rate=0.02)
    assert optimizers.get(opt) is opt
    assert type(optimizers.get(RMSprop)) is RMSprop


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adafactor'.*sgd.*rmsprop.*adam.*adagrad"):
        optimizers.get("adafactor")
    with pytest.raises(ValueError, match="Unknown optimizer"):
        optimizers.get(3)


@pytest.mark.parametrize("bad", [0, -0.1, "0.1", None, True, float("nan")])
@pytest.mark.parametrize("cls", [SGD, RMSprop, Adam])
def test_learning_rate_validation(cls, bad):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: `learning_rate` must be a positive number; got"):
        cls(learning_rate=bad)


def test_learning_rate_can_be_changed_and_is_validated():
    opt = SGD()
    opt.learning_rate = 0.5
    w = run(opt, [1.0], [[1.0]])[0]
    np.testing.assert_allclose(w, [0.5])
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0
    assert opt.learning_rate == 0.5
    assert SGD(lr=0.2).learning_rate == 0.2  # Keras 2's old spelling


def test_sgd_momentum_out_of_range():
    with pytest.raises(ValueError, match=r"SGD: `momentum` must be in \[0, 1\]; got 1.5"):
        SGD(momentum=1.5)


def test_unknown_optimizer_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="Adam: unexpected keyword argument.*beta1"):
        Adam(beta1=0.9)


def test_clipnorm_rescales_each_gradient_to_the_norm():
    # g = [3, 4] has norm 5; clipnorm=2 gives [1.2, 1.6]; SGD lr=1 subtracts it.
    steps = run(SGD(learning_rate=1.0, clipnorm=2.0), [0.0, 0.0], [[3.0, 4.0], [0.3, 0.4]])
    np.testing.assert_allclose(steps[0], [-1.2, -1.6], rtol=1e-14)
    # A gradient already inside the norm is untouched.
    np.testing.assert_allclose(steps[1], [-1.5, -2.0], rtol=1e-14)


def test_clipnorm_is_per_variable_like_keras():
    # Keras's clipnorm clips each gradient by its own norm (global_clipnorm is the joint one).
    a, b = np.zeros(2), np.zeros(1)
    SGD(learning_rate=1.0, clipnorm=1.0).apply([np.array([3.0, 4.0]), np.array([0.5])], [a, b])
    np.testing.assert_allclose(a, [-0.6, -0.8], rtol=1e-14)
    np.testing.assert_allclose(b, [-0.5], rtol=1e-14)


def test_clipvalue_clips_each_element():
    steps = run(SGD(learning_rate=1.0, clipvalue=0.5), [0.0, 0.0, 0.0], [[3.0, -4.0, 0.2]])
    np.testing.assert_allclose(steps[0], [-0.5, 0.5, -0.2], rtol=1e-14)


def test_apply_gradients_pairs_keras_order():
    opt = SGD(learning_rate=0.1)
    v1, v2 = np.array([1.0, 2.0]), np.array([[3.0]])
    g1, g2 = np.array([1.0, -1.0]), np.array([[10.0]])
    opt.apply_gradients([(g1, v1), (g2, v2)])
    np.testing.assert_allclose(v1, [0.9, 2.1])
    np.testing.assert_allclose(v2, [[2.0]])
    assert opt.iterations == 1
    opt.apply_gradients(zip([g1, g2], [v1, v2]))
    np.testing.assert_allclose(v1, [0.8, 2.2])


def test_serialize_round_trip_keeps_hyper_parameters():
    opt = Adam(learning_rate=0.003, beta_1=0.8, amsgrad=True, clipnorm=2.0)
    back = optimizers.deserialize(optimizers.serialize(opt))
    assert type(back) is Adam
    assert (back.learning_rate, back.beta_1, back.beta_2, back.amsgrad, back.clipnorm) == (0.003, 0.8, 0.999, True, 2.0)
