"""Inference with each BatchNormalization folded into the Conv2D/DepthwiseConv2D/Dense before it
(models/folding.py) against the same model run layer by layer."""

from __future__ import annotations

import numpy as np
import pytest

from convolab import keras
from convolab.models import folding

L = keras.layers


def _model(dtype):
    inp = keras.Input((8, 8, 3), dtype=dtype)
    a = L.Conv2D(6, 3, padding="same", dtype=dtype)(inp)  # folds
    a = L.BatchNormalization(dtype=dtype)(a)
    a = L.ReLU(dtype=dtype)(a)
    b = L.Conv2D(4, 1, use_bias=False, dtype=dtype)(a)  # folds, no bias of its own
    b = L.BatchNormalization(center=False, dtype=dtype)(b)
    c = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", dtype=dtype)(b)  # folds, dm = 2
    c = L.BatchNormalization(scale=False, dtype=dtype)(c)
    d = L.Conv2D(8, 3, activation="relu", dtype=dtype)(c)  # an activation: no fold
    d = L.BatchNormalization(dtype=dtype)(d)
    e = L.Conv2D(8, 1, dtype=dtype)(d)  # read twice: no fold
    f = L.BatchNormalization(dtype=dtype)(e)
    g = L.Add(dtype=dtype)([e, f])
    g = L.GlobalAveragePooling2D(dtype=dtype)(g)
    h = L.Dense(5, dtype=dtype)(g)  # folds, into the output
    h = L.BatchNormalization(dtype=dtype)(h)
    return keras.Model(inp, h)


def _randomise_statistics(model, rng):
    """Moving statistics and affine weights far from their initial 0 and 1, so folding shows."""
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            for key, value in layer.params.items():
                positive = key in ("gamma", "moving_variance")
                new = rng.uniform(0.5, 2.0, value.shape) if positive else rng.normal(0, 1, value.shape)
                value[...] = new.astype(value.dtype)


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_predict_with_folding_equals_layer_by_layer(dtype, tol, monkeypatch):
    keras.utils.set_random_seed(0)
    model = _model(dtype)
    rng = np.random.default_rng(1)
    _randomise_statistics(model, rng)
    x = rng.standard_normal((6, 8, 8, 3)).astype(dtype)
    calls = []
    real = folding.folded_call
    monkeypatch.setattr(folding, "folded_call", lambda *a: calls.append(type(a[0]).__name__) or real(*a))
    folded = model.predict(x, verbose=0)
    assert sorted(calls) == ["Conv2D", "Conv2D", "Dense", "DepthwiseConv2D"]
    monkeypatch.setattr(folding, "enabled", False)
    plain = model.predict(x, verbose=0)
    assert folded.dtype == plain.dtype == np.dtype(dtype)
    np.testing.assert_allclose(folded, plain, rtol=tol, atol=tol * np.abs(plain).max())
    assert np.abs(plain).max() > 0.1  # the outputs are not all near zero


def test_training_and_recorded_passes_run_every_layer(monkeypatch):
    keras.utils.set_random_seed(0)
    model = _model("float32")
    x = np.random.default_rng(2).standard_normal((4, 8, 8, 3)).astype(np.float32)
    calls = []
    monkeypatch.setattr(folding, "folded_call", lambda *a: calls.append(a) or pytest.fail("folded"))
    model(x, training=True)
    with keras.GradientTape() if hasattr(keras, "GradientTape") else _tape():
        model(x, training=False)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.zeros((4, 5), np.float32), epochs=1, verbose=0)
    assert calls == []


def _tape():
    from convolab.autodiff.tape import GradientTape

    return GradientTape()


def test_evaluate_folds_and_agrees(monkeypatch):
    keras.utils.set_random_seed(3)
    model = _model("float32")
    _randomise_statistics(model, np.random.default_rng(4))
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(5).standard_normal((8, 8, 8, 3)).astype(np.float32)
    y = np.random.default_rng(6).standard_normal((8, 5)).astype(np.float32)
    folded = model.evaluate(x, y, verbose=0)
    monkeypatch.setattr(folding, "enabled", False)
    plain = model.evaluate(x, y, verbose=0)
    assert folded == pytest.approx(plain, rel=1e-5)
