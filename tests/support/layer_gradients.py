"""Gradient checks through a layer object: ``layer.backward`` against central differences in float64,
for ``dx`` and every weight's gradient (the layer tests of every folder share it)."""

from __future__ import annotations

import numpy as np

from support.gradcheck import numerical_gradient, rel_error

TOL = 1e-6


def check_layer_gradients(layer, x, rng, tol=TOL):
    """Check ``dx`` and every ``grads[key]`` of a built float64 layer against central differences.

    The scalar is ``sum(layer.call(x, training=True) * dy)`` for a random ``dy``.
    """
    assert x.dtype == np.float64
    for key, p in layer.params.items():
        assert p.dtype == np.float64, f"{key} is {p.dtype}; build the layer with dtype='float64'"
    layer.need_input_grad = True
    y = layer.call(x, training=True)
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx = layer.backward(dy)
    # Backward never writes into the gradient it was given.
    np.testing.assert_array_equal(dy, dy_before)
    assert dx is not None and dx.shape == x.shape
    grads = {k: np.array(g, copy=True) for k, g in layer.grads.items()}
    assert set(grads) == set(layer.params), f"grads keys {sorted(grads)} != params keys {sorted(layer.params)}"

    def f(_):
        return layer.call(x, training=True)

    num_dx = numerical_gradient(f, x, dy)
    err = rel_error(dx, num_dx)
    assert err < tol, f"dx: relative error {err:.2e}"
    for key in layer.params:
        num = numerical_gradient(f, layer.params[key], dy)
        assert grads[key].shape == layer.params[key].shape
        err = rel_error(grads[key], num)
        assert err < tol, f"grads[{key!r}]: relative error {err:.2e}"
    # A gradient that is identically zero would pass a relative check against another zero.
    assert np.abs(num_dx).max() > 0
