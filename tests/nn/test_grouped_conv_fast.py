"""Grouped convolution's fast path (convolab.nn.grouped_conv_fast) against the NumPy reference.

Keras's ``Conv2D(groups=...)`` runs on the depthwise C kernels when ``groups`` equals the channel
count and on one ordinary (fused or im2col) convolution per group otherwise. Every case of the
table runs through the public API both ways (``grouped_conv_fast.use_fast`` on and off, the off
side being the batched im2col reference of convolab.nn.grouped_conv) and against the plain loop
of tests/support/conv_refs.py: the forward in float32 as users run it, the input, kernel and bias
gradients from a GradientTape, a fit step, and central differences in float64. Then which path
runs: the kernels' call counters and spies on the per-group convolutions and on the reference.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from convolab import keras, kernels
from convolab.autodiff import GradientTape, Variable
from convolab.nn import conv as conv_module
from convolab.nn import grouped_conv_fast
from support.conv_refs import grouped_conv_ref
from support.gradcheck import numerical_gradient, rel_error
from support.kernel_paths import numpy_path

ops = keras.ops
needs_kernels = pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")

# (N, H, W, C, filters, groups, kernel, strides, padding, dilation, activation)
CASES = [
    (2, 7, 7, 8, 8, 4, (3, 3), (1, 1), "same", (1, 1), None),  # ConvMixer-style 3x3, 4 groups
    (2, 8, 8, 16, 16, 8, (3, 3), (2, 2), "same", (1, 1), "relu"),  # stride 2, ReLU in the store
    (1, 9, 7, 6, 12, 2, (3, 2), (1, 1), "valid", (1, 1), None),  # non-square window, F = 2C
    (3, 6, 6, 8, 4, 4, (1, 1), (1, 1), "valid", (1, 1), None),  # 1x1, one filter a group
    (2, 9, 9, 4, 8, 2, (3, 3), (1, 1), "same", (2, 2), None),  # dilated: im2col per group
    (1, 10, 8, 6, 6, 3, (5, 5), (2, 1), "same", (1, 1), "tanh"),  # unequal strides
    (2, 6, 6, 12, 24, 6, (3, 3), (1, 1), "same", (1, 1), None),  # two channels a group
    (2, 5, 6, 64, 64, 2, (3, 3), (1, 1), "same", (1, 1), None),  # 32 filters a group (AVX2's limit)
    (2, 8, 8, 8, 8, 8, (3, 3), (1, 1), "same", (1, 1), None),  # groups == C: the depthwise kernels
    (2, 9, 9, 6, 6, 6, (9, 9), (1, 1), "same", (1, 1), "relu"),  # ConvMixer's 9x9 depthwise
    (1, 7, 9, 5, 10, 5, (3, 3), (2, 2), "valid", (1, 1), None),  # depth multiplier 2
    (2, 6, 6, 4, 12, 4, (3, 3), (1, 1), "same", (2, 2), None),  # multiplier 3, dilated
    (1, 5, 5, 3, 3, 3, (7, 7), (1, 1), "same", (1, 1), None),  # window larger than the image
    (2, 6, 7, 40, 40, 40, (3, 3), (2, 2), "same", (1, 1), None),  # 32 channels and a tail of 8
]


def _id(case):
    n, h, w, c, f, g, k, s, p, d, a = case
    return f"n{n}-{h}x{w}x{c}-f{f}-g{g}-k{k[0]}x{k[1]}-s{s[0]}x{s[1]}-{p}-d{d[0]}x{d[1]}-{a}"


def _layer_and_input(case, dtype, seed=0):
    n, h, w, c, f, g, k, s, p, d, a = case
    rng = np.random.default_rng(seed)
    layer = keras.layers.Conv2D(f, k, strides=s, padding=p, dilation_rate=d, groups=g, activation=a, dtype=dtype)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    layer.build(x.shape)
    kernel = (rng.standard_normal(layer.get_weights()[0].shape) / np.sqrt(k[0] * k[1] * c // g)).astype(dtype)
    layer.set_weights([kernel, (0.1 * rng.standard_normal(f)).astype(dtype)])
    return layer, x


@pytest.fixture
def reference(monkeypatch):
    """A function running its argument with the fast path switched off."""

    def run(fn):
        with monkeypatch.context() as m:
            m.setattr(grouped_conv_fast, "use_fast", False)
            return fn()

    return run


def _forward(layer, x):
    return np.asarray(layer(x))


def _tape_grads(layer, x, dy):
    """``d sum(layer(x) * dy)`` with respect to the input, the kernel and the bias."""
    xv = Variable(x)
    with GradientTape() as tape:
        loss = ops.sum(ops.multiply(layer(xv, training=True), dy))
    return [np.asarray(gr) for gr in tape.gradient(loss, [xv] + list(layer.trainable_variables))]


def _loop_reference(layer, x, case):
    """The plain loop in float64, activation applied (None where the loop would take too long)."""
    n, h, w, c, f, g, k, s, p, d, a = case
    if n * h * w * f * k[0] * k[1] * (c // g) > 120_000:
        return None
    kernel, bias = (v.astype(np.float64) for v in layer.get_weights())
    y = grouped_conv_ref(x.astype(np.float64), kernel, bias, s, p, d, g)
    return {None: y, "relu": np.maximum(y, 0), "tanh": np.tanh(y)}[a]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_forward_float32_matches_the_reference_and_the_loop(case, reference):
    layer, x = _layer_and_input(case, "float32")
    y = _forward(layer, x)
    y_ref = reference(lambda: _forward(layer, x))
    assert y.dtype == np.float32 and y.shape == y_ref.shape
    assert rel_error(y, y_ref) < 2e-6
    loop = _loop_reference(layer, x, case)
    if loop is not None:
        assert rel_error(y, loop) < 2e-6


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_tape_gradients_float32_match_the_reference(case, reference):
    layer, x = _layer_and_input(case, "float32")
    dy = np.random.default_rng(1).standard_normal(_forward(layer, x).shape).astype(np.float32)
    fast = _tape_grads(layer, x, dy)
    ref = reference(lambda: _tape_grads(layer, x, dy))
    for name, a, b in zip(("input", "kernel", "bias"), fast, ref):
        assert a.dtype == np.float32 and a.shape == b.shape, name
        assert rel_error(a, b) < 1e-5, (name, rel_error(a, b))


# the float64 cases: each kind of route once, small enough for central differences
GRADCHECK_CASES = [CASES[0], CASES[1], CASES[2], CASES[4], CASES[6], CASES[8], CASES[10]]


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=_id)
def test_float64_gradients_match_central_differences(case):
    layer, x = _layer_and_input(case, "float64")
    kernel, bias = layer.get_weights()
    dy = np.random.default_rng(2).standard_normal(_forward(layer, x).shape)
    dx, dw, db = _tape_grads(layer, x, dy)

    def with_weights(w, b):
        layer.set_weights([w, b])
        return _forward(layer, x)

    assert rel_error(dx, numerical_gradient(lambda v: _forward(layer, v), x.copy(), dy)) < 1e-7
    assert rel_error(dw, numerical_gradient(lambda v: with_weights(v, bias), kernel.copy(), dy)) < 1e-7
    assert rel_error(db, numerical_gradient(lambda v: with_weights(kernel, v), bias.copy(), dy)) < 1e-7


def _fit_one_step(groups, channels):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((8, 8, channels)),
            keras.layers.Conv2D(channels, 3, padding="same", groups=groups, activation="relu"),
            keras.layers.Conv2D(2 * channels, 3, strides=2, padding="same", groups=groups),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((16, 8, 8, channels)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    return history.history["loss"][0], model.get_weights()


@pytest.mark.parametrize("groups,channels", [(4, 8), (8, 8)], ids=["groups4", "depthwise"])
def test_fit_step_matches_the_reference(groups, channels, reference):
    loss, weights = _fit_one_step(groups, channels)
    loss_ref, weights_ref = reference(lambda: _fit_one_step(groups, channels))
    assert abs(loss - loss_ref) <= 1e-5 * max(1.0, abs(loss_ref))
    for w, w_ref in zip(weights, weights_ref):
        assert w.dtype == np.float32
        assert rel_error(w, w_ref) < 1e-5


# -- which path runs ------------------------------------------------------------------------


def _spy(monkeypatch, module, name):
    """Count the calls of ``module.name`` (still calling it)."""
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(kwargs.get("groups", args[6] if len(args) > 6 else 1))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


@needs_kernels
def test_groups_equal_to_channels_run_on_the_depthwise_kernels(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the grouped reference ran")

    monkeypatch.setattr(conv_module, "grouped_conv2d_forward", refuse)
    layer, x = _layer_and_input(CASES[11], "float32")  # 4 channels, 12 filters: multiplier 3
    before = collections.Counter(kernels.calls)
    _tape_grads(layer, x, np.ones(_forward(layer, x).shape, np.float32))
    ran = kernels.calls - before
    assert ran["depthwise_fwd_f32"] == 2 and ran["depthwise_dx_f32"] == 1 and ran["depthwise_dw_f32"] == 1
    assert ran["depthwise_fwd_f32[dm>1]"] == 2


def test_other_groups_run_one_convolution_per_group(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the grouped reference ran")

    monkeypatch.setattr(conv_module, "grouped_conv2d_forward", refuse)
    per_group = _spy(monkeypatch, grouped_conv_fast, "conv2d_forward")
    layer, x = _layer_and_input(CASES[1], "float32")  # 8 groups
    _tape_grads(layer, x, np.ones(_forward(layer, x).shape, np.float32))
    assert per_group == [1] * 16  # eight groups, each an ordinary convolution, in both calls


def test_use_fast_false_runs_the_reference(monkeypatch):
    reference_calls = _spy(monkeypatch, conv_module, "grouped_conv2d_forward")
    per_group = _spy(monkeypatch, grouped_conv_fast, "conv2d_forward")
    monkeypatch.setattr(grouped_conv_fast, "use_fast", False)
    before = collections.Counter(kernels.calls)
    for case in (CASES[0], CASES[8]):
        layer, x = _layer_and_input(case, "float32")
        _forward(layer, x)
    assert len(reference_calls) == 2 and per_group == [4, 8]  # whole, groups passed on
    assert not any(name.startswith("depthwise") for name in kernels.calls - before)


def test_one_channel_groups_without_the_kernels_take_the_reference(monkeypatch):
    """float64, or the kernels switched off: C one-channel convolutions would be slower than the reference."""
    per_group = _spy(monkeypatch, grouped_conv_fast, "conv2d_forward")
    layer64, x64 = _layer_and_input(CASES[8], "float64")
    _forward(layer64, x64)
    with numpy_path():
        layer, x = _layer_and_input(CASES[8], "float32")
        y = _forward(layer, x)
    assert per_group == [8, 8]
    assert rel_error(y, _loop_reference(layer, x, CASES[8])) < 2e-6


def test_per_group_path_without_the_kernels_matches_the_loop():
    with numpy_path():
        layer, x = _layer_and_input(CASES[0], "float32")
        y = _forward(layer, x)
    assert rel_error(y, _loop_reference(layer, x, CASES[0])) < 2e-6


@pytest.mark.parametrize("groups", [3, 6, 12])
def test_strided_and_float64_gradients_into_the_functions(groups):
    """The functions themselves: a non-contiguous input and kernel, an upstream gradient that is
    a float64 view, and ``need_dx=False``; the upstream gradient is never written to."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 7, 12)).astype(np.float32)[:, ::-1]
    w = rng.standard_normal((3, 3, 12 // groups, 24)).astype(np.float32)[::-1, :, :, ::2]
    b = rng.standard_normal(12).astype(np.float32)
    y, cache = grouped_conv_fast.grouped_conv2d_forward_fast(x, w, b, (1, 1), "same", (1, 1), groups)
    y64 = grouped_conv_ref(
        x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), (1, 1), "same", groups=groups
    )
    assert rel_error(y, y64) < 2e-6
    dy = rng.standard_normal((2, 7, 14, 12))[:, :, ::2]
    kept = dy.copy()
    dx, dw, db = grouped_conv_fast.grouped_conv2d_backward_fast(dy, cache, need_dx=True)
    _, dw_only, _ = grouped_conv_fast.grouped_conv2d_backward_fast(dy, cache, need_dx=False)
    with_ref = grouped_conv_fast.use_fast
    try:
        grouped_conv_fast.use_fast = False
        y_ref, cache_ref = grouped_conv_fast.grouped_conv2d_forward_fast(x, w, b, (1, 1), "same", (1, 1), groups)
        grads_ref = grouped_conv_fast.grouped_conv2d_backward_fast(dy, cache_ref)
    finally:
        grouped_conv_fast.use_fast = with_ref
    np.testing.assert_array_equal(dy, kept)
    for a, r in zip((dx, dw, db, dw_only), grads_ref + (grads_ref[1],)):
        assert a.shape == r.shape and rel_error(a, r) < 1e-5


def test_device_arrays_keep_the_reference(monkeypatch):
    """CuPy arrays (here the CPU fake of tests/support/fake_cupy.py) take the reference: its im2col
    and batched product run on the device; the depthwise C kernels and the per-group copies do not."""
    from convolab import _gpu, backend
    from convolab.kernels import cuda
    from support import fake_cupy

    cp = fake_cupy.make_module()
    monkeypatch.setattr(_gpu, "_import_cupy", lambda: cp)
    monkeypatch.setattr(cuda, "_modules", {})
    per_group = _spy(monkeypatch, grouped_conv_fast, "conv2d_forward")
    backend.set_device("gpu")
    try:
        for case in (CASES[0], CASES[8]):
            n, h, w, c, f, g, k, s, p, d, _ = case
            rng = np.random.default_rng(6)
            x = rng.standard_normal((n, h, w, c)).astype(np.float32)
            kernel = rng.standard_normal(k + (c // g, f)).astype(np.float32)
            y, cache = grouped_conv_fast.grouped_conv2d_forward_fast(
                cp.asarray(x), cp.asarray(kernel), None, s, p, d, g
            )
            assert isinstance(y, fake_cupy.ndarray)
            dx, dw, _ = grouped_conv_fast.grouped_conv2d_backward_fast(cp.ones(y.shape, dtype=cp.float32), cache)
            assert isinstance(dx, fake_cupy.ndarray) and isinstance(dw, fake_cupy.ndarray)
            assert (
                rel_error(y.get(), grouped_conv_ref(x.astype(np.float64), kernel.astype(np.float64), None, s, p, d, g))
                < 2e-6
            )
    finally:
        backend.set_device("cpu")
        _gpu.cupy = None
    assert per_group == [4, 8]  # once each, whole: the reference
