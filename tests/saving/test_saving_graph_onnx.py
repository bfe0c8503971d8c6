"""ONNX export of functional graphs: merges, several inputs/outputs, nested models; onnxruntime parity."""

import numpy as np
import pytest

import convolab
from convolab import keras
from support.graph_models import inputs_for, nested, predictions, resnet, shared, two_in_two_out

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

L = keras.layers


def run_onnx(path, feeds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def nonzero_biases(model, seed=0):
    rng = np.random.default_rng(seed)
    for path, w in model.named_weights():
        if path.endswith("/bias"):
            w[...] = rng.normal(0, 0.3, w.shape)


def check(model, tmp_path, atol=1e-5):
    convolab.set_random_seed(0)
    nonzero_biases(model)
    x = inputs_for(model)
    xs = x if isinstance(x, list) else [x]
    names = ["input"] if len(xs) == 1 else [f"input_{i}" for i in range(len(xs))]
    model.export(tmp_path / "m.onnx")
    expected = predictions(model, x)
    got = run_onnx(tmp_path / "m.onnx", dict(zip(names, xs)))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=0, atol=atol)
    # the batch axis is symbolic
    for g, e in zip(run_onnx(tmp_path / "m.onnx", {n: a[:1] for n, a in zip(names, xs)}), expected):
        np.testing.assert_allclose(g, e[:1], rtol=0, atol=atol)
    return onnx.load(str(tmp_path / "m.onnx"))


@pytest.mark.parametrize("make", [resnet, two_in_two_out, shared, nested])
def test_graph_parity(tmp_path, make):
    check(make(), tmp_path)


def test_merge_ops_are_onnx_ops(tmp_path):
    proto = check(two_in_two_out(), tmp_path)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Add", "Sub", "Mul", "Div", "Max", "Min", "Concat"} <= ops


@pytest.mark.parametrize("axis", [1, 2, 3, -1])
@pytest.mark.parametrize("pooled", [True, False])
def test_concatenate_axes_in_both_layouts(tmp_path, axis, pooled):
    # after a pooling layer both inputs are NCHW in the ONNX graph; without, NHWC
    a = keras.Input(shape=(4, 4, 2))
    x = L.Conv2D(3, 3, padding="same")(a)
    y = L.Conv2D(3, 3, padding="same")(a)
    if pooled:
        x, y = L.MaxPooling2D(1)(x), L.MaxPooling2D(1)(y)
    check(keras.Model(a, L.Concatenate(axis=axis)([x, y])), tmp_path)


def test_mixed_layouts_and_ranks_merge(tmp_path):
    a = keras.Input(shape=(4, 4, 3))
    pooled = L.AveragePooling2D(1)(a)  # NCHW in the graph
    plain = L.Rescaling(2.0)(a)  # NHWC
    m = L.Maximum()([pooled, plain])
    v = L.Dense(3)(L.GlobalAveragePooling2D()(m))
    out = L.Average()([v, L.Dense(3)(L.Flatten()(a))])
    check(keras.Model(a, out), tmp_path)


def test_custom_layer_refused(tmp_path):
    class Doubler(L.Layer):
        def call(self, x):
            return keras.ops.multiply(x, 2.0)

    inp = keras.Input(shape=(4,))
    with pytest.raises(ValueError, match="Doubler"):
        keras.Model(inp, Doubler()(inp)).export(tmp_path / "m.onnx")
