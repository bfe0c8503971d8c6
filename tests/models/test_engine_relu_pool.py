"""The stack engine's ReLU-then-max-pool backward (models/engine.py): the ReLU's mask applied to
the pooled gradient gives the same gradients, bit for bit, as the ReLU's own backward pass."""

from __future__ import annotations

import numpy as np
import pytest

from convolab import keras
from convolab.models import stack_step


def _model(dtype, pool2):
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            L.Conv2D(5, 3, activation="relu"),  # 10x10x5
            L.MaxPooling2D(),  # 2x2 windows: the fast 2x2 kernels
            L.Conv2D(8, 3, activation="relu", padding="same"),
            pool2,  # overlapping or 'same' windows: the general ones
            L.Flatten(),
            L.Dense(4, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    if dtype == np.float64:
        model.set_weights([w.astype(np.float64) for w in model.get_weights()])
        for layer in model.layers:
            for k in layer.params:
                layer.params[k] = layer.params[k].astype(np.float64)
    return model


def _grads(model, x, y, fold, monkeypatch):
    taken = []
    real = stack_step._relu_before_max_pool

    def spy(below, pool):
        ok = fold and real(below, pool)
        taken.append(ok)
        return ok

    monkeypatch.setattr(stack_step, "_relu_before_max_pool", spy)
    fused = stack_step.fused_softmax(model)
    _, _, dout = stack_step.loss_and_grad(model.layers, model.loss, x, y, True, fused)
    stack_step.backward(model.layers, dout, 0, fused)
    monkeypatch.undo()
    return [g.copy() for layer in model.layers for g in layer.grads.values()], taken


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool2", ["overlapping", "same"])
def test_relu_mask_on_the_pooled_gradient_equals_the_relu_backward(dtype, pool2, monkeypatch):
    L = keras.layers
    layer = L.MaxPooling2D(3, strides=1, padding="same") if pool2 == "same" else L.MaxPooling2D(3, strides=2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 12, 12, 3)).astype(dtype)
    x[0, :4, :4, :] = -1.0  # whole windows of zero ReLU output: pooled 0, no gradient
    y = rng.integers(0, 4, 6)
    model = _model(dtype, layer)
    fast, taken = _grads(model, x, y, True, monkeypatch)
    slow, not_taken = _grads(model, x, y, False, monkeypatch)
    assert sum(taken) == 2 and not any(not_taken)  # both (Conv2D relu, MaxPooling2D) pairs folded
    assert len(fast) == len(slow) == 6
    for a, b in zip(fast, slow):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_not_taken_with_an_activity_regularizer_or_another_activation():
    L = keras.layers
    pool = L.MaxPooling2D()
    pool.last_output = np.zeros(1)
    assert stack_step._relu_before_max_pool(L.Conv2D(2, 3, activation="relu"), pool)
    assert not stack_step._relu_before_max_pool(L.Conv2D(2, 3, activation="tanh"), pool)
    assert not stack_step._relu_before_max_pool(L.Conv2D(2, 3, activation="relu", activity_regularizer="l2"), pool)
    assert not stack_step._relu_before_max_pool(L.Conv2D(2, 3, activation="relu"), L.AveragePooling2D())
    fresh = L.MaxPooling2D()  # never called: no output to mask with
    assert not stack_step._relu_before_max_pool(L.Conv2D(2, 3, activation="relu"), fresh)
