"""Ops split over slices of the batch (nn/threads.py) against the same ops run whole."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

from convolab import keras, kernels
from convolab.models import parallel
from convolab.nn import conv, threads

from support.gradcheck import rel_error


@contextlib.contextmanager
def split_every_op(n_threads=2):
    old = threads.MIN_SLICE_FLOPS, threads.MIN_KERNEL_SLICE_FLOPS
    threads.MIN_SLICE_FLOPS = threads.MIN_KERNEL_SLICE_FLOPS = 0
    try:
        with threads.batch_threads(n_threads):
            yield
    finally:
        threads.MIN_SLICE_FLOPS, threads.MIN_KERNEL_SLICE_FLOPS = old


class PoolParts:
    """Kernel calls split over the kernels' own threads (kernels/pool.h) while inside: ``jobs``
    calls in ``parts`` parts in all."""

    def __enter__(self):
        self.start = kernels.pool_counts()
        return self

    def __exit__(self, *exc):
        end = kernels.pool_counts()
        self.jobs = end["jobs"] - self.start["jobs"]
        self.parts = end["parts"] - self.start["parts"]


def test_kernel_threads_only_inside_batch_threads_and_on_its_thread():
    assert threads.kernel_threads(8, 1e12) == 1
    with threads.batch_threads(3):
        assert threads.kernel_threads(8, 1e12) == 3
        assert threads.kernel_threads(2, 1e12) == 2  # at most one part an image
        assert threads.kernel_threads(1, 1e12) == 1
        assert threads.kernel_threads(8, threads.MIN_KERNEL_SLICE_FLOPS * 1.5) == 1
        assert threads.kernel_threads(8, threads.MIN_KERNEL_SLICE_FLOPS * 2) == 2
        seen = []
        t = threading.Thread(target=lambda: seen.append(threads.kernel_threads(8, 1e12)))
        t.start()
        t.join()
        assert seen == [1]
    assert threads.kernel_threads(8, 1e12) == 1


def test_spans_only_inside_batch_threads_and_on_its_thread():
    assert threads.spans(8, 1e12) is None
    with threads.batch_threads(3):
        assert threads.spans(8, 1e12) == [(0, 2), (2, 5), (5, 8)]
        assert threads.spans(2, 1e12) == [(0, 1), (1, 2)]
        assert threads.spans(1, 1e12) is None
        assert threads.spans(8, threads.MIN_SLICE_FLOPS * 1.5) is None  # a slice would be too small
        assert threads.spans(8, threads.MIN_SLICE_FLOPS * 2) == [(0, 4), (4, 8)]
        seen = []
        t = threading.Thread(target=lambda: seen.append(threads.spans(8, 1e12)))
        t.start()
        t.join()
        assert seen == [None]  # another thread's ops run whole
        with threads.batch_threads(2):  # nested: the outer setting holds
            assert len(threads.spans(8, 1e12)) == 3
    assert threads.spans(8, 1e12) is None
    with threads.batch_threads(1):
        assert threads.spans(8, 1e12) is None


def test_spans_cut_large_temporaries_into_chunks_and_run_keeps_order():
    with threads.batch_threads(2):
        mib = 1 << 20
        parts = threads.spans(64, 1e12, bytes_per_image=mib)  # 32 images a thread, 2 MiB a chunk
        assert len(parts) == 32 and parts[0] == (0, 2) and parts[-1] == (62, 64)
        assert threads.spans(64, 1e12, bytes_per_image=1) == [(0, 32), (32, 64)]
        assert len(threads.spans(5, 1e12, bytes_per_image=100 * mib)) == 5  # at most one image a chunk
        seen = []
        out = threads.run(lambda lo, hi: seen.append((threading.get_ident(), lo)) or lo, parts)
        assert out == [lo for lo, _ in parts]
        owners = {}
        for ident, lo in seen:
            owners.setdefault(ident, []).append(lo)
        assert len(owners) == 2  # two threads, each a contiguous run of chunks in order
        assert sorted(len(v) for v in owners.values()) == [16, 16]
        assert all(v == sorted(v) for v in owners.values())
        assert threads.spans_threads() == 2
    assert threads.spans_threads() == 1


CASES = [  # (x shape, kernel shape, strides, padding, bias)
    ((5, 9, 9, 3), (3, 3, 3, 8), (1, 1), "same", True),  # fused kernels, padded first
    ((4, 8, 7, 2), (2, 3, 2, 12), (2, 1), "same", False),  # fused, strided, odd padding
    ((3, 7, 7, 4), (3, 3, 4, 34), (1, 1), "same", True),  # > 32 filters: im2col + GEMM
    ((4, 9, 9, 9), (5, 5, 9, 6), (2, 2), "valid", True),  # > 200 taps: im2col + GEMM
    ((2, 6, 6, 3), (1, 1, 3, 5), (1, 1), "valid", False),  # 1x1
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{c[3]}")
@pytest.mark.parametrize("n_threads", [2, 3])
def test_split_convolution_equals_whole(case, dtype, n_threads):
    x_shape, w_shape, strides, padding, bias = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal(w_shape) * 0.3).astype(dtype)
    b = rng.standard_normal(w_shape[-1]).astype(dtype) if bias else None
    y0, c0 = conv.conv2d_forward(x, w, b, strides, padding)
    dy = rng.standard_normal(y0.shape).astype(dtype)
    dx0, dw0, db0 = conv.conv2d_backward(dy, c0)
    fused = dtype == np.float32 and c0[0] == "fused"
    k = min(n_threads, x_shape[0])
    with split_every_op(n_threads):
        with PoolParts() as forward:
            y1, c1 = conv.conv2d_forward(x, w, b, strides, padding)
        if fused:  # one kernel call, split over the kernel's own threads
            assert c1[0] == "fused" and (forward.jobs, forward.parts) == (1, k)
        else:  # im2col + GEMM: slices on Python threads
            assert c1[0] == "split" and len(c1[1]) == k
        old_chunk = threads.CHUNK_BYTES
        threads.CHUNK_BYTES = 1  # one image a chunk: the im2col path recomputes its window matrices
        try:
            y2, c2 = conv.conv2d_forward(x, w, b, strides, padding)
            dx2, dw2, db2 = conv.conv2d_backward(dy, c2)
        finally:
            threads.CHUNK_BYTES = old_chunk
        kind = lambda cache: cache[0] if isinstance(cache[0], str) else "cols"  # noqa: E731
        if not fused:
            chunked = len(c2[1]) > n_threads  # more parts than threads: the matrices are built again
            assert {kind(c) for c in c2[2]} == {"recompute" if chunked else "cols"}
        with PoolParts() as backward:
            dx1, dw1, db1 = conv.conv2d_backward(dy, c1)
        if fused:  # the kernel gradient, and dx (one fused convolution, or a 1x1 one and col2im)
            assert backward.jobs == (2 if strides == (1, 1) else 3) and backward.parts == backward.jobs * k
        none_dx = conv.conv2d_backward(dy, c1, need_dx=False)[0]
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert y1.dtype == dtype and y1.shape == y0.shape and y1.flags.c_contiguous
    assert rel_error(y1, y0) < tol
    assert rel_error(dx1, dx0) < tol
    assert rel_error(dw1, dw0) < tol * 10  # summed over slices: another order
    assert rel_error(db1, db0) < tol * 10
    assert none_dx is None
    for got, want in ((y2, y0), (dx2, dx0)):
        assert rel_error(got, want) < tol
    assert rel_error(dw2, dw0) < tol * 10 and rel_error(db2, db0) < tol * 10


def _small_resnet(seed):
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inputs = keras.Input(shape=(8, 8, 3))
    x = L.Conv2D(8, 3, padding="same")(inputs)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    y = L.Conv2D(8, 3, padding="same")(x)
    y = L.BatchNormalization()(y)
    x = L.ReLU()(L.Add()([x, y]))
    x = L.Conv2D(36, 3, strides=2, padding="same")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, L.Dense(4, activation="softmax")(x))
    # epsilon 1e-3: a conv bias before a BatchNormalization has a zero gradient in exact
    # arithmetic, which Adam's default epsilon would blow up into +-lr steps of round-off
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2, epsilon=1e-3), loss="sparse_categorical_crossentropy", metrics=["acc"]
    )
    return model


@pytest.mark.parametrize("use_kernels", [True, False])
def test_functional_training_on_split_ops_equals_one_thread(use_kernels):
    """A residual network with BatchNormalization, trained two epochs with every op split over
    two threads, ends where the same training on one thread ends."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 4, 12)
    lib = kernels.lib
    if not use_kernels:
        kernels.lib = None
    try:
        parallel.set_num_threads(1)
        one = _small_resnet(3)
        h1 = one.fit(x, y, batch_size=6, epochs=2, shuffle=False, verbose=0).history["loss"]
        parallel.set_num_threads(2)
        two = _small_resnet(3)
        old = threads.MIN_SLICE_FLOPS, threads.MIN_KERNEL_SLICE_FLOPS
        threads.MIN_SLICE_FLOPS = threads.MIN_KERNEL_SLICE_FLOPS = 0
        try:
            with PoolParts() as split:
                h2 = two.fit(x, y, batch_size=6, epochs=2, shuffle=False, verbose=0).history["loss"]
                p2 = two.predict(x, verbose=0)
        finally:
            threads.MIN_SLICE_FLOPS, threads.MIN_KERNEL_SLICE_FLOPS = old
    finally:
        kernels.lib = lib
        parallel.set_num_threads(None)
    if use_kernels and lib is not None:
        # 2 epochs of 2 steps: convolutions, BN forward and backward, ReLU, all on the kernel threads
        assert split.jobs > 40 and split.parts == 2 * split.jobs
    np.testing.assert_allclose(h2, h1, rtol=1e-5)
    for a, b in zip(two.get_weights(), one.get_weights()):
        # absolute: a conv bias before a BatchNormalization moves by round-off only (~1e-8)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert rel_error(p2, one.predict(x, verbose=0)) < 1e-4


FUSED_STRIDE1 = [  # (x shape, kernel shape, padding, route): dx as a convolution or as 1x1 product + col2im
    ((3, 9, 9, 3), (3, 3, 3, 8), "same", "conv"),
    ((2, 8, 7, 4), (2, 2, 4, 6), "same", "conv"),  # even kernel: 0 rows before, 1 after
    ((2, 9, 11, 2), (5, 3, 2, 12), "valid", "col2im"),  # 99 input pixels, 45 output: mostly padding
    ((2, 12, 12, 3), (3, 3, 3, 5), "valid", "conv"),  # 144 / 100: a convolution still
    ((2, 14, 14, 6), (5, 5, 6, 16), "valid", "col2im"),  # LeNet's second convolution, 196 / 100
    ((2, 6, 6, 16), (3, 3, 16, 16), "same", "conv"),  # ResNet-20's first stage, 144 taps each way
    ((1, 5, 5, 1), (1, 1, 1, 3), "valid", "conv"),
]


@pytest.mark.skipif(not kernels.available() or not kernels.lib.fused_conv, reason="fused kernels not available")
@pytest.mark.parametrize("case", FUSED_STRIDE1, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_stride1_input_gradient_on_fused_kernel_equals_reference(case):
    x_shape, w_shape, padding, route = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.3).astype(np.float32)
    b = rng.standard_normal(w_shape[-1]).astype(np.float32)
    y, cache = conv.conv2d_forward(x, w, b, (1, 1), padding)
    assert cache[0] == "fused"
    dy = rng.standard_normal(y.shape).astype(np.float32)
    calls = kernels.calls
    dx, dw, db = conv.conv2d_backward(dy, cache)
    # one fused call either way: dx as a convolution, or the 1x1 product that col2im adds back
    assert (kernels.calls - calls)["conv_fwd_f32"] == 1
    assert (kernels.calls - calls)["col2im_f32"] == (route == "col2im")
    f64 = [a.astype(np.float64) for a in (x, w, b, dy)]
    y64, c64 = conv.conv2d_forward(*f64[:3], (1, 1), padding)
    dx64, dw64, db64 = conv.conv2d_backward(f64[3], c64)
    assert rel_error(y, y64) < 1e-6
    assert rel_error(dx, dx64) < 1e-6
    assert rel_error(dw, dw64) < 1e-6 and rel_error(db, db64) < 1e-6


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")
@pytest.mark.parametrize("shape", [(6, 5, 5, 7), (5, 12), (3, 2, 9, 33)], ids=str)
@pytest.mark.parametrize("n_threads", [2, 3])
def test_split_batchnorm_equals_whole(shape, n_threads):
    from convolab.nn import batchnorm as B

    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    gamma = (rng.random(shape[-1]) + 0.5).astype(np.float32)
    beta = rng.standard_normal(shape[-1]).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    y0, c0 = B.batchnorm_forward(x, gamma, beta, 1e-3)
    g0 = B.batchnorm_backward(dy, c0)
    calls = kernels.calls
    with split_every_op(n_threads), PoolParts() as split:
        y1, c1 = B.batchnorm_forward(x, gamma, beta, 1e-3)
        g1 = B.batchnorm_backward(dy, c1)
    reached = kernels.calls - calls
    k = min(n_threads, shape[0])
    assert reached["bn_moments_f32"] == 1 and reached["bn_affine_f32"] == 1 and reached["bn_bwd_f32"] == 1
    # the moments' two passes, the affine map, the backward's sums and its dx: each in k parts
    assert (split.jobs, split.parts) == (5, 5 * k)
    assert rel_error(c1.mean, c0.mean) < 1e-6 and rel_error(c1.var, c0.var) < 1e-6
    assert rel_error(y1, y0) < 1e-6
    for a, b in zip(g1, g0):
        assert rel_error(a, b) < 1e-5


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")
@pytest.mark.parametrize(
    "case",
    [
        ((6, 9, 9, 5), (3, 3, 5, 1), (1, 1), "same", True),
        ((5, 8, 7, 3), (3, 3, 3, 2), (2, 2), "same", False),
        ((4, 6, 6, 4), (2, 3, 4, 1), (1, 2), "valid", True),
    ],
    ids=str,
)
@pytest.mark.parametrize("n_threads", [2, 3])
def test_split_depthwise_equals_whole(case, n_threads):
    from convolab.nn import depthwise_conv as D

    x_shape, w_shape, strides, padding, bias = case
    rng = np.random.default_rng(6)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.3).astype(np.float32)
    b = rng.standard_normal(w_shape[2] * w_shape[3]).astype(np.float32) if bias else None
    y0, c0 = D.depthwise_conv2d_forward(x, w, b, strides, padding)
    dy = rng.standard_normal(y0.shape).astype(np.float32)
    g0 = D.depthwise_conv2d_backward(dy, c0)
    calls = kernels.calls
    with split_every_op(n_threads), PoolParts() as split:
        y1, c1 = D.depthwise_conv2d_forward(x, w, b, strides, padding)
        g1 = D.depthwise_conv2d_backward(dy, c1)
    k = min(n_threads, x_shape[0])
    reached = kernels.calls - calls
    assert reached["depthwise_fwd_f32"] == 1 and reached["depthwise_dw_f32"] == 1 and reached["depthwise_dx_f32"] == 1
    assert (split.jobs, split.parts) == (3, 3 * k)
    assert np.array_equal(y1, y0) and np.array_equal(g1[0], g0[0])  # per image: the same arithmetic
    assert rel_error(g1[1], g0[1]) < 1e-6 and rel_error(g1[2], g0[2]) < 1e-6


@pytest.mark.parametrize(
    "pool", [((3, 3), (1, 1), "same"), ((2, 2), (2, 2), "valid"), ((3, 3), (2, 2), "same")], ids=str
)
@pytest.mark.parametrize("n_threads", [2, 3])
def test_split_max_pool_and_relu_equal_whole(pool, n_threads, monkeypatch):
    """Max pooling and ReLU split per image: the same bits as one call on the whole batch, on
    the C loops (float32, on the kernels' threads) and on NumPy (float64, on Python threads)."""
    from convolab.nn import activations, pool as pool_ops

    split_calls = []
    run = threads.run
    monkeypatch.setattr(threads, "run", lambda fn, parts: split_calls.append(len(parts)) or run(fn, parts))

    rng = np.random.default_rng(11)
    size, strides, padding = pool
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((7, 9, 10, 13)).astype(dtype)
        x[0, :3, :3, 0] = -np.inf  # a window of -inf only: its gradient is dropped
        x[1, 2, 2, :] = x[1, 2, 3, :]  # ties: the first maximum wins
        runs = []
        for split in (False, True):
            with split_every_op(n_threads) if split else contextlib.nullcontext(), PoolParts() as pooled:
                y, cache = pool_ops.max_pool_forward(x, size, strides, padding)
                dy = np.cos(np.arange(y.size, dtype=dtype)).reshape(y.shape)
                dx = pool_ops.max_pool_backward(dy, cache)
                r = activations.activation_forward("relu", x)
                dr = activations.activation_backward("relu", np.sin(np.where(np.isfinite(x), x, 0)), r)
                r6 = activations.relu_forward(x, max_value=6.0)[0]  # ReLU6
                r6s = activations.relu_forward(x[:, ::-1], max_value=6.0)[0]  # from a strided view: NumPy
            runs.append((y, cache[0], dx, r, dr, r6, r6s))
        np.testing.assert_array_equal(runs[0][5], np.clip(x, 0, 6))
        np.testing.assert_array_equal(runs[0][6], np.clip(x[:, ::-1], 0, 6))
        # the C loops (float32): pool forward and backward, ReLU forward and backward, ReLU6, each one
        # call in parts on the kernels' threads; NumPy (float64, or a strided view): on Python threads
        c_loops = dtype == np.float32 and kernels.available()
        assert split_calls == [n_threads] * (1 if c_loops else 3)
        assert (pooled.jobs, pooled.parts) == ((5, 5 * n_threads) if c_loops else (0, 0))
        split_calls.clear()
        for whole, split in zip(*runs):
            np.testing.assert_array_equal(split, whole)


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_split_concatenate_equals_whole(axis, monkeypatch):
    """Concatenation along a non-batch axis, one slice of the batch per thread: the same array,
    and its gradient still splits back into the parts."""
    from convolab.autodiff import functions

    rng = np.random.default_rng(13)
    xs = [rng.standard_normal((5, 4, 3, c)).astype(np.float32) for c in (2, 7, 1)]
    if axis != -1:
        xs = [np.moveaxis(x, -1, axis).copy() for x in xs]
    split_calls = []
    run = threads.run
    monkeypatch.setattr(threads, "run", lambda fn, parts: split_calls.append(len(parts)) or run(fn, parts))
    whole = np.concatenate(xs, axis=axis)
    with split_every_op(2):
        y = functions.concatenate(xs, axis=axis)
        assert split_calls == [2]
        np.testing.assert_array_equal(y, whole)
        functions.concatenate([xs[0], xs[0]], axis=0)  # along the batch axis: whole
        assert split_calls == [2]
