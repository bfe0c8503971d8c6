"""The depthwise C kernels (depthwise_fwd_f32, depthwise_dx_f32, depthwise_dw_f32) against the NumPy reference.

Each case runs the op with the compiled kernels and with them switched off (``kernels.lib =
None``, the grouped im2col path), in float32, and against the float64 reference; the kernel
call counters prove the C path actually ran. Then the public API (DepthwiseConv2D,
SeparableConv2D and a small MobileNet training one step), the dispatch rules, and the checked
boundary (wrong dtype, short buffers, overlapping outputs, bad integers).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import zlib

import numpy as np
import pytest

from convolab import keras, kernels, zoo
from convolab.kernels import KernelArgumentError
from convolab.nn import depthwise_conv2d_backward, depthwise_conv2d_forward, separable_conv2d_backward
from convolab.nn import separable_conv2d_forward
from support.conv_refs import depthwise_conv_ref
from support.kernel_paths import numpy_path

pytestmark = pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")


def _calls(fn):
    before = collections.Counter(kernels.calls)
    out = fn()
    return out, kernels.calls - before


def _is_c(cache):
    """The cache of the C forward (the reference's starts with the grouped conv's own cache)."""
    return isinstance(cache[0], str) and cache[0] == "c"


def _close(a, ref, what, tol=2e-6):
    """Norm-wise: the largest difference against the largest reference value (float32 sums)."""
    assert a.shape == ref.shape, (what, a.shape, ref.shape)
    assert a.dtype == np.float32, (what, a.dtype)
    err = float(np.max(np.abs(a.astype(np.float64) - ref), initial=0.0))
    scale = max(float(np.max(np.abs(ref), initial=0.0)), 1.0)
    assert err <= tol * scale, (what, err, scale)


# (N, H, W, C, kernel, strides, padding, dilation, depth_multiplier)
CASES = [
    (2, 8, 8, 32, (3, 3), (1, 1), "same", (1, 1), 1),  # MobileNet's block: a 32-channel block
    (2, 9, 10, 64, (3, 3), (2, 2), "same", (1, 1), 1),  # stride 2, odd image: 'same' pads after
    (3, 7, 9, 37, (3, 3), (1, 1), "valid", (1, 1), 1),  # 32 + 5 channels: a block and a tail
    (1, 6, 11, 17, (5, 5), (1, 1), "same", (1, 1), 1),
    (2, 11, 7, 24, (5, 5), (2, 2), "valid", (1, 1), 1),
    (2, 5, 6, 9, (1, 1), (1, 1), "valid", (1, 1), 1),  # 1x1: one tap
    (1, 7, 7, 3, (1, 1), (2, 2), "same", (1, 1), 1),
    (2, 1, 1, 5, (3, 3), (1, 1), "same", (1, 1), 1),  # a 1x1 image: only the centre tap lands
    (1, 1, 1, 8, (5, 5), (2, 2), "same", (1, 1), 1),
    (1, 1, 1, 16, (1, 1), (1, 1), "valid", (1, 1), 1),
    (2, 4, 4, 3, (6, 6), (1, 1), "same", (1, 1), 1),  # window larger than the image
    (2, 9, 9, 1, (3, 3), (2, 1), "same", (1, 1), 1),  # one channel, unequal strides
    (1, 8, 13, 7, (3, 2), (1, 2), "same", (1, 1), 1),  # non-square window
    (2, 9, 9, 5, (3, 3), (1, 1), "same", (2, 2), 1),  # dilated
    (1, 10, 8, 12, (3, 3), (1, 1), "valid", (3, 2), 1),
    (1, 9, 9, 6, (3, 3), (2, 2), "same", (2, 2), 1),  # dilated and strided (the op allows it)
    (2, 6, 7, 4, (3, 3), (1, 1), "same", (1, 1), 2),  # depth multiplier
    (1, 7, 6, 3, (5, 5), (2, 2), "same", (1, 1), 3),
    (2, 6, 6, 10, (1, 1), (1, 1), "valid", (1, 1), 4),
    (1, 7, 7, 2, (3, 3), (1, 1), "valid", (2, 2), 2),
    (1, 1, 1, 3, (3, 3), (1, 1), "same", (1, 1), 2),
]
# every channel count from 1 to 37 through MobileNet's 3x3 'same' at both strides
CASES += [(1, 5, 6, c, (3, 3), (s, s), "same", (1, 1), 1) for c, s in zip(range(1, 38), itertools.cycle((1, 2)))]


def _id(case):
    n, h, w, c, k, s, p, d, dm = case
    return f"n{n}-{h}x{w}x{c}-k{k[0]}x{k[1]}-s{s[0]}x{s[1]}-{p}-d{d[0]}x{d[1]}-dm{dm}"


def _arrays(case, dtype=np.float32):
    n, h, w, c, k, s, p, d, dm = case
    rng = np.random.default_rng(zlib.crc32(_id(case).encode()))
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    wt = rng.standard_normal(k + (c, dm)).astype(dtype)
    b = rng.standard_normal(c * dm).astype(dtype)
    return x, wt, b, rng


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_op_c_kernels_equal_numpy_path(case, use_bias):
    n, h, w, c, k, s, p, d, dm = case
    x, wt, b, rng = _arrays(case)
    b = b if use_bias else None
    (y, cache), calls = _calls(lambda: depthwise_conv2d_forward(x, wt, b, s, p, d))
    assert calls["depthwise_fwd_f32"] == 1 and calls[f"depthwise_fwd_f32[{'dm=1' if dm == 1 else 'dm>1'}]"] == 1
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dy_before = dy.copy()
    (dx, dw, db), calls = _calls(lambda: depthwise_conv2d_backward(dy, cache))
    assert calls["depthwise_dx_f32"] == 1 and calls["depthwise_dw_f32"] == 1
    np.testing.assert_array_equal(dy, dy_before)  # never written to
    with numpy_path():
        (y32, cache32), calls = _calls(lambda: depthwise_conv2d_forward(x, wt, b, s, p, d))
        dx32, dw32, db32 = depthwise_conv2d_backward(dy, cache32)
    assert not calls["depthwise_fwd_f32"] and not _is_c(cache32)
    b64 = None if b is None else b.astype(np.float64)
    y64, cache64 = depthwise_conv2d_forward(x.astype(np.float64), wt.astype(np.float64), b64, s, p, d)
    dx64, dw64, db64 = depthwise_conv2d_backward(dy.astype(np.float64), cache64)
    for name, fast, slow, ref in (
        ("y", y, y32, y64),
        ("dx", dx, dx32, dx64),
        ("dw", dw, dw32, dw64),
        ("db", db, db32, db64),
    ):
        _close(fast, ref, name)
        _close(slow, ref, name + " (NumPy float32)")


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[13], CASES[17]], ids=_id)
def test_forward_equals_independent_loop_reference(case):
    n, h, w, c, k, s, p, d, dm = case
    x, wt, b, _ = _arrays(case)
    y, _ = depthwise_conv2d_forward(x, wt, b, s, p, d)
    _close(y, depthwise_conv_ref(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), s, p, d), "y")


def test_need_dx_false_skips_the_input_gradient():
    x, wt, b, rng = _arrays(CASES[0])
    y, cache = depthwise_conv2d_forward(x, wt, None, (1, 1), "same")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    (dx, dw, db), calls = _calls(lambda: depthwise_conv2d_backward(dy, cache, need_dx=False))
    assert dx is None and not calls["depthwise_dx_f32"] and calls["depthwise_dw_f32"] == 1
    _, dw2, db2 = depthwise_conv2d_backward(dy, cache)
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


def test_hand_made_all_ones():
    """All-ones image and kernel, 3x3 'same': each output counts the taps inside the image
    (4 at a corner, 6 on an edge, 9 inside), and so does each input gradient of an all-ones dy."""
    x = np.ones((1, 4, 5, 3), np.float32)
    w = np.ones((3, 3, 3, 1), np.float32)
    y, cache = depthwise_conv2d_forward(x, w, None, (1, 1), "same")
    counts = np.array([[4, 6, 6, 6, 4], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [4, 6, 6, 6, 4]], np.float32)
    np.testing.assert_array_equal(y[0, :, :, 0], counts)
    np.testing.assert_array_equal(y[0, :, :, 2], counts)
    dx, dw, db = depthwise_conv2d_backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(dx[0, :, :, 1], counts)
    # dw[i, j] counts the output pixels whose tap (i, j) lands inside: rows 3 or 4 times columns 4 or 5
    rows, cols = np.array([3, 4, 3]), np.array([4, 5, 4])
    np.testing.assert_array_equal(dw[:, :, 0, 0], np.outer(rows, cols).astype(np.float32))
    np.testing.assert_array_equal(db, np.full(3, 20, np.float32))


def test_separable_op_uses_the_kernels_and_matches_numpy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 9, 13)).astype(np.float32)
    dk = rng.standard_normal((3, 3, 13, 2)).astype(np.float32)
    pk = rng.standard_normal((1, 1, 26, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    (y, cache), calls = _calls(lambda: separable_conv2d_forward(x, dk, pk, b, (2, 2), "same"))
    assert calls["depthwise_fwd_f32[dm>1]"] == 1
    dy = rng.standard_normal(y.shape).astype(np.float32)
    grads, calls = _calls(lambda: separable_conv2d_backward(dy, cache))
    assert calls["depthwise_dx_f32"] == 1 and calls["depthwise_dw_f32"] == 1
    with numpy_path():
        y32, cache32 = separable_conv2d_forward(x, dk, pk, b, (2, 2), "same")
        grads32 = separable_conv2d_backward(dy, cache32)
    _close(y, y32.astype(np.float64), "y", 5e-6)
    for name, g, r in zip(("dx", "d_depthwise", "d_pointwise", "db"), grads, grads32):
        _close(g, r.astype(np.float64), name, 5e-6)


# -- dispatch -------------------------------------------------------------------------------


def test_float64_and_switched_off_kernels_take_numpy():
    x, wt, b, _ = _arrays(CASES[0], np.float64)
    (_, cache), calls = _calls(lambda: depthwise_conv2d_forward(x, wt, b, (1, 1), "same"))
    assert not calls["depthwise_fwd_f32"] and not _is_c(cache)
    x32, w32 = x.astype(np.float32), wt.astype(np.float32)
    with numpy_path():
        (_, cache), _ = _calls(lambda: depthwise_conv2d_forward(x32, w32, None, (1, 1), "same"))
    assert not _is_c(cache)


def test_non_contiguous_input_takes_numpy_and_agrees():
    x, wt, _, rng = _arrays(CASES[2])
    xt = np.asfortranarray(x)
    (y, cache), calls = _calls(lambda: depthwise_conv2d_forward(xt, wt, None, (1, 1), "valid"))
    assert not calls["depthwise_fwd_f32"]
    y_c, _ = depthwise_conv2d_forward(x, wt, None, (1, 1), "valid")
    _close(y_c, y.astype(np.float64), "y")


def test_backward_after_the_kernels_are_switched_off_still_answers():
    """A cache from the C forward, a backward with kernels.lib = None: the reference answers."""
    x, wt, _, rng = _arrays(CASES[1])
    y, cache = depthwise_conv2d_forward(x, wt, None, (2, 2), "same")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    fast = depthwise_conv2d_backward(dy, cache)
    with numpy_path():
        slow = depthwise_conv2d_backward(dy, cache)
    for f, s in zip(fast, slow):
        _close(f, s.astype(np.float64), "grad")


def test_non_contiguous_dy_is_copied_not_misread():
    x, wt, _, rng = _arrays(CASES[0])
    y, cache = depthwise_conv2d_forward(x, wt, None, (1, 1), "same")
    big = rng.standard_normal(y.shape[:3] + (2 * y.shape[3],)).astype(np.float32)
    dy = big[..., ::2]
    fast = depthwise_conv2d_backward(dy, cache)
    slow = depthwise_conv2d_backward(np.ascontiguousarray(dy), cache)
    for f, s in zip(fast, slow):
        np.testing.assert_array_equal(f, s)


# -- the public API: one training step with the kernels against one without ----------------


def _train_step(make_layers, x, y, lib_off):
    ctx = numpy_path() if lib_off else contextlib.nullcontext()
    with ctx:
        keras.utils.set_random_seed(0)
        model = keras.Sequential(make_layers())
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
        start = model.get_weights()
        before = collections.Counter(kernels.calls)
        loss = float(model.train_on_batch(x, y))
        calls = kernels.calls - before
        # plain SGD: each weight moved by -0.1 * its gradient (the runner's replicas held the grads)
        grads = [(w0 - w1) / 0.1 for w0, w1 in zip(start, model.get_weights())]
        return loss, grads, model.get_weights(), calls


@pytest.mark.parametrize(
    "make",
    [
        lambda: [
            keras.Input(shape=(9, 10, 19)),
            keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, use_bias=False),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="softmax"),
        ],
        lambda: [
            keras.Input(shape=(8, 8, 6)),
            keras.layers.Conv2D(5, 1),
            keras.layers.SeparableConv2D(7, 3, padding="same", depth_multiplier=1, activation="relu"),
            keras.layers.SeparableConv2D(6, 2, dilation_rate=2, depth_multiplier=3),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="softmax"),
        ],
    ],
    ids=["depthwise", "separable"],
)
def test_layers_train_one_step_like_the_numpy_path(make):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6,) + tuple(make()[0].shape[1:])).astype(np.float32)
    y = rng.integers(0, 4, 6)
    fast = _train_step(make, x, y, lib_off=False)
    slow = _train_step(make, x, y, lib_off=True)
    assert fast[3]["depthwise_fwd_f32"] > 0 and fast[3]["depthwise_dw_f32"] > 0 and fast[3]["depthwise_dx_f32"] > 0
    assert not slow[3]["depthwise_fwd_f32"]
    assert abs(fast[0] - slow[0]) <= 1e-5 * max(1.0, abs(slow[0]))
    assert len(fast[1]) == len(slow[1]) > 0
    for g, r in zip(fast[1], slow[1]):
        _close(g, r.astype(np.float64), "gradient", 2e-5)
    for w, r in zip(fast[2], slow[2]):
        _close(w, r.astype(np.float64), "weight", 2e-5)


def test_small_mobilenet_trains_one_step_like_the_numpy_path():
    rng = np.random.default_rng(11)
    x = rng.random((8, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    results = []
    for off in (False, True):
        ctx = numpy_path() if off else contextlib.nullcontext()
        with ctx:
            keras.utils.set_random_seed(1)
            model = zoo.mobilenet(input_shape=(8, 8, 3), classes=3, alpha=0.25, blocks=((16, 1), (24, 2)))
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="sparse_categorical_crossentropy")
            before = collections.Counter(kernels.calls)
            loss = float(model.train_on_batch(x, y))
            results.append((loss, model.get_weights(), kernels.calls - before))
    (loss, weights, calls), (loss32, weights32, calls32) = results
    assert calls["depthwise_fwd_f32"] == 2 and calls["depthwise_dw_f32"] == 2 and calls["depthwise_dx_f32"] == 2
    assert not calls32["depthwise_fwd_f32"]
    assert abs(loss - loss32) <= 1e-5 * max(1.0, abs(loss32))
    for w, r in zip(weights, weights32):
        _close(w, r.astype(np.float64), "weight", 2e-5)


# -- the checked boundary --------------------------------------------------------------------


def _ints(n=2, h=6, w=6, c=4, k=3, s=1, pt=1, d=1, ho=6, wo=6, dm=1):
    return (n, h, w, c, k, k, s, s, pt, pt, d, d, ho, wo, dm)


class TestRejectsBadArrays:
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 4)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((3, 3, 4, 1)).astype(np.float32)

    def test_forward_wrong_dtype_and_layout(self):
        y = np.empty((2, 6, 6, 4), np.float32)
        with pytest.raises(KernelArgumentError, match="x must be float32"):
            kernels.depthwise_fwd_f32(self.x.astype(np.float64), self.w, None, y, *_ints())
        with pytest.raises(KernelArgumentError, match="w must be float32"):
            kernels.depthwise_fwd_f32(self.x, self.w.astype(np.float16), None, y, *_ints())
        with pytest.raises(KernelArgumentError, match="contiguous"):
            kernels.depthwise_fwd_f32(np.asfortranarray(self.x), self.w, None, y, *_ints())
        with pytest.raises(KernelArgumentError, match="NumPy array"):
            kernels.depthwise_fwd_f32(self.x.tolist(), self.w, None, y, *_ints())

    def test_forward_output_too_small_is_untouched(self):
        y = np.full(2 * 6 * 6 * 4 - 1, 7.0, np.float32)
        with pytest.raises(KernelArgumentError, match="y has"):
            kernels.depthwise_fwd_f32(self.x, self.w, None, y, *_ints())
        assert np.all(y == 7.0)

    def test_bias_and_kernel_of_the_wrong_size(self):
        y = np.empty((2, 6, 6, 4), np.float32)
        with pytest.raises(KernelArgumentError, match="b has"):
            kernels.depthwise_fwd_f32(self.x, self.w, np.zeros(3, np.float32), y, *_ints())
        with pytest.raises(KernelArgumentError, match="w has"):
            kernels.depthwise_fwd_f32(self.x, self.w, None, y, *_ints(dm=2))  # w is for dm = 1

    def test_read_only_output(self):
        y = np.empty((2, 6, 6, 4), np.float32)
        y.flags.writeable = False
        with pytest.raises(KernelArgumentError, match="read-only"):
            kernels.depthwise_fwd_f32(self.x, self.w, None, y, *_ints())

    def test_overlapping_outputs(self):
        buf = np.zeros(2 * 6 * 6 * 4 * 2, np.float32)
        x = buf[: 2 * 6 * 6 * 4]
        y = buf[100 : 100 + 2 * 6 * 6 * 4]
        with pytest.raises(KernelArgumentError, match="overlaps"):
            kernels.depthwise_fwd_f32(x, self.w, None, y, *_ints())
        dy = np.zeros((2, 6, 6, 4), np.float32)
        with pytest.raises(KernelArgumentError, match="dx overlaps"):
            kernels.depthwise_dx_f32(dy, self.w, dy, *_ints())
        both = np.zeros(36 + 4, np.float32)
        with pytest.raises(KernelArgumentError, match="overlaps"):
            kernels.depthwise_dw_f32(self.x, dy, both[:36], both[34:38], *_ints())

    def test_gradient_buffers_too_small(self):
        dy = np.zeros((2, 6, 6, 4), np.float32)
        with pytest.raises(KernelArgumentError, match="dx has"):
            kernels.depthwise_dx_f32(dy, self.w, np.empty((2, 6, 6, 3), np.float32), *_ints())
        with pytest.raises(KernelArgumentError, match="dw has"):
            kernels.depthwise_dw_f32(self.x, dy, np.empty(35, np.float32), None, *_ints())
        with pytest.raises(KernelArgumentError, match="db has"):
            kernels.depthwise_dw_f32(self.x, dy, np.empty(36, np.float32), np.empty(5, np.float32), *_ints())
        with pytest.raises(KernelArgumentError, match="dy has"):
            kernels.depthwise_dw_f32(self.x, np.ascontiguousarray(dy[:, :5]), np.empty(36, np.float32), None, *_ints())

    def test_bad_integers(self):
        y = np.empty((2, 6, 6, 4), np.float32)
        with pytest.raises(KernelArgumentError, match="depth multiplier"):
            kernels.depthwise_fwd_f32(self.x, self.w, None, y, *_ints(dm=0))
        with pytest.raises(KernelArgumentError, match="dilation"):
            kernels.depthwise_fwd_f32(self.x, self.w, None, y, *_ints(d=0))
        with pytest.raises(KernelArgumentError, match="`C`"):
            kernels.depthwise_fwd_f32(self.x, self.w, None, y, *_ints(c=-4))
        with pytest.raises(KernelArgumentError, match="starts past"):
            kernels.depthwise_fwd_f32(self.x, self.w, None, np.empty(2 * 9 * 6 * 4, np.float32), *_ints(ho=9))
        with pytest.raises(KernelArgumentError, match="padding"):
            kernels.depthwise_fwd_f32(self.x, self.w, None, y, *_ints(pt=3))
        with pytest.raises(KernelArgumentError, match="overflow"):
            kernels.depthwise_fwd_f32(self.x, self.w, None, y, *_ints(d=2**30))
