"""One network trained three ways and compared: the compiled float32 path, the NumPy float32 path and
float64 (the reference), and the same layers as a functional graph on the tape. ``check_spec(spec)``
takes a spec as the differential tests draw or write them (``shape``, ``plan``, ``loss``,
``classes``, ``optimizer``, ``seed``)."""

from __future__ import annotations

import contextlib

import numpy as np

from convolab import kernels, keras

# Norm-wise relative error bounds: float32 C vs float32 NumPy (the same arithmetic, other
# summation orders) and float32 vs float64 (float32 rounding of the loss and the backward).
# The second step starts from weights the first step rounded, so its loss is held to a looser bound.
TOL_SAME_DTYPE = {"loss": 1e-6, "fit loss": 2e-5, "grad": 2e-5, "update": 2e-4}
TOL_FLOAT64 = {"loss": 1e-5, "fit loss": 5e-5, "grad": 1e-4, "update": 2e-3}


def _dyadic(rng, shape, scale):
    """Random multiples of 1/scale in [-1, 1): exact in float32 and float64."""
    return rng.integers(-scale, scale, size=shape) / scale


def _build(spec, dtype, graph=False):
    """The network as a Sequential stack (its fused engine), or with ``graph`` as a functional
    keras.Model of the same layers (trained on the tape)."""
    layers = [getattr(keras.layers, name)(dtype=dtype, **kwargs) for name, kwargs in spec["plan"]]
    if graph:
        inputs = keras.Input(shape=spec["shape"][1:], dtype=dtype)
        x = inputs
        for layer in layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    else:
        model = keras.Sequential([keras.layers.InputLayer(shape=spec["shape"][1:])] + layers)
    rng = np.random.default_rng(spec["seed"])
    # Keras's initial weights rounded to multiples of 1/64 (exact in both dtypes), random
    # biases: moderate logits, so the loss gradient is not lost to float32 rounding of a
    # softmax saturated at 1 - 1e-7.
    model.set_weights(
        [np.round(w * 64) / 64 if w.ndim > 1 else _dyadic(rng, w.shape, 16) / 4 for w in model.get_weights()]
    )
    for layer in model.layers:  # a frozen BatchNormalization divides by its moving variance
        if "moving_variance" in layer.params:
            layer.params["moving_variance"][...] = 0.5 + np.abs(_dyadic(rng, layer.params["moving_variance"].shape, 16))
    loss = {
        "sparse": keras.losses.SparseCategoricalCrossentropy(),
        "sparse_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "categorical": keras.losses.CategoricalCrossentropy(),
        "categorical_logits": keras.losses.CategoricalCrossentropy(from_logits=True),
        "mse": keras.losses.MeanSquaredError(),
    }[spec["loss"]]
    name, kwargs = spec["optimizer"]
    model.compile(optimizer=getattr(keras.optimizers, name)(**kwargs), loss=loss, metrics=["acc"])
    return model


def _data(spec, dtype):
    rng = np.random.default_rng(spec["seed"] + 1)
    x = (rng.integers(0, 8, size=spec["shape"]) / 8).astype(dtype)
    labels = rng.integers(0, spec["classes"], spec["shape"][0])
    if spec["loss"].startswith("sparse"):
        return x, labels
    if spec["loss"] == "mse":
        return x, (rng.integers(-4, 4, size=(len(x), spec["classes"])) / 4).astype(dtype)
    return x, np.eye(spec["classes"], dtype=dtype)[labels]


@contextlib.contextmanager
def _numpy_path(on):
    saved = kernels.lib
    if on:
        kernels.lib = None
    try:
        yield
    finally:
        kernels.lib = saved


def _snapshot(model):
    """Weights and optimizer state after the first step, for another run to start its second from."""
    states = [model.optimizer.get_state(w) for w in model.trainable_weights]
    return (
        model.get_weights(),
        [None if s is None else {k: v.copy() for k, v in s.items()} for s in states],
        model.optimizer.iterations,
    )


def _restore(model, snap):
    weights, states, iterations = snap
    model.set_weights([w.astype(m.dtype) for w, m in zip(weights, model.get_weights())])
    for w, state in zip(model.trainable_weights, states):
        if state is not None:
            model.optimizer.set_state(w, state)
    model.optimizer.iterations = iterations


def _run(spec, dtype, numpy_path=False, graph=False, start=None):
    """One ``train_on_batch``, then one ``fit`` step: losses, gradients and weights.

    The fit step starts from ``start`` (the fast run's weights and optimizer state after its
    first step) when given, so that step 2 compares one step's arithmetic, not the drift of
    step 1's rounding through a ReLU kink. A graph trains on the tape, whose caches and
    gradients live on tape nodes: its gradients are seen through the updates (``grads`` None).
    """
    keras.utils.set_random_seed(spec["seed"])
    with _numpy_path(numpy_path):
        model = _build(spec, dtype, graph)
        x, y = _data(spec, dtype)
        w0 = model.get_weights()
        loss1 = model.train_on_batch(x, y)[0]
        grads = None if graph else [g for layer in model.layers if layer.trainable for g in layer.grads.values()]
        w1 = model.get_weights()
        snap = _snapshot(model)
        if start is not None:
            _restore(model, start)
        w1s = model.get_weights()
        hist = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        w2 = model.get_weights()
    return dict(loss1=loss1, grads=grads, loss2=hist.history["loss"][0], step1=(w0, w1), step2=(w1s, w2), snap=snap)


def _update_error(before, after, rbefore, rafter):
    """How far a step's update is from the reference's, beyond float32's own rounding of the
    weights (an update below a weight's last float32 bit cannot be seen at all)."""
    u = after.astype(np.float64) - before
    ur = rafter - rbefore
    floor = 8 * np.finfo(np.float32).eps * max(np.max(np.abs(rafter), initial=0.0), 1e-3)
    return float(np.max(np.abs(u - ur), initial=0.0)), float(np.max(np.abs(ur), initial=0.0)), floor


def _compare(fast, ref, tol, what, truth=None):
    """``fast`` against ``ref`` within ``tol``. With ``truth`` (the float64 run), a gradient or
    update that misses ``ref`` passes only if it lies closer to the truth than ``ref`` does
    (within a factor 2): a quantity that is zero in exact arithmetic (the bias of a layer
    before a BatchNormalization) is float32 round-off in both paths, and the kernels, which sum
    in double, round less than NumPy's float32 sums."""
    assert abs(fast["loss1"] - ref["loss1"]) <= tol["loss"] * max(1.0, abs(ref["loss1"])), (
        what,
        "loss",
        fast["loss1"],
        ref["loss1"],
    )
    assert abs(fast["loss2"] - ref["loss2"]) <= tol["fit loss"] * max(1.0, abs(ref["loss2"])), (
        what,
        "fit loss",
        fast["loss2"],
        ref["loss2"],
    )
    grads, rgrads = fast["grads"], ref["grads"]
    if grads is not None and rgrads is not None:
        assert len(grads) == len(rgrads)
        # norm-wise, against the largest gradient entry of the model: a bias gradient that is a
        # sum of cancelling terms is small, and its float32 rounding is that of the terms
        scale = max(np.max(np.abs(r), initial=0.0) for r in rgrads) if rgrads else 0.0
        for i, (g, r) in enumerate(zip(grads, rgrads)):
            err = float(np.max(np.abs(g.astype(np.float64) - r), initial=0.0))
            own = float(np.max(np.abs(r), initial=0.0))
            if err > tol["grad"] * max(own, 0.05 * scale) and truth is not None:
                t = truth["grads"][i]
                err = _closer(g, r, t)
            assert err <= tol["grad"] * max(own, 0.05 * scale), (what, f"gradient {i}", err, own)
    for step in ("step1", "step2"):
        (b, a), (rb, ra) = fast[step], ref[step]
        for i in range(len(b)):
            err, scale, floor = _update_error(b[i], a[i], rb[i], ra[i])
            if err > tol["update"] * scale + floor and truth is not None:
                tb, ta = truth[step]
                err = _closer(a[i] - b[i].astype(np.float64), ra[i] - rb[i], ta[i] - tb[i])
            assert err <= tol["update"] * scale + floor, (what, f"{step} update of weight {i}", err, scale)


def _closer(got, ref, truth):
    """0 when ``got`` is at most twice as far from ``truth`` as ``ref`` is, else its distance from ``ref``."""
    d_got = float(np.max(np.abs(np.asarray(got, np.float64) - truth), initial=0.0))
    d_ref = float(np.max(np.abs(np.asarray(ref, np.float64) - truth), initial=0.0))
    return 0.0 if d_got <= 2 * d_ref else float(np.max(np.abs(np.asarray(got, np.float64) - ref), initial=0.0))


def check_spec(spec):
    fast = _run(spec, "float32")
    start = fast["snap"]
    truth = _run(spec, "float64", start=start)
    _compare(
        fast, _run(spec, "float32", numpy_path=True, start=start), TOL_SAME_DTYPE, "float32 C vs float32 NumPy", truth
    )
    _compare(fast, truth, TOL_FLOAT64, "float32 C vs float64 NumPy")
    # the tape engine (a functional graph of the same layers, C kernels on per-call layer copies)
    # against the stack engine
    _compare(_run(spec, "float32", graph=True, start=start), fast, TOL_FLOAT64, "graph on the tape vs Sequential")
