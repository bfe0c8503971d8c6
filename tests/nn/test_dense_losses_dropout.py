"""dense, activations, losses and dropout ops: gradient checks and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from convolab.nn import (
    activation_backward,
    activation_forward,
    categorical_crossentropy,
    dense_backward,
    dense_forward,
    dropout_backward,
    dropout_forward,
    mean_squared_error,
    softmax_crossentropy_with_logits,
    sparse_categorical_crossentropy,
)
from support.gradcheck import numerical_gradient, rel_error

# ---------------------------------------------------------------------------
# dense
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape", [(4, 5), (2, 3, 5)], ids=["2d", "3d"])
def test_dense_backward_matches_numerical_gradient(x_shape):
    rng = np.random.default_rng(20)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((5, 3))
    b = rng.standard_normal(3)
    y, cache = dense_forward(x, w, b)
    assert y.shape == x_shape[:-1] + (3,)
    dy = rng.standard_normal(y.shape)
    dy0 = dy.copy()
    dx, dw, db = dense_backward(dy, cache)
    np.testing.assert_array_equal(dy, dy0)
    assert rel_error(dx, numerical_gradient(lambda v: dense_forward(v, w, b)[0], x.copy(), dy)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda v: dense_forward(x, v, b)[0], w.copy(), dy)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda v: dense_forward(x, w, v)[0], b.copy(), dy)) < 1e-6
    _, dw2, db2 = dense_backward(dy, cache, need_dx=False)
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


def test_dense_forward_hand_values():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    b = np.array([0.5, 0.0, -1.0])
    y, _ = dense_forward(x, w, b)
    np.testing.assert_array_equal(y, [[5.5, 2.0, -1.0], [11.5, 4.0, -2.0]])
    y_nb, _ = dense_forward(x, w, None)
    np.testing.assert_array_equal(y_nb, [[5.0, 2.0, 0.0], [11.0, 4.0, -1.0]])


def test_dense_backward_need_dx_false_returns_none():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((4, 2))
    y, cache = dense_forward(x, w, np.zeros(2))
    dx, dw, db = dense_backward(np.ones_like(y), cache, need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dw, np.tile(x.sum(axis=0)[:, None], (1, 2)), rtol=1e-12)
    np.testing.assert_array_equal(db, [3.0, 3.0])


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------


def _away_from_zero(rng, shape, margin=0.05):
    z = rng.standard_normal(shape)
    return np.where(np.abs(z) < margin, np.sign(z + 1e-12) * (margin + np.abs(z)), z)


@pytest.mark.parametrize("name", ["linear", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4)], ids=["2d", "3d"])
def test_activation_backward_matches_numerical_gradient(name, shape):
    rng = np.random.default_rng(22)
    z = _away_from_zero(rng, shape) * 2.0
    y = activation_forward(name, z.copy())
    dy = rng.standard_normal(shape)
    dy0 = dy.copy()
    dz = activation_backward(name, dy, y)
    np.testing.assert_array_equal(dy, dy0)
    ndz = numerical_gradient(lambda v: activation_forward(name, v), z.copy(), dy)
    assert rel_error(dz, ndz) < 1e-6


def test_activation_forward_hand_values():
    z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(activation_forward("linear", z), z)
    np.testing.assert_array_equal(activation_forward("relu", z), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(activation_forward("sigmoid", z), 1.0 / (1.0 + np.exp(-z)), rtol=1e-15)
    assert activation_forward("sigmoid", np.array([0.0]))[0] == 0.5
    np.testing.assert_allclose(activation_forward("tanh", z), np.tanh(z), rtol=1e-15)
    e = np.exp([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(activation_forward("softmax", z), [e / e.sum()], rtol=1e-14)


def test_relu_backward_masks_by_output():
    y = np.array([0.0, 2.0, 0.0, 0.5])
    dz = activation_backward("relu", np.array([1.0, 2.0, 3.0, 4.0]), y)
    np.testing.assert_array_equal(dz, [0.0, 2.0, 0.0, 4.0])


def test_sigmoid_extremes_without_overflow():
    z = np.array([-1000.0, -50.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):
        y = activation_forward("sigmoid", z)
    assert np.all(np.isfinite(y))
    assert y[0] == 0.0 and y[-1] == 1.0
    np.testing.assert_allclose(y[1], np.exp(-50.0), rtol=1e-12)


def test_softmax_rows_sum_to_one_and_stable_for_large_logits():
    rng = np.random.default_rng(23)
    z = rng.standard_normal((6, 7)) * 10
    y = activation_forward("softmax", z)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-14)
    # shift invariance: +1000 would overflow a naive exp
    with np.errstate(over="raise", invalid="raise"):
        y_shift = activation_forward("softmax", z + 1000.0)
        big = activation_forward("softmax", np.array([[1000.0, 1000.0], [1000.0, 0.0], [-1000.0, 1000.0]]))
    np.testing.assert_allclose(y_shift, y, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(big, [[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]], atol=1e-300)


def test_softmax_is_along_last_axis_for_3d():
    z = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    y = activation_forward("softmax", z)
    np.testing.assert_allclose(y.sum(axis=-1), np.ones((2, 3)), rtol=1e-14)
    e = np.exp(np.arange(4.0) - 3.0)
    np.testing.assert_allclose(y[1, 2], e / e.sum(), rtol=1e-14)


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="swishy"):
        activation_forward("swishy", np.zeros(3))
    with pytest.raises(ValueError, match="swishy"):
        activation_backward("swishy", np.zeros(3), np.zeros(3))


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------


def _scalar_grad(f, x):
    return numerical_gradient(f, x.copy(), 1.0)


def test_softmax_xent_sparse_gradient():
    rng = np.random.default_rng(24)
    logits = rng.standard_normal((5, 4)) * 2
    labels = np.array([0, 3, 1, 1, 2])
    logits0 = logits.copy()
    loss, g = softmax_crossentropy_with_logits(logits, labels, sparse=True)
    np.testing.assert_array_equal(logits, logits0)
    assert isinstance(loss, float)
    ng = _scalar_grad(lambda v: softmax_crossentropy_with_logits(v, labels, sparse=True)[0], logits)
    assert rel_error(g, ng) < 1e-6
    # and the value, longhand
    lse = np.log(np.exp(logits).sum(axis=1))
    np.testing.assert_allclose(loss, np.mean(lse - logits[np.arange(5), labels]), rtol=1e-12)


@pytest.mark.parametrize("row_sum", [1.0, 0.7], ids=["probabilities", "unnormalised"])
def test_softmax_xent_dense_gradient(row_sum):
    rng = np.random.default_rng(25)
    logits = rng.standard_normal((5, 4)) * 2
    t = rng.uniform(0.1, 1.0, size=(5, 4))
    t = t / t.sum(axis=1, keepdims=True) * row_sum
    loss, g = softmax_crossentropy_with_logits(logits, t, sparse=False)
    ng = _scalar_grad(lambda v: softmax_crossentropy_with_logits(v, t, sparse=False)[0], logits)
    assert rel_error(g, ng) < 1e-6
    lse = np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(loss, np.mean(np.sum(-t * (logits - lse), axis=1)), rtol=1e-12)


def test_softmax_xent_one_hot_equals_sparse():
    rng = np.random.default_rng(26)
    logits = rng.standard_normal((6, 3))
    labels = np.array([2, 0, 1, 1, 0, 2])
    l1, g1 = softmax_crossentropy_with_logits(logits, labels, sparse=True)
    l2, g2 = softmax_crossentropy_with_logits(logits, np.eye(3)[labels], sparse=False)
    np.testing.assert_allclose(l1, l2, rtol=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_softmax_xent_uniform_logits_give_log_k(k):
    logits = np.full((4, k), 0.37)
    loss, g = softmax_crossentropy_with_logits(logits, np.array([0, 1, 0, 1]) % k)
    np.testing.assert_allclose(loss, np.log(k), rtol=1e-14)
    # gradient: (1/k - onehot) / N
    expected = np.full((4, k), 1.0 / k)
    expected[np.arange(4), np.array([0, 1, 0, 1]) % k] -= 1.0
    np.testing.assert_allclose(g, expected / 4, rtol=1e-12, atol=1e-15)


def test_softmax_xent_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, g = softmax_crossentropy_with_logits(logits, np.array([0, 2]))
        loss_d, g_d = softmax_crossentropy_with_logits(logits, np.eye(3)[[0, 2]], sparse=False)
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    np.testing.assert_allclose(loss, (0.0 + 2e4) / 2, rtol=1e-12)
    np.testing.assert_allclose(loss_d, loss, rtol=1e-12)
    np.testing.assert_allclose(g, [[0.0, 0.0, 0.0], [0.5, 0.0, -0.5]], atol=1e-12)
    np.testing.assert_allclose(g_d, g, atol=1e-12)


def _probs(rng, n, k):
    """Rows of probabilities kept well away from the clip bounds 1e-7 and 1 - 1e-7."""
    p = rng.uniform(0.2, 1.0, size=(n, k))
    return p / p.sum(axis=1, keepdims=True)


def test_sparse_categorical_crossentropy_gradient_and_value():
    rng = np.random.default_rng(27)
    p = _probs(rng, 5, 4)
    labels = np.array([1, 0, 3, 3, 2])
    loss, g = sparse_categorical_crossentropy(p, labels)
    ng = _scalar_grad(lambda v: sparse_categorical_crossentropy(v, labels)[0], p)
    assert rel_error(g, ng) < 1e-6
    np.testing.assert_allclose(loss, -np.mean(np.log(p[np.arange(5), labels])), rtol=1e-12)


def test_sparse_categorical_crossentropy_hand_value_and_clip():
    loss, g = sparse_categorical_crossentropy(np.array([[0.25, 0.75]]), np.array([1]))
    np.testing.assert_allclose(loss, -np.log(0.75), rtol=1e-14)
    np.testing.assert_allclose(g, [[0.0, -1.0 / 0.75]], rtol=1e-14)
    # a zero probability on the true class is clipped to eps: finite loss, no gradient
    loss0, g0 = sparse_categorical_crossentropy(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([1, 0]))
    np.testing.assert_allclose(loss0, (-np.log(1e-7) - np.log(0.5)) / 2, rtol=1e-12)
    np.testing.assert_allclose(g0, [[0.0, 0.0], [-1.0, 0.0]], rtol=1e-14)


@pytest.mark.parametrize("scale", [1.0, 2.5], ids=["normalised", "unnormalised"])
def test_categorical_crossentropy_gradient_and_value(scale):
    rng = np.random.default_rng(28)
    p = _probs(rng, 5, 4) * scale
    t = rng.uniform(0.0, 1.0, size=(5, 4))
    t /= t.sum(axis=1, keepdims=True)
    loss, g = categorical_crossentropy(p, t)
    ng = _scalar_grad(lambda v: categorical_crossentropy(v, t)[0], p)
    assert rel_error(g, ng) < 1e-6
    q = p / p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss, np.mean(np.sum(-t * np.log(q), axis=1)), rtol=1e-12)


def test_categorical_crossentropy_hand_value_rescales_rows():
    # [1, 3] rescales to [0.25, 0.75]
    loss, _ = categorical_crossentropy(np.array([[1.0, 3.0]]), np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(loss, -np.log(0.75), rtol=1e-14)


def test_mean_squared_error_gradient_and_value():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    loss, g = mean_squared_error(pred, np.zeros((2, 2)))
    assert loss == 7.5
    np.testing.assert_array_equal(g, [[0.5, 1.0], [1.5, 2.0]])
    rng = np.random.default_rng(29)
    p = rng.standard_normal((3, 2, 4))
    t = rng.standard_normal((3, 2, 4))
    loss, g = mean_squared_error(p, t)
    np.testing.assert_allclose(loss, np.mean((p - t) ** 2), rtol=1e-14)
    ng = _scalar_grad(lambda v: mean_squared_error(v, t)[0], p)
    assert rel_error(g, ng) < 1e-6


# ---------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------


def test_dropout_identity_when_rate_zero_or_not_training():
    rng = np.random.default_rng(30)
    x = rng.standard_normal((4, 5))
    x0 = x.copy()
    for rate, training in [(0.0, True), (0.5, False), (0.0, False)]:
        y, mask = dropout_forward(x, rate, np.random.default_rng(0), training=training)
        assert mask is None
        np.testing.assert_array_equal(y, x0)
        dy = rng.standard_normal(x.shape)
        np.testing.assert_array_equal(dropout_backward(dy, mask), dy)
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_statistics(rate, dtype):
    x = np.ones((1000, 1000), dtype=dtype)
    y, mask = dropout_forward(x, rate, np.random.default_rng(31), training=True)
    assert y.dtype == dtype and mask.dtype == dtype
    scale = dtype(1.0 / (1.0 - rate))
    # every element is either dropped or scaled by exactly 1/(1-rate)
    assert np.all((mask == 0) | (mask == scale))
    np.testing.assert_array_equal(y, x * mask)
    # std of the mean of 1e6 mask entries is sqrt(rate/(1-rate))/1000 <= 0.002
    assert abs(float(mask.mean(dtype=np.float64)) - 1.0) < 0.01
    assert abs(float(np.mean(mask == 0)) - rate) < 0.005


def test_dropout_backward_uses_the_forward_mask():
    rng = np.random.default_rng(32)
    x = rng.standard_normal((6, 7)) + 5.0  # nonzero, so a zero output means dropped
    y, mask = dropout_forward(x, 0.4, np.random.default_rng(33))
    dy = rng.standard_normal(x.shape)
    dy0 = dy.copy()
    dx = dropout_backward(dy, mask)
    np.testing.assert_array_equal(dy, dy0)
    dropped = y == 0
    assert dropped.any() and (~dropped).any()
    np.testing.assert_array_equal(dx[dropped], 0.0)
    np.testing.assert_allclose(dx[~dropped], dy[~dropped] / 0.6, rtol=1e-14)
    # the same as a numerical gradient with the generator re-seeded on every call
    ndx = numerical_gradient(lambda v: dropout_forward(v, 0.4, np.random.default_rng(33))[0], x.copy(), dy)
    assert rel_error(dx, ndx) < 1e-6


def test_dropout_same_seed_same_mask_different_seed_different_mask():
    x = np.ones((50, 50))
    _, m1 = dropout_forward(x, 0.5, np.random.default_rng(7))
    _, m2 = dropout_forward(x, 0.5, np.random.default_rng(7))
    _, m3 = dropout_forward(x, 0.5, np.random.default_rng(8))
    np.testing.assert_array_equal(m1, m2)
    assert not np.array_equal(m1, m3)
