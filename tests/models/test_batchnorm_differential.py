"""BatchNormalization on the three engines: Sequential's fast path, a functional graph on the
tape (``run_eagerly=True``: each layer call recorded), and float64 (the reference), trained from the same weights on the same batches.

Not in test_differential.py's TABLE: that test relies on dyadic inputs making every forward
value exact in float32 and float64, so that a ReLU or max-pool tie falls the same way in both.
BatchNormalization divides by ``sqrt(var + epsilon)``, which no dyadic input keeps exact, and a
ReLU right after it could then flip at a value within rounding of zero. So this network keeps
smooth activations (tanh) after each BatchNormalization and compares norm-wise relative errors:

- fast path vs tape, same dtype: the same layer ``call``/``backward`` functions run in the same
  order and each weight gets one gradient contribution, so they agree bitwise (measured: 0); the
  bound allows a few float32 ulps should the tape ever sum in another order (1e-6);
- float32 vs float64: normalising divides by a standard deviation computed from a float32 sum
  (relative error about sqrt(m) * 6e-8 for m values per channel, here m <= 256: ~1e-6), and the
  backward subtracts the channel means of ``dy`` and ``dy * xhat`` (cancellation). Measured over
  three steps: loss 6e-8, weights and moving statistics at most 9e-7 (a beta). Bounds about ten
  times that: loss 1e-6, weights and moving statistics 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

from convolab.models.plan import compile_plan
from convolab import keras

from support.gradcheck import rel_error

L = keras.layers


def _layers(dtype):
    return [
        # no bias before a BatchNormalization (the usual practice): its gradient is zero in exact
        # arithmetic and only rounding noise in float32, which no relative bound can compare
        L.Conv2D(3, 3, use_bias=False, dtype=dtype),
        L.BatchNormalization(momentum=0.8, dtype=dtype),
        L.Activation("tanh", dtype=dtype),
        L.Flatten(dtype=dtype),
        L.Dense(5, use_bias=False, dtype=dtype),
        L.BatchNormalization(epsilon=1e-2, dtype=dtype),
        L.Activation("tanh", dtype=dtype),
        L.Dense(3, activation="softmax", dtype=dtype),
    ]


def _model(dtype, graph, weights):
    layers = _layers(dtype)
    inp = keras.Input((6, 6, 2), dtype=dtype)
    if graph:
        h = inp
        for layer in layers:
            h = layer(h)
        model = keras.Model(inp, h)
    else:
        model = keras.Sequential([inp] + layers)
    model.set_weights([w.astype(dtype) for w in weights])
    model.compile(
        keras.optimizers.SGD(learning_rate=0.1, momentum=0.9), "sparse_categorical_crossentropy", run_eagerly=graph
    )
    return model


def _train(dtype, graph, weights, batches):
    model = _model(dtype, graph, weights)
    assert compile_plan(model).stack != graph
    losses = [float(model.train_on_batch(x.astype(dtype), y)) for x, y in batches]
    return np.array(losses), model.get_weights()


@pytest.fixture(scope="module")
def runs():
    keras.utils.set_random_seed(0)
    weights = keras.Sequential([keras.Input((6, 6, 2))] + _layers("float64")).get_weights()
    rng = np.random.default_rng(1)
    batches = [(rng.normal(1.0, 2.0, (n, 6, 6, 2)), rng.integers(0, 3, n)) for n in (8, 16, 5)]
    return {
        (dtype, graph): _train(dtype, graph, weights, batches)
        for dtype in ("float32", "float64")
        for graph in (False, True)
    }


def _names():
    model = keras.Sequential([keras.Input((6, 6, 2))] + _layers("float64"))
    return [f"{type(layer).__name__}:{key}" for layer in model.layers for key in layer.params]


def _compare(a, b, loss_tol, moving_tol, weight_tol):
    """Norm-wise relative errors of the losses of every step and of every weight afterwards."""
    (la, wa), (lb, wb) = a, b
    assert rel_error(la, lb) < loss_tol, (la, lb)
    for name, x, y in zip(_names(), wa, wb):
        tol = moving_tol if "moving" in name else weight_tol
        assert rel_error(x, y) < tol, (name, rel_error(x, y))


def test_fast_path_equals_the_tape(runs):
    _compare(runs["float32", False], runs["float32", True], 1e-6, 1e-6, 1e-6)
    _compare(runs["float64", False], runs["float64", True], 1e-13, 1e-13, 1e-12)


@pytest.mark.parametrize("graph", [False, True], ids=["fast-path", "tape"])
def test_float32_follows_float64(runs, graph):
    _compare(runs["float32", graph], runs["float64", False], 1e-6, 1e-5, 1e-5)


def test_moving_statistics_moved_and_weights_trained(runs):
    _, before = runs["float64", False]
    names = _names()
    moving = [w for n, w in zip(names, before) if n.endswith("moving_mean")]
    assert all(np.all(m != 0) for m in moving)
