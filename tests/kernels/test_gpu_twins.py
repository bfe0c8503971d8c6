"""The GPU kernels' index math, checked on the CPU through their NumPy twins (``tests/support/cuda_twins.py``).

Each twin runs its CUDA kernel's body for every work item at once; here it must agree with
convolab's NumPy/C reference op on a table of shapes, strides, paddings and dilations.
"""

import numpy as np
import pytest

from support import cuda_twins as tw
from convolab import kernels
from convolab.nn import pool
from convolab.nn.im2col import col2im, gpu_window_args, im2col, kernel_args

CASES = [  # (N, H, W, C), (kh, kw), strides, padding, dilation
    ((2, 7, 6, 3), (3, 3), (1, 1), "valid", (1, 1)),
    ((2, 7, 6, 3), (3, 2), (2, 1), "same", (1, 1)),
    ((1, 8, 8, 2), (5, 5), (1, 1), "same", (1, 1)),
    ((3, 9, 7, 1), (2, 3), (2, 3), "valid", (1, 1)),
    ((2, 9, 9, 2), (3, 3), (1, 1), "valid", (2, 2)),
    ((2, 10, 8, 2), (3, 2), (2, 1), "same", (2, 3)),
    ((1, 5, 5, 4), (1, 1), (1, 1), "valid", (1, 1)),
]


@pytest.mark.parametrize("shape, k, s, pad, d", CASES)
@pytest.mark.parametrize("ones", [False, True])
def test_im2col_twin_matches_im2col(shape, k, s, pad, d, ones):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    want, _ = im2col(x, k, s, pad, ones_column=ones, dilation=d)
    args, _ = gpu_window_args(shape, k, s, pad, d)
    got = np.full(want.shape, np.nan, dtype=np.float32)
    tw.im2col(x, got, got.size, *args, got.shape[1])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape, k, s, pad, d", CASES)
def test_col2im_gather_twin_matches_the_scatter(shape, k, s, pad, d, monkeypatch):
    monkeypatch.setattr(kernels, "lib", None)  # the NumPy scatter as the reference
    args, (ho, wo) = gpu_window_args(shape, k, s, pad, d)
    cols = np.random.default_rng(1).standard_normal((shape[0] * ho * wo, k[0] * k[1] * shape[3]))
    want = col2im(cols, shape, k, s, pad, d)
    got = np.full(shape, np.nan)
    tw.col2im(cols, got, got.size, *args, cols.shape[1])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


POOLS = [
    ((2, 6, 6, 3), (2, 2), (2, 2), "valid"),
    ((2, 7, 5, 2), (2, 2), (2, 2), "same"),
    ((1, 7, 7, 2), (3, 3), (2, 2), "same"),
    ((2, 6, 7, 1), (3, 2), (1, 2), "valid"),
]


@pytest.mark.parametrize("shape, p, s, pad", POOLS)
def test_maxpool_twins_match_the_reference(shape, p, s, pad, monkeypatch):
    monkeypatch.setattr(kernels, "lib", None)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    x[0, 0, 0, 0] = np.nan  # NumPy's argmax picks a NaN first; so must the kernel
    want, cache = pool.max_pool_forward(x, p, s, pad)
    args, _ = kernel_args(shape, p, s, pad)
    y = np.empty(want.shape, np.float32)
    arg = np.empty(want.shape, np.int32)
    tw.maxpool_fwd(x, y, arg, y.size, *args)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(arg, cache[0])
    dy = np.random.default_rng(3).standard_normal(want.shape).astype(np.float32)
    dx = np.empty(shape, np.float32)
    tw.maxpool_bwd(dy, arg, dx, dx.size, *args)
    np.testing.assert_allclose(dx, pool.max_pool_backward(dy, cache), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape, p, s, pad", POOLS)
def test_avgpool_twins_match_the_reference(shape, p, s, pad):
    x = np.random.default_rng(4).standard_normal(shape)
    want, cache = pool.avg_pool_forward(x, p, s, pad)
    args, _ = kernel_args(shape, p, s, pad)
    y = np.empty(want.shape)
    tw.avgpool_fwd(x, y, y.size, *args)
    np.testing.assert_allclose(y, want, rtol=1e-12)
    dy = np.random.default_rng(5).standard_normal(want.shape)
    dx = np.empty(shape)
    tw.avgpool_bwd(dy, dx, dx.size, *args)
    np.testing.assert_allclose(dx, pool.avg_pool_backward(dy, cache), rtol=1e-12, atol=1e-12)


def test_relu_twin():
    rng = np.random.default_rng(6)
    dy, y = rng.standard_normal(50), np.maximum(rng.standard_normal(50), 0)
    dz = np.empty(50)
    tw.relu_bwd(dy, y, dz, 50)
    np.testing.assert_array_equal(dz, dy * (y > 0))


@pytest.mark.parametrize(
    "name, make, kernel, extra",
    [
        ("adam", lambda: __import__("convolab").optimizers.Adam(0.01), tw.adam, None),
        ("rmsprop", lambda: __import__("convolab").optimizers.RMSprop(0.01), tw.rmsprop, None),
        ("sgd", lambda: __import__("convolab").optimizers.SGD(0.1, momentum=0.9), tw.sgd_momentum, False),
        (
            "nesterov",
            lambda: __import__("convolab").optimizers.SGD(0.1, momentum=0.9, nesterov=True),
            tw.sgd_momentum,
            True,
        ),
    ],
)
def test_optimizer_twins_match_the_numpy_steps(name, make, kernel, extra, monkeypatch):
    """Three steps of the fused kernels' arithmetic against the optimizers' NumPy code (float64)."""
    from convolab import kernels

    monkeypatch.setattr(kernels, "lib", None)
    rng = np.random.default_rng(7)
    p_ref = rng.standard_normal(20)
    p = p_ref.copy()
    opt = make()
    slots = [np.zeros(20), np.zeros(20)]
    for step in range(1, 4):
        g = rng.standard_normal(20)
        opt.apply([g], [p_ref])
        if name == "adam":
            alpha = 0.01 * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
            kernel(p, g, slots[0], slots[1], 20, alpha, 0.9, 0.999, 1e-7)
        elif name == "rmsprop":
            kernel(p, g, slots[0], 20, 0.01, 0.9, 1e-7)
        else:
            kernel(p, g, slots[0], 20, 0.1, 0.9, int(extra))
    np.testing.assert_allclose(p, p_ref, rtol=1e-12, atol=1e-14)
