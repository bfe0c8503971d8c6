"""Conv2DTranspose resolves its padding into pixels once, at build, like the other conv layers (issue 19).

The pads belong to the convolution behind the transposed one, on the layer's output sizes. Held:
the pad function runs once at build and once more per new input size, never per call; outputs and
gradients equal the op called with the padding string; and the forward equals an independent
scatter loop (every input pixel spreads its window, then TensorFlow's 'same' crop) written here.
"""

import numpy as np
import pytest

from convolab import layers
from convolab.nn.conv_transpose import conv2d_transpose_backward, conv2d_transpose_forward
from convolab.utils import conv_utils


@pytest.fixture
def pad_calls(monkeypatch):
    calls = []
    real = conv_utils.resolve_padding

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(conv_utils, "resolve_padding", counting)
    return calls


# (filters, kernel, strides, padding, output_padding, dilation)
CASES = [
    (4, 3, 2, "same", None, 1),
    (3, (2, 4), (2, 3), "same", None, 1),
    (3, 3, 1, "same", None, 2),
    (2, 3, 2, "same", 1, 1),
    (4, 3, 2, "valid", None, 1),
    (2, 2, 3, "valid", (1, 2), 1),
]


def _scatter_ref(x, w, b, strides, padding, output_padding, dilation):
    """The transposed convolution longhand, in float64."""
    n, h, wd, c = x.shape
    kh, kw, f, _ = w.shape
    sh, sw = strides
    dh, dw = dilation
    spans = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    outs = []
    for size, s, span, o in zip((h, wd), (sh, sw), spans, output_padding or (None, None)):
        if o is None:
            outs.append(size * s + max(span - s, 0) if padding == "valid" else size * s)
        else:
            outs.append((size - 1) * s + span - 2 * (0 if padding == "valid" else span // 2) + o)
    befores = []
    for size, s, span, out in zip((h, wd), (sh, sw), spans, outs):
        total = 0 if padding == "valid" else max((size - 1) * s + span - out, 0)
        befores.append(total // 2)
    y = np.zeros((n, outs[0], outs[1], f))
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for bb in range(kw):
                    oi, oj = i * sh + a * dh - befores[0], j * sw + bb * dw - befores[1]
                    if 0 <= oi < outs[0] and 0 <= oj < outs[1]:
                        y[:, oi, oj, :] += x[:, i, j, :] @ w[a, bb].T
    return y + b


def _layer(case):
    f, k, s, p, op, d = case
    return layers.Conv2DTranspose(f, k, strides=s, padding=p, output_padding=op, dilation_rate=d)


def _check(layer, x, rng):
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(x.dtype)
    dx = layer.backward(dy)
    p = layer.params
    want, cache = conv2d_transpose_forward(
        x, p["kernel"], p["bias"], layer.strides, layer.padding, layer.output_padding, layer.dilation_rate
    )
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    wdx, wdw, wdb = conv2d_transpose_backward(dy, cache)
    np.testing.assert_allclose(dx, wdx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.grads["kernel"], wdw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.grads["bias"], wdb, rtol=1e-4, atol=1e-4)
    loop = _scatter_ref(
        x.astype(np.float64),
        p["kernel"],
        p["bias"],
        layer.strides,
        layer.padding,
        layer.output_padding,
        layer.dilation_rate,
    )
    np.testing.assert_allclose(y, loop, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_pads_resolved_once_at_build(case, pad_calls):
    rng = np.random.default_rng(0)
    layer = _layer(case)
    layer.build((None, 5, 6, 3))
    assert len(pad_calls) == 1
    assert pad_calls[0] == layer.output_shape[1:3]  # the output's sizes, where the convolution behind it reads
    pad_calls.clear()
    for _ in range(3):
        layer(rng.standard_normal((2, 5, 6, 3)).astype("float32"))
    assert pad_calls == []
    _check(layer, rng.standard_normal((2, 5, 6, 3)).astype("float32"), rng)


@pytest.mark.parametrize("case", CASES)
def test_called_on_two_sizes(case, pad_calls):
    rng = np.random.default_rng(1)
    layer = _layer(case)
    layer.build((None, None, None, 3))
    assert pad_calls == []
    for shape in [(2, 4, 4, 3), (1, 7, 5, 3)] * 2:
        x = rng.standard_normal(shape)
        layer(x)
        assert len(pad_calls) == 1  # a new size: resolved once for it
        pad_calls.clear()
        layer(x)  # the same size again: nothing new to resolve
        assert pad_calls == []
        _check(layer, x, rng)  # the op called with the string resolves on its own
        pad_calls.clear()
