"""Batch normalization ops: exact answers on hand-made inputs, float64 central differences."""

from __future__ import annotations

import numpy as np
import pytest

from convolab.nn.batchnorm import (
    batch_moments,
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_inference_backward,
    batchnorm_inference_forward,
    batchnorm_scale_shift,
)

from support.gradcheck import numerical_gradient, rel_error

# NHWC images (batch 1 included: statistics over H and W alone) and (N, units) after Dense
SHAPES = [(4, 3), (7, 1), (2, 3, 3, 4), (1, 5, 5, 2), (3, 2, 4, 1), (2, 3, 5)]
AFFINE = [(True, True), (False, True), (True, False), (False, False)]
EPS = 1e-3


def _inputs(shape, scale, center, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2.0 + 0.5
    c = shape[-1]
    gamma = rng.uniform(0.5, 1.5, c) if scale else None
    beta = rng.standard_normal(c) if center else None
    return x, gamma, beta, rng.standard_normal(shape)


def test_hand_made_training_forward():
    # one channel, values 1 and 3: mean 2, biased variance 1, epsilon 0 -> xhat = -1, +1
    x = np.array([[1.0], [3.0]])
    y, cache = batchnorm_forward(x, np.array([2.0]), np.array([0.5]), 0.0)
    np.testing.assert_array_equal(y, [[-1.5], [2.5]])
    np.testing.assert_array_equal(cache.mean, [2.0])
    np.testing.assert_array_equal(cache.var, [1.0])
    # NHWC, two channels over a 2x2 image: channel 0 is 0,0,4,4 (mean 2, var 4), channel 1 is constant 7
    img = np.zeros((1, 2, 2, 2))
    img[0, 1, :, 0] = 4.0
    img[..., 1] = 7.0
    y, cache = batchnorm_forward(img[..., :1], None, None, 0.0)
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1.0, -1.0], [1.0, 1.0]])
    y, cache = batchnorm_forward(img, None, None, 1.0)  # var 4 + 1 -> / sqrt(5); constant channel -> 0
    np.testing.assert_array_equal(cache.mean, [2.0, 7.0])
    np.testing.assert_array_equal(cache.var, [4.0, 0.0])
    np.testing.assert_array_equal(y[..., 1], np.zeros((1, 2, 2)))


def test_hand_made_inference_forward():
    # mean 1, var 3, epsilon 1 -> 1 / sqrt(4) = 0.5; (5 - 1) * 0.5 * gamma 3 + beta 1 = 7
    y, _ = batchnorm_inference_forward(
        np.array([[5.0], [1.0]]), np.array([1.0]), np.array([3.0]), np.array([3.0]), np.array([1.0]), 1.0
    )
    np.testing.assert_array_equal(y, [[7.0], [1.0]])
    scale, shift = batchnorm_scale_shift(np.array([1.0]), np.array([3.0]), np.array([3.0]), np.array([1.0]), 1.0)
    np.testing.assert_array_equal(scale, [1.5])
    np.testing.assert_array_equal(shift, [-0.5])


def test_moments_are_biased_and_per_channel():
    x = np.random.default_rng(1).standard_normal((3, 4, 5, 2))
    mean, var = batch_moments(x)
    flat = x.reshape(-1, 2)
    np.testing.assert_allclose(mean, flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, flat.var(axis=0, ddof=0), rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale,center", AFFINE)
def test_training_gradients_match_central_differences(shape, scale, center):
    x, gamma, beta, dy = _inputs(shape, scale, center)
    y, cache = batchnorm_forward(x, gamma, beta, EPS)
    dy_before = dy.copy()
    dx, dgamma, dbeta = batchnorm_backward(dy, cache)
    np.testing.assert_array_equal(dy, dy_before)  # the caller's gradient is left alone
    assert dx.shape == x.shape and dgamma.shape == dbeta.shape == (shape[-1],)
    num_dx = numerical_gradient(lambda v: batchnorm_forward(v, gamma, beta, EPS)[0], x.copy(), dy)
    assert rel_error(dx, num_dx) < 1e-6
    g = gamma if gamma is not None else np.ones(shape[-1])
    b = beta if beta is not None else np.zeros(shape[-1])
    assert rel_error(dgamma, numerical_gradient(lambda v: batchnorm_forward(x, v, b, EPS)[0], g.copy(), dy)) < 1e-6
    assert rel_error(dbeta, numerical_gradient(lambda v: batchnorm_forward(x, g, v, EPS)[0], b.copy(), dy)) < 1e-6
    # the normalised values have zero mean per channel, so dx sums to zero over the batch
    np.testing.assert_allclose(dx.reshape(-1, shape[-1]).sum(axis=0), 0.0, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale,center", AFFINE)
def test_inference_gradients_match_central_differences(shape, scale, center):
    x, gamma, beta, dy = _inputs(shape, scale, center, seed=2)
    c = shape[-1]
    rng = np.random.default_rng(3)
    mean, var = rng.standard_normal(c), rng.uniform(0.2, 2.0, c)
    y, cache = batchnorm_inference_forward(x, mean, var, gamma, beta, EPS)
    dy_before = dy.copy()
    dx, dgamma, dbeta = batchnorm_inference_backward(dy, cache)
    np.testing.assert_array_equal(dy, dy_before)
    num_dx = numerical_gradient(lambda v: batchnorm_inference_forward(v, mean, var, gamma, beta, EPS)[0], x.copy(), dy)
    assert rel_error(dx, num_dx) < 1e-7
    g = gamma if gamma is not None else np.ones(c)
    b = beta if beta is not None else np.zeros(c)
    num_dg = numerical_gradient(lambda v: batchnorm_inference_forward(x, mean, var, v, b, EPS)[0], g.copy(), dy)
    num_db = numerical_gradient(lambda v: batchnorm_inference_forward(x, mean, var, g, v, EPS)[0], b.copy(), dy)
    assert rel_error(dgamma, num_dg) < 1e-7 and rel_error(dbeta, num_db) < 1e-7
    # the same map, written out longhand
    ref = (x - mean) / np.sqrt(var + EPS) * g + b
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_training_forward_matches_longhand(shape):
    x, gamma, beta, _ = _inputs(shape, True, True, seed=4)
    flat = x.reshape(-1, shape[-1])
    ref = (x - flat.mean(axis=0)) / np.sqrt(flat.var(axis=0) + EPS) * gamma + beta
    y, _ = batchnorm_forward(x, gamma, beta, EPS)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_float32_stays_float32():
    x, gamma, beta, dy = (a.astype(np.float32) for a in _inputs((4, 3, 3, 2), True, True))
    y, cache = batchnorm_forward(x, gamma, beta, EPS)
    dx, dgamma, dbeta = batchnorm_backward(dy, cache)
    assert {y.dtype, dx.dtype, dgamma.dtype, dbeta.dtype, cache.mean.dtype} == {np.dtype(np.float32)}
