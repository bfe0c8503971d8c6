"""The batch-normalization kernels against the NumPy reference, and their checked boundary."""

from __future__ import annotations


import numpy as np
import pytest

from convolab import keras, kernels
from convolab.kernels import KernelArgumentError
from convolab.nn import batchnorm as B

from support.gradcheck import rel_error
from support.kernel_paths import numpy_path

pytestmark = pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")


SHAPES = [(32, 8, 8, 16), (3, 5, 7, 37), (1, 1, 1, 1), (2, 3, 3, 1), (64, 10), (5, 130), (1, 4)]


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    c = shape[-1]
    gamma = (rng.random(c) + 0.5).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    return x, gamma, beta, dy


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_training_forward_and_backward_equal_reference(shape, affine):
    x, gamma, beta, dy = _data(shape)
    if not affine:
        gamma = beta = None
    calls = kernels.calls
    y, cache = B.batchnorm_forward(x, gamma, beta, 1e-3)
    dx, dgamma, dbeta = B.batchnorm_backward(dy, cache)
    reached = kernels.calls - calls
    assert reached["bn_moments_f32"] == 1 and reached["bn_affine_f32"] == 1 and reached["bn_bwd_f32"] == 1
    assert cache.xhat is None and y.dtype == np.float32
    # the reference in float64 (the float32 NumPy path rounds more than the kernels' double sums)
    with numpy_path():
        f64 = lambda a: None if a is None else a.astype(np.float64)
        y64, c64 = B.batchnorm_forward(f64(x), f64(gamma), f64(beta), 1e-3)
        g64 = B.batchnorm_backward(f64(dy), c64)
        y32, c32 = B.batchnorm_forward(x, gamma, beta, 1e-3)
    assert rel_error(y, y64) < 1e-6
    assert rel_error(cache.mean, c64.mean) < 1e-6 and rel_error(cache.var, c64.var) < 1e-6
    # dx of a batch of one is 0 in exact arithmetic: measure against the size of its terms
    k = np.abs(cache.inv_std * (gamma if gamma is not None else 1)).max()
    dx_scale = max(np.abs(g64[0]).max(), k * np.abs(dy).max())
    assert np.abs(dx - g64[0]).max() / dx_scale < 1e-5
    for got, want in zip((dgamma, dbeta), g64[1:]):
        assert rel_error(got, want) < 1e-5
    assert rel_error(y, y32) < 1e-5


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_inference_forward_equals_reference(shape):
    x, gamma, beta, _ = _data(shape, 1)
    mean = np.linspace(-1, 1, shape[-1]).astype(np.float32)
    var = np.linspace(0.5, 2, shape[-1]).astype(np.float32)
    calls = kernels.calls
    y, _ = B.batchnorm_inference_forward(x, mean, var, gamma, beta, 1e-3)
    assert (kernels.calls - calls)["bn_affine_f32"] == 1
    with numpy_path():
        ref, _ = B.batchnorm_inference_forward(x, mean, var, gamma, beta, 1e-3)
    assert rel_error(y, ref) < 1e-6


def test_layer_trains_like_numpy_path():
    """One fit step of a BatchNormalization model: C kernels against the NumPy path (public API)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 6, 6, 3)).astype(np.float32)
    y = rng.integers(0, 3, 16)

    def run():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input(shape=(6, 6, 3)),
                keras.layers.Conv2D(4, 3),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
                keras.layers.Flatten(),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return model.get_weights(), model.predict(x, verbose=0)

    w_c, p_c = run()
    with numpy_path():
        w_np, p_np = run()
    for a, b in zip(w_c, w_np):
        # absolute too: the conv bias before the BN has a zero gradient, so it moves by round-off
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert rel_error(p_c, p_np) < 1e-4


def test_boundary_rejects_bad_arrays():
    x = np.zeros((4, 3), np.float32)
    c3 = np.zeros(3, np.float32)
    with pytest.raises(KernelArgumentError, match="x has 12 elements; the arguments need 15"):
        kernels.bn_moments_f32(x, c3.copy(), c3.copy(), 5, 3)
    with pytest.raises(KernelArgumentError, match="mean"):
        kernels.bn_moments_f32(x, np.zeros(2, np.float32), c3.copy(), 4, 3)
    with pytest.raises(KernelArgumentError, match="float32"):
        kernels.bn_moments_f32(x.astype(np.float64), c3.copy(), c3.copy(), 4, 3)
    with pytest.raises(KernelArgumentError, match="M must be >= 1"):
        kernels.bn_moments_f32(np.zeros(0, np.float32), c3.copy(), c3.copy(), 0, 3)
    with pytest.raises(KernelArgumentError, match="overlaps"):
        kernels.bn_affine_f32(x, c3, c3, c3.copy(), x, 4, 3)  # in place is refused
    ro = np.zeros((4, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(KernelArgumentError, match="read-only"):
        kernels.bn_affine_f32(x, c3, c3, c3.copy(), ro, 4, 3)
    with pytest.raises(KernelArgumentError, match="int in"):
        kernels.bn_affine_f32(x, c3, c3, c3.copy(), np.zeros((4, 3), np.float32), -1, 3)
    dx = np.zeros((4, 3), np.float32)
    with pytest.raises(KernelArgumentError, match="dx overlaps dgamma"):
        kernels.bn_bwd_f32(x, x, c3, c3, c3, dx, dx[0], c3.copy(), 4, 3)
    with pytest.raises(KernelArgumentError, match="dbeta has 2"):
        kernels.bn_bwd_f32(x, x, c3, c3, c3, np.zeros((4, 3), np.float32), c3.copy(), np.zeros(2, np.float32), 4, 3)
    with pytest.raises(KernelArgumentError, match="dgamma overlaps dbeta"):
        s = np.zeros(6, np.float32)
        kernels.bn_bwd_f32(x, x, c3, c3, c3, np.zeros((4, 3), np.float32), s[:3], s[2:5], 4, 3)
    with pytest.raises(KernelArgumentError, match="threads must be in"):
        kernels.bn_bwd_f32(x, x, c3, c3, c3, np.zeros((4, 3), np.float32), c3.copy(), c3.copy(), 4, 3, 0)
    with pytest.raises(KernelArgumentError, match="threads must be in"):
        kernels.bn_moments_f32(x, c3.copy(), c3.copy(), 4, 3, 65)
