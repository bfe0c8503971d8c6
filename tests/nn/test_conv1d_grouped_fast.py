"""``Conv1D(groups=...)`` on grouped convolution's fast path (issue 19).

conv1d_forward runs a sequence as a height-1 image; with ``groups > 1`` it now goes through
:mod:`convolab.nn.grouped_conv_fast` (the depthwise kernels for ``groups = C``, one ordinary
convolution per group otherwise) instead of the batched im2col reference. Each case runs through
the public layer with the fast path on and off and against the plain loop of
tests/support/conv_refs.py (forward, tape gradients of input, kernel and bias); then which path runs.
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

ops = keras.ops
needs_kernels = pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")

# (N, L, C, filters, groups, kernel, stride, padding, dilation)
CASES = [
    (2, 11, 8, 8, 4, 3, 1, "same", 1),
    (2, 12, 6, 12, 2, 3, 2, "valid", 1),
    (3, 10, 4, 8, 2, 3, 1, "causal", 2),  # causal: explicit pads on the left only
    (2, 9, 6, 6, 6, 5, 1, "same", 1),  # groups == C: the depthwise kernels
    (1, 13, 4, 12, 4, 3, 2, "causal", 1),  # depth multiplier 3, causal, strided
    (2, 8, 12, 6, 3, 1, 1, "valid", 1),  # pointwise, two filters a group
]


def _id(case):
    n, length, c, f, g, k, s, p, d = case
    return f"n{n}-L{length}-c{c}-f{f}-g{g}-k{k}-s{s}-{p}-d{d}"


def _layer_and_input(case, seed=0):
    n, length, c, f, g, k, s, p, d = case
    rng = np.random.default_rng(seed)
    layer = keras.layers.Conv1D(f, k, strides=s, padding=p, dilation_rate=d, groups=g)
    x = rng.standard_normal((n, length, c)).astype("float32")
    layer.build(x.shape)
    kernel = (rng.standard_normal(layer.get_weights()[0].shape) / np.sqrt(k * c // g)).astype("float32")
    layer.set_weights([kernel, (0.1 * rng.standard_normal(f)).astype("float32")])
    return layer, x


def _loop(layer, x, case):
    """The plain loop in float64 on the sequence as a height-1 image; causal as explicit left pads."""
    n, length, c, f, g, k, s, p, d = case
    kernel, bias = (v.astype(np.float64) for v in layer.get_weights())
    x64 = x.astype(np.float64)
    if p == "causal":
        x64 = np.concatenate([np.zeros((n, (k - 1) * d, c)), x64], axis=1)
        p = "valid"
    return grouped_conv_ref(x64[:, None], kernel[None], bias, (1, s), p, (1, d), g)[:, 0]


def _forward_and_grads(layer, x, dy):
    xv = Variable(x)
    with GradientTape() as tape:
        y = layer(xv, training=True)
        loss = ops.sum(ops.multiply(y, dy))
    grads = tape.gradient(loss, [xv] + list(layer.trainable_variables))
    return np.asarray(y), [np.asarray(gr) for gr in grads]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_fast_path_matches_the_reference_and_the_loop(case, monkeypatch):
    layer, x = _layer_and_input(case)
    want = _loop(layer, x, case)
    dy = np.random.default_rng(1).standard_normal(want.shape).astype("float32")
    y, grads = _forward_and_grads(layer, x, dy)
    with monkeypatch.context() as m:
        m.setattr(grouped_conv_fast, "use_fast", False)
        y_ref, grads_ref = _forward_and_grads(layer, x, dy)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for got, ref in zip(grads, grads_ref):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def _refuse_the_reference(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the grouped im2col reference ran")

    monkeypatch.setattr(conv_module, "grouped_conv2d_forward", refuse)


def test_grouped_conv1d_runs_one_convolution_per_group(monkeypatch):
    _refuse_the_reference(monkeypatch)
    calls = []
    real = grouped_conv_fast.conv2d_forward
    monkeypatch.setattr(grouped_conv_fast, "conv2d_forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    layer, x = _layer_and_input(CASES[0])  # 4 groups
    _forward_and_grads(layer, x, np.ones((2, 11, 8), np.float32))
    assert len(calls) == 4


@needs_kernels
def test_depthwise_grouped_conv1d_runs_on_the_depthwise_kernels(monkeypatch):
    _refuse_the_reference(monkeypatch)
    layer, x = _layer_and_input(CASES[4])  # groups == C == 4, 12 filters, causal
    before = collections.Counter(kernels.calls)
    y, _ = _forward_and_grads(layer, x, np.ones((1, 7, 12), np.float32))
    ran = kernels.calls - before
    assert ran["depthwise_fwd_f32"] == 1 and ran["depthwise_dx_f32"] == 1 and ran["depthwise_dw_f32"] == 1
    np.testing.assert_allclose(y, _loop(layer, x, CASES[4]), rtol=1e-4, atol=1e-5)


def test_keras_program_with_a_grouped_conv1d_trains():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 16, 4)).astype("float32")
    y = (x[:, :, :2].sum(axis=(1, 2)) > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((16, 4)),
            keras.layers.Conv1D(8, 3, padding="causal", groups=2, activation="relu"),
            keras.layers.Conv1D(8, 3, padding="same", groups=8),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    losses = model.fit(x, y, batch_size=16, epochs=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
