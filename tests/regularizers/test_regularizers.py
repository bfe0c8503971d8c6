"""Weight/activity regularizers and weight constraints: penalties against hand-computed values,
one SGD step against a hand-computed update (float64), Sequential's fast path against the tape
(the same layers as a functional model), constraints after steps, save/load, errors."""

import numpy as np
import pytest

from convolab.models.plan import compile_plan
from convolab import keras
from convolab.saving import schema
from convolab.saving.errors import ModelFileError

L = keras.layers
R = keras.regularizers
C = keras.constraints
LR = 0.1


@pytest.fixture(autouse=True)
def float64():
    keras.backend.set_floatx("float64")
    keras.utils.set_random_seed(0)
    yield
    keras.backend.set_floatx("float32")


def _data(shape=(6, 5), classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), rng.integers(0, classes, size=shape[0])


def _dense_layers(**rules):
    return [L.Dense(4, activation="relu", **rules), L.Dense(3, activation="softmax")]


def _sequential(layers, input_shape):
    return keras.Sequential([keras.Input(input_shape)] + layers)


def _functional(layers, input_shape):
    """The same chain as a functional model, run layer by layer on the tape (``run_eagerly``,
    set by :func:`_compiled`): the reference the stack engine's rules are checked against."""
    inp = keras.Input(input_shape)
    x = inp
    for layer in layers:
        x = layer(x)
    model = keras.Model(inp, x)
    model._tape_reference = True
    return model


def _compiled(model):
    eager = getattr(model, "_tape_reference", False)
    model.compile(optimizer=keras.optimizers.SGD(LR), loss="sparse_categorical_crossentropy", run_eagerly=eager)
    return model


def _twins(make_layers, input_shape, build):
    """A regularized model and the same architecture without rules, holding the same weights."""
    reg = _compiled(build(make_layers(True), input_shape))
    plain = _compiled(build(make_layers(False), input_shape))
    plain.set_weights(reg.get_weights())
    return reg, plain


# -- the regularizers and constraints on their own ------------------------------------------------
@pytest.mark.parametrize(
    "reg, value, grad",
    [
        (R.L1(0.3), lambda w: 0.3 * np.abs(w).sum(), lambda w: 0.3 * np.sign(w)),
        (R.L2(0.2), lambda w: 0.2 * (w**2).sum(), lambda w: 0.4 * w),
        (
            R.L1L2(l1=0.1, l2=0.5),
            lambda w: 0.1 * np.abs(w).sum() + 0.5 * (w**2).sum(),
            lambda w: 0.1 * np.sign(w) + 1.0 * w,
        ),
    ],
)
def test_penalty_and_gradient_by_hand(reg, value, grad):
    w = np.array([[1.5, -2.0], [0.25, -0.5]])
    assert reg(w) == pytest.approx(value(w))
    np.testing.assert_allclose(reg.gradient(w), grad(w))


def test_string_names_take_keras_defaults():
    assert R.get("l1").get_config() == {"l1": 0.01}
    assert R.get("l2").get_config() == {"l2": 0.01}
    assert R.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert R.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}  # the class's own defaults are Keras's zeros
    assert C.get("max_norm").get_config() == {"max_value": 2.0, "axis": 0}
    assert isinstance(C.get("non_neg"), C.NonNeg)


def test_constraint_formulas():
    w = np.array([[3.0, 0.1, -1.0], [4.0, 0.2, 2.0]])  # column norms 5, ~0.224, ~2.236
    norms = np.sqrt((w**2).sum(axis=0, keepdims=True))
    eps = keras.backend.epsilon()
    np.testing.assert_allclose(C.MaxNorm(2)(w), w * np.clip(norms, 0, 2) / (eps + norms))
    np.testing.assert_allclose(C.NonNeg()(w), np.where(w >= 0, w, 0))
    np.testing.assert_allclose(C.UnitNorm()(w), w / (eps + norms))
    mm = C.MinMaxNorm(min_value=0.5, max_value=1.0, rate=0.5)(w)
    np.testing.assert_allclose(mm, w * (0.5 * np.clip(norms, 0.5, 1.0) + 0.5 * norms) / (eps + norms))
    np.testing.assert_allclose(np.linalg.norm(C.MaxNorm(2)(w), axis=0), [2, norms[0, 1], 2], rtol=1e-6)


# -- loss and one SGD step, both training paths ------------------------------------------------------
@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_weight_penalty_joins_loss_and_gradient(build):
    x, y = _data()
    rules = dict(kernel_regularizer=R.L1L2(l1=0.05, l2=0.2), bias_regularizer=R.L2(0.3))
    reg, plain = _twins(lambda on: _dense_layers(**(rules if on else {})), (5,), build)
    reg.layers[-2 if build is _functional else 0].set_weights(
        [w + 0.1 for w in reg.layers[-2 if build is _functional else 0].get_weights()]
    )  # a nonzero bias
    plain.set_weights(reg.get_weights())
    dense = reg.layers[-2] if build is _functional else reg.layers[0]
    k, b = dense.params["kernel"].copy(), dense.params["bias"].copy()
    penalty = 0.05 * np.abs(k).sum() + 0.2 * (k**2).sum() + 0.3 * (b**2).sum()

    loss_plain = plain.train_on_batch(x, y)
    loss_reg = reg.train_on_batch(x, y)
    assert loss_reg == pytest.approx(loss_plain + penalty, rel=1e-12)
    plain_dense = plain.layers[-2] if build is _functional else plain.layers[0]
    # SGD: w - lr * (g + g_penalty) = (w - lr * g) - lr * g_penalty
    np.testing.assert_allclose(
        dense.params["kernel"], plain_dense.params["kernel"] - LR * (0.05 * np.sign(k) + 0.4 * k), rtol=1e-12
    )
    np.testing.assert_allclose(dense.params["bias"], plain_dense.params["bias"] - LR * 0.6 * b, rtol=1e-12)


def test_both_paths_agree_over_steps():
    x, y = _data((8, 6, 6, 2))

    def layers():
        return [
            L.Conv2D(
                3,
                3,
                activation="relu",
                kernel_regularizer="l2",
                bias_regularizer="l1",
                activity_regularizer=R.L2(0.05),
                kernel_constraint=C.MaxNorm(0.6, axis=[0, 1, 2]),
            ),
            L.DepthwiseConv2D(2, depthwise_regularizer="l1", depthwise_constraint="non_neg"),
            L.SeparableConv2D(2, 2, pointwise_regularizer=R.L2(0.1), depthwise_constraint=C.UnitNorm(axis=[0, 1])),
            L.Flatten(),
            L.Dense(3, activation="softmax", kernel_regularizer="l1_l2", kernel_constraint=C.MinMaxNorm(0.1, 0.5)),
        ]

    seq = _compiled(_sequential(layers(), (6, 6, 2)))
    fun = _compiled(_functional(layers(), (6, 6, 2)))
    fun.set_weights(seq.get_weights())
    assert compile_plan(seq).stack and not compile_plan(fun).stack
    for _ in range(3):
        assert seq.train_on_batch(x, y) == pytest.approx(fun.train_on_batch(x, y), rel=1e-10)
    for a, b in zip(seq.get_weights(), fun.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert seq.evaluate(x, y, verbose=0) == pytest.approx(fun.evaluate(x, y, verbose=0), rel=1e-10)


@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_activity_penalty_is_per_sample_mean_of_output(build):
    x, y = _data()
    reg, plain = _twins(lambda on: _dense_layers(activity_regularizer=R.L1(0.2) if on else None), (5,), build)
    hidden = plain.layers[-2] if build is _functional else plain.layers[0]
    h = np.maximum(x @ hidden.params["kernel"] + hidden.params["bias"], 0)
    assert reg.train_on_batch(x, y) == pytest.approx(
        plain.train_on_batch(x, y) + 0.2 * np.abs(h).sum() / len(x), rel=1e-12
    )


def test_activity_penalty_on_a_softmax_output_agrees_on_both_paths():
    x, y = _data()

    def layers():
        return [L.Dense(4, activation="relu"), L.Dense(3, activation="softmax", activity_regularizer=R.L2(0.5))]

    seq, fun = _compiled(_sequential(layers(), (5,))), _compiled(_functional(layers(), (5,)))
    fun.set_weights(seq.get_weights())
    for _ in range(2):
        assert seq.train_on_batch(x, y) == pytest.approx(fun.train_on_batch(x, y), rel=1e-10)
    for a, b in zip(seq.get_weights(), fun.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_evaluate_includes_weight_penalty():
    x, y = _data()
    reg, plain = _twins(lambda on: _dense_layers(kernel_regularizer=R.L2(0.1) if on else None), (5,), _sequential)
    k = reg.layers[0].params["kernel"]
    assert reg.evaluate(x, y, verbose=0) == pytest.approx(plain.evaluate(x, y, verbose=0) + 0.1 * (k**2).sum())


# -- constraints after steps -----------------------------------------------------------------------
@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_constraints_hold_after_fit(build):
    x, y = _data((32, 5))
    model = _compiled(
        build(
            [
                L.Dense(8, activation="relu", kernel_constraint=C.MaxNorm(0.3), bias_constraint="non_neg"),
                L.Dense(3, activation="softmax", kernel_constraint=C.UnitNorm()),
            ],
            (5,),
        )
    )
    model.optimizer.learning_rate = 1.0
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    dense = [l for l in model.layers if isinstance(l, L.Dense)]
    assert np.linalg.norm(dense[0].params["kernel"], axis=0).max() <= 0.3 + 1e-9
    assert (dense[0].params["bias"] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(dense[1].params["kernel"], axis=0), 1.0, rtol=1e-6)


def test_add_weight_regularizer_and_constraint():
    class Scale(L.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1],), initializer="ones", regularizer=R.L2(0.5), constraint=C.MaxNorm(1.0)
            )

        def call(self, x):
            return keras.ops.multiply(x, self.w)

    x, y = _data()
    inp = keras.Input((5,))
    out = L.Dense(3, activation="softmax")(Scale()(inp))
    model = _compiled(keras.Model(inp, out))
    scale = model.layers[1]
    w0 = scale.params["variable"].copy()
    plain_loss = keras.losses.SparseCategoricalCrossentropy()(y, model.predict(x, verbose=0))
    assert model.train_on_batch(x, y) == pytest.approx(float(plain_loss) + 0.5 * (w0**2).sum(), rel=1e-10)
    assert np.linalg.norm(scale.params["variable"]) <= 1.0 + 1e-9


# -- saving ------------------------------------------------------------------------------------------
def test_save_and_load_keep_rules(tmp_path):
    x, y = _data((6, 6, 6, 2))
    model = _compiled(
        _sequential(
            [
                L.Conv2D(
                    2, 3, kernel_regularizer=R.L1L2(l1=0.01, l2=0.02), kernel_constraint=C.MaxNorm(1.5, axis=[0, 1, 2])
                ),
                L.SeparableConv2D(2, 2, pointwise_regularizer="l2", pointwise_constraint="unit_norm"),
                L.Flatten(),
                L.Dense(
                    3,
                    activation="softmax",
                    bias_regularizer="l1",
                    bias_constraint=C.NonNeg(),
                    activity_regularizer=R.L2(0.3),
                ),
            ],
            (6, 6, 2),
        )
    )
    model.train_on_batch(x, y)
    path = tmp_path / "m.convolab"
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(model.layers, loaded.layers):
        assert a.get_config() == b.get_config()
    assert loaded.train_on_batch(x, y) == pytest.approx(model.train_on_batch(x, y), rel=1e-10)
    assert loaded.layers[0].get_config()["kernel_constraint"] == {
        "class_name": "MaxNorm",
        "config": {"max_value": 1.5, "axis": [0, 1, 2]},
    }


@pytest.mark.parametrize(
    "key, value",
    [
        ("kernel_regularizer", {"class_name": "L3", "config": {}}),
        ("kernel_regularizer", {"class_name": "L2", "config": {"l2": -1.0}}),
        ("kernel_regularizer", {"class_name": "L2", "config": {"l2": 0.1, "l1": 0.1}}),
        ("kernel_regularizer", "l2"),
        ("bias_constraint", {"class_name": "MaxNorm", "config": {"max_value": 2}}),
        ("bias_constraint", {"class_name": "Lambda", "config": {}}),
        ("depthwise_regularizer", {"class_name": "L2", "config": {"l2": 0.1}}),
    ],
)
def test_schema_refuses_bad_rules(key, value):
    cfg = {
        "name": "d",
        "trainable": True,
        "dtype": "float64",
        "units": 3,
        "use_bias": True,
        "activation": "linear",
        key: value,
    }
    with pytest.raises(ModelFileError):
        schema.LAYER_SCHEMAS["Dense"](cfg, "model.layers[0].config")


def test_schema_accepts_what_layers_write():
    layer = L.Dense(3, kernel_regularizer="l1_l2", bias_constraint=C.MinMaxNorm(0.5, 2.0, rate=0.5, axis=-1))
    schema.LAYER_SCHEMAS["Dense"](layer.get_config(), "where")


# -- errors ------------------------------------------------------------------------------------------
def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"Dense 'd'.*kernel_regularizer.*'l3'.*'l1', 'l2', 'l1_l2'"):
        L.Dense(3, name="d", kernel_regularizer="l3")
    with pytest.raises(ValueError, match=r"bias_constraint.*'nonnegative'.*'max_norm'"):
        L.Conv2D(2, 3, bias_constraint="nonnegative")
    with pytest.raises(ValueError, match=r"depthwise_regularizer"):
        L.DepthwiseConv2D(3, depthwise_regularizer=42)
    with pytest.raises(ValueError, match=r"l2.*>= 0.*-1"):
        R.L2(-1)
    with pytest.raises(ValueError, match=r"min_value <= max_value"):
        C.MinMaxNorm(2.0, 1.0)
    with pytest.raises(ValueError, match=r"add_weight.*regularizer"):
        L.Layer(name="u").add_weight(shape=(2,), regularizer="l5")


def test_shards_add_the_weight_penalty_once():
    from convolab.models.runner import Runner

    x, y = _data((16, 5))
    reg, plain = _twins(
        lambda on: _dense_layers(
            kernel_regularizer=R.L2(0.2) if on else None, kernel_constraint=C.MaxNorm(0.5) if on else None
        ),
        (5,),
        _sequential,
    )
    twin = _compiled(_sequential(_dense_layers(kernel_regularizer=R.L2(0.2), kernel_constraint=C.MaxNorm(0.5)), (5,)))
    twin.set_weights(reg.get_weights())
    runner = Runner(reg, shards=2)
    try:
        _, loss, _ = runner.train_step(x, y)
    finally:
        runner.close()
    assert loss == pytest.approx(twin.train_on_batch(x, y), rel=1e-10)
    for a, b in zip(reg.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    assert np.linalg.norm(reg.layers[0].params["kernel"], axis=0).max() <= 0.5 + 1e-9
