"""Layers resolve their padding string into pixels once, at build, not on every call (issue 21).

Two things are held: (1) the pad function runs once for repeated calls of one input size and once
more per new size (patched and counted); (2) outputs and gradients equal those of the public ops
called with the padding string, as the layers called them before, over a case table of sizes,
strides, kernels and dilations, a layer called on two sizes included. Conv2D and Conv1D are also
held to an independent reference: the input padded by hand (TensorFlow's rule written out here),
then a 'valid' convolution.
"""

import numpy as np
import pytest

from convolab import layers
from convolab.nn.conv import conv2d_backward, conv2d_forward
from convolab.nn.conv1d import conv1d_backward, conv1d_forward, pool1d_backward, pool1d_forward
from convolab.nn.depthwise_conv import depthwise_conv2d_backward, depthwise_conv2d_forward
from convolab.nn.pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from convolab.nn.separable_conv import separable_conv2d_backward, separable_conv2d_forward
from convolab.utils import conv_utils


@pytest.fixture
def pad_calls(monkeypatch):
    """Count the calls of the one function that turns a padding string into pixels."""
    calls = []
    real = conv_utils.resolve_padding

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(conv_utils, "resolve_padding", counting)
    return calls


def _tf_pads(size, k, s, d=1):
    """TensorFlow's 'same' split, written out independently of conv_utils."""
    span = (k - 1) * d + 1
    total = max((-(-size // s) - 1) * s + span - size, 0)
    return total // 2, total - total // 2


def _ref_conv2d(layer, x, dy):
    p = layer.params
    y, cache = conv2d_forward(
        x, p["kernel"], p.get("bias"), layer.strides, layer.padding, layer.dilation_rate, layer.groups
    )
    return (y,) + conv2d_backward(dy, cache)


def _ref_depthwise(layer, x, dy):
    p = layer.params
    y, cache = depthwise_conv2d_forward(
        x, p["kernel"], p.get("bias"), layer.strides, layer.padding, layer.dilation_rate
    )
    return (y,) + depthwise_conv2d_backward(dy, cache)


def _ref_separable(layer, x, dy):
    p = layer.params
    y, cache = separable_conv2d_forward(
        x,
        p["depthwise_kernel"],
        p["pointwise_kernel"],
        p.get("bias"),
        layer.strides,
        layer.padding,
        layer.dilation_rate,
    )
    return (y,) + separable_conv2d_backward(dy, cache)


def _ref_pool(fwd, bwd):
    def ref(layer, x, dy):
        y, cache = fwd(x, layer.pool_size, layer.strides, layer.padding)
        return y, bwd(dy, cache)

    return ref


def _ref_conv1d(layer, x, dy):
    p = layer.params
    y, cache = conv1d_forward(x, p["kernel"], p.get("bias"), layer.strides[0], layer.padding, layer.dilation_rate[0])
    return (y,) + conv1d_backward(dy, cache)


def _ref_pool1d(mode):
    def ref(layer, x, dy):
        y, cache = pool1d_forward(x, layer.pool_size[0], layer.strides[0], layer.padding, mode)
        return y, pool1d_backward(dy, cache)

    return ref


# (make the layer, reference, input spatial sizes to call it on)
CASES_2D = [
    (lambda: layers.Conv2D(4, 3, padding="same"), _ref_conv2d),
    (lambda: layers.Conv2D(4, (2, 4), strides=(2, 3), padding="same"), _ref_conv2d),
    (lambda: layers.Conv2D(3, 3, padding="same", dilation_rate=2), _ref_conv2d),
    (lambda: layers.Conv2D(4, 3, strides=2, padding="valid"), _ref_conv2d),
    (lambda: layers.Conv2D(6, 3, padding="same", groups=3, use_bias=False), _ref_conv2d),
    (lambda: layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2), _ref_depthwise),
    (lambda: layers.DepthwiseConv2D(5, padding="same", dilation_rate=(2, 1)), _ref_depthwise),
    (lambda: layers.SeparableConv2D(5, 4, strides=3, padding="same"), _ref_separable),
    (lambda: layers.MaxPooling2D(3, strides=2, padding="same"), _ref_pool(max_pool_forward, max_pool_backward)),
    (lambda: layers.AveragePooling2D(3, strides=2, padding="same"), _ref_pool(avg_pool_forward, avg_pool_backward)),
    (lambda: layers.AveragePooling2D(2, padding="valid"), _ref_pool(avg_pool_forward, avg_pool_backward)),
]
CASES_1D = [
    (lambda: layers.Conv1D(4, 3, padding="causal"), _ref_conv1d),
    (lambda: layers.Conv1D(4, 3, padding="causal", dilation_rate=2), _ref_conv1d),
    (lambda: layers.Conv1D(4, 4, strides=3, padding="same"), _ref_conv1d),
    (lambda: layers.Conv1D(4, 2, strides=2, padding="valid"), _ref_conv1d),
    (lambda: layers.MaxPooling1D(3, strides=2, padding="same"), _ref_pool1d("max")),
    (lambda: layers.AveragePooling1D(3, strides=2, padding="same"), _ref_pool1d("avg")),
]


def _run(layer, x, rng):
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(x.dtype)
    dx = layer.backward(dy)
    return y, dy, dx


def _check_against(layer, ref, x, rng):
    y, dy, dx = _run(layer, x, rng)
    expected = ref(layer, x, dy)
    np.testing.assert_allclose(y, expected[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, expected[1], rtol=1e-5, atol=1e-5)
    if layer.params:  # weight gradients, in the order the ops return them
        for got, want in zip([layer.grads[k] for k in layer.params], expected[2:]):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CASES_2D) + len(CASES_1D)))
def test_pads_resolved_once_and_outputs_unchanged(case, dtype, pad_calls):
    make, ref = (CASES_2D + CASES_1D)[case]
    rng = np.random.default_rng(case)
    layer = make()
    one_d = case >= len(CASES_2D)
    shape = (2, 11, 3) if one_d else (2, 9, 7, 3)
    layer.build((None,) + shape[1:])
    assert len(pad_calls) == 1  # at build, where the size is known
    for _ in range(3):
        _check_against(layer, ref, rng.standard_normal(shape).astype(dtype), rng)
    # the references above take the string on purpose (each resolves it): count only the layer's own
    pad_calls.clear()
    for _ in range(3):
        _run(layer, rng.standard_normal(shape).astype(dtype), rng)
    assert pad_calls == []


@pytest.mark.parametrize("case", range(len(CASES_2D) + len(CASES_1D)))
def test_layer_called_on_two_sizes(case, pad_calls):
    """Built with unknown spatial sizes (a fully convolutional net), called on two sizes in turn."""
    make, ref = (CASES_2D + CASES_1D)[case]
    rng = np.random.default_rng(100 + case)
    layer = make()
    one_d = case >= len(CASES_2D)
    layer.build((None, None, 3) if one_d else (None, None, None, 3))
    assert pad_calls == []  # nothing to resolve before a size is known
    sizes = [(2, 8, 3), (2, 13, 3)] if one_d else [(2, 8, 8, 3), (2, 13, 10, 3)]
    for shape in sizes + sizes:
        x = rng.standard_normal(shape)
        before = len(pad_calls)
        y, dy, dx = _run(layer, x, rng)
        assert len(pad_calls) == before + 1  # a new size: resolved once for it
        pad_calls.clear()
        _run(layer, x, rng)  # the same size again: no new resolution
        assert pad_calls == []
        _check_against(layer, ref, x, rng)
        pad_calls.clear()


@pytest.mark.parametrize(
    "size,k,s,d", [(9, 3, 1, 1), (9, 4, 2, 1), (7, 5, 3, 1), (10, 3, 1, 2), (5, 1, 3, 1), (6, 2, 2, 1)]
)
def test_conv2d_same_equals_padding_by_hand(size, k, s, d):
    """Independent of conv_utils: pad with TensorFlow's rule written out, then a 'valid' convolution."""
    rng = np.random.default_rng(size * k)
    layer = layers.Conv2D(2, k, strides=s, padding="same", dilation_rate=d)
    x = rng.standard_normal((2, size, size + 1, 3))
    y, dy, dx = _run(layer, x, rng)
    (t, b), (l, r) = _tf_pads(size, k, s, d), _tf_pads(size + 1, k, s, d)
    xp_ = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    y_ref, cache = conv2d_forward(xp_, layer.params["kernel"], layer.params["bias"], (s, s), "valid", (d, d))
    dx_ref = conv2d_backward(dy, cache)[0][:, t : t + size, l : l + size + 1]
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("k,d,s", [(3, 1, 1), (3, 2, 1), (4, 1, 2), (1, 1, 1)])
def test_conv1d_causal_equals_left_zeros_by_hand(k, d, s):
    """'causal' is (k' - 1) zeros on the left, then 'valid' (Keras's definition)."""
    rng = np.random.default_rng(k * 10 + d)
    layer = layers.Conv1D(3, k, strides=s, padding="causal", dilation_rate=d)
    x = rng.standard_normal((2, 9, 2))
    y, dy, dx = _run(layer, x, rng)
    left = (k - 1) * d
    xp_ = np.concatenate([np.zeros((2, left, 2)), x], axis=1)
    y_ref, cache = conv1d_forward(xp_, layer.params["kernel"], layer.params["bias"], s, "valid", d)
    dx_ref = conv1d_backward(dy, cache)[0][:, left:]
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)


def test_ops_take_explicit_pads_as_well_as_strings():
    """The public ops accept both spellings and agree."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    pads = conv_utils.resolve_padding((7, 6), (3, 2), (2, 2), "same")
    assert pads == ((1, 1), (0, 0))
    np.testing.assert_array_equal(
        conv2d_forward(x, w, None, (2, 2), "same")[0], conv2d_forward(x, w, None, (2, 2), pads)[0]
    )
    np.testing.assert_array_equal(
        max_pool_forward(x, (3, 3), (2, 2), "same")[0], max_pool_forward(x, (3, 3), (2, 2), ((1, 1), (0, 1)))[0]
    )
    s = x[:, 0]
    np.testing.assert_array_equal(
        conv1d_forward(s, w[0], None, 1, "causal")[0], conv1d_forward(s, w[0], None, 1, (1, 0))[0]
    )


def test_resolve_padding_rejects_what_it_does_not_know():
    with pytest.raises(ValueError, match="'causal' is for one spatial axis"):
        conv_utils.resolve_padding((5, 5), (3, 3), (1, 1), "causal")
    with pytest.raises(ValueError, match="got 'full'"):
        conv_utils.resolve_padding((5,), (3,), (1,), "full")
