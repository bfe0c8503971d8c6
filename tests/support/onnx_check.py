"""ONNX export checked in onnxruntime against predict. onnxruntime is imported when a check runs
(``pytest.importorskip``), so a test module that imports this still collects without it, and only
the tests that export are skipped."""

import numpy as np
import pytest


def needs_onnx():
    """Skip the calling test where onnx (the export) or onnxruntime (the check) is missing;
    returns onnxruntime."""
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def run_onnx(path, x):
    ort = needs_onnx()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def check_export(model, tmp_path, x, atol=1e-5):
    needs_onnx()
    # Non-zero biases so a dropped or misplaced bias shows.
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if "bias" in layer.params:
            layer.params["bias"][...] = rng.normal(0, 0.3, layer.params["bias"].shape)
    path = tmp_path / "m.onnx"
    model.export(path)
    expected = model.predict(x, verbose=0)
    got = run_onnx(path, x)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    # the batch axis is symbolic: another batch size runs too
    np.testing.assert_allclose(run_onnx(path, x[:1]), expected[:1], rtol=0, atol=atol)


def images(shape, n=3, seed=1):
    return np.random.default_rng(seed).normal(size=(n,) + shape).astype(np.float32)
