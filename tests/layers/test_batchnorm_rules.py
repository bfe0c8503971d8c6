"""BatchNormalization's beta/gamma regularizers and constraints (Keras's arguments): the penalty in the
training loss against hand-made weights, a central-difference gradient check of the whole regularized
loss in float64, constraints after steps on both training paths, and every way of saving."""

import json
import zipfile

import numpy as np
import pytest

from convolab import keras
from convolab.saving import schema
from convolab.saving.errors import ModelFileError

L = keras.layers
R = keras.regularizers
C = keras.constraints
GAMMA = np.array([1.5, -0.5, 0.25])
BETA = np.array([0.2, -0.4, 1.0])


@pytest.fixture(autouse=True)
def float64():
    keras.backend.set_floatx("float64")
    keras.utils.set_random_seed(0)
    yield
    keras.backend.set_floatx("float32")


def _data(n=8, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4, 4, 2)), rng.integers(0, 3, size=n)


def _layers(**rules):
    return [
        L.Conv2D(3, 3, padding="same"),
        L.BatchNormalization(**rules),
        L.ReLU(),
        L.GlobalAveragePooling2D(),
        L.Dense(3, activation="softmax"),
    ]


def _sequential(layers):
    return keras.Sequential([keras.Input((4, 4, 2))] + layers)


def _functional(layers):
    inp = keras.Input((4, 4, 2))
    x = inp
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


def _compiled(model, lr=0.1):
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="sparse_categorical_crossentropy")
    return model


def _bn(model):
    return next(l for l in model.layers if isinstance(l, L.BatchNormalization))


RULES = dict(gamma_regularizer=R.L2(0.3), beta_regularizer=R.L1L2(l1=0.05, l2=0.2))


@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_penalty_joins_the_loss_exactly(build):
    x, y = _data()
    reg, plain = _compiled(build(_layers(**RULES))), _compiled(build(_layers()))
    _bn(reg).set_weights([GAMMA, BETA, np.zeros(3), np.ones(3)])
    plain.set_weights(reg.get_weights())
    penalty = 0.3 * (1.5**2 + 0.5**2 + 0.25**2) + 0.05 * (0.2 + 0.4 + 1.0) + 0.2 * (0.04 + 0.16 + 1.0)
    assert _bn(reg).weight_penalty() == pytest.approx(penalty, rel=1e-14)
    assert reg.train_on_batch(x, y) == pytest.approx(plain.train_on_batch(x, y) + penalty, rel=1e-12)
    # the step: SGD adds lr * d(penalty) to the plain update
    np.testing.assert_allclose(_bn(reg).params["gamma"], _bn(plain).params["gamma"] - 0.1 * 0.6 * GAMMA, rtol=1e-12)
    np.testing.assert_allclose(
        _bn(reg).params["beta"], _bn(plain).params["beta"] - 0.1 * (0.05 * np.sign(BETA) + 0.4 * BETA), rtol=1e-12
    )


def test_frozen_layer_adds_no_penalty():
    """Keras counts the penalties of trainable weights only; a frozen BatchNormalization has none."""
    x, y = _data()
    reg, plain = _compiled(_sequential(_layers(trainable=False, **RULES))), _compiled(_sequential(_layers()))
    _bn(plain).trainable = False
    plain.set_weights(reg.get_weights())
    assert reg.train_on_batch(x, y) == pytest.approx(plain.train_on_batch(x, y), rel=1e-12)


@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_gradient_of_the_regularized_loss(build):
    """Central differences of the training loss (batch statistics, penalty included) against one
    SGD(learning_rate=1) step: ``w_before - w_after`` is the gradient the model computed."""
    x, y = _data()
    model = _compiled(build(_layers(**RULES)), lr=1.0)
    probe = _compiled(build(_layers(**RULES)))  # evaluates the training loss; its step is undone each time
    rng = np.random.default_rng(3)
    _bn(model).set_weights([rng.normal(size=3), rng.normal(size=3), np.zeros(3), np.ones(3)])
    start = model.get_weights()
    before = {k: _bn(model).params[k].copy() for k in ("gamma", "beta")}
    model.train_on_batch(x, y)
    h = 1e-6
    for key, w0 in before.items():
        analytic = w0 - _bn(model).params[key]
        numeric = np.empty_like(w0)
        for i in range(w0.size):
            losses = []
            for step in (h, -h):
                probe.set_weights(start)
                _bn(probe).params[key][i] += step
                losses.append(probe.train_on_batch(x, y))
            numeric[i] = (losses[0] - losses[1]) / (2 * h)
        rel = np.abs(analytic - numeric).max() / max(np.abs(numeric).max(), 1e-12)
        assert rel < 1e-7, (key, analytic, numeric)


@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_constraints_hold_after_steps(build):
    x, y = _data(32)
    model = _compiled(build(_layers(gamma_constraint=C.MaxNorm(0.5), beta_constraint="non_neg")), lr=1.0)
    _bn(model).set_weights([GAMMA, BETA, np.zeros(3), np.ones(3)])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    bn = _bn(model)
    assert np.linalg.norm(bn.params["gamma"]) <= 0.5 + 1e-9
    assert (bn.params["beta"] >= 0).all() and (bn.params["beta"] == 0).any()
    # the moving statistics are not the optimizer's, so no constraint reaches them
    assert (bn.params["moving_mean"] < 0).any()


def test_config_round_trip_and_defaults():
    layer = L.BatchNormalization(name="bn", gamma_regularizer="l2", beta_constraint=C.MinMaxNorm(0.5, 2.0))
    cfg = layer.get_config()
    assert cfg["gamma_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}
    assert cfg["beta_constraint"]["class_name"] == "MinMaxNorm"
    assert "beta_regularizer" not in cfg and "gamma_constraint" not in cfg
    assert L.BatchNormalization.from_config(cfg).get_config() == cfg
    schema.LAYER_SCHEMAS["BatchNormalization"](json.loads(json.dumps(cfg)), "where")
    with pytest.raises(ValueError, match=r"BatchNormalization 'b'.*gamma_regularizer.*'l3'"):
        L.BatchNormalization(name="b", gamma_regularizer="l3")
    with pytest.raises(ValueError, match=r"BatchNormalization 'b'.*beta_constraint"):
        L.BatchNormalization(name="b", beta_constraint="positive")


def _rules_model(build):
    return _compiled(
        build(
            _layers(
                gamma_regularizer=R.L2(0.3),
                beta_regularizer="l1",
                gamma_constraint=C.MaxNorm(0.9),
                beta_constraint=C.NonNeg(),
            )
        )
    )


@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
@pytest.mark.parametrize("suffix", [".convolab", ".keras"])
def test_files_keep_the_rules(tmp_path, build, suffix):
    x, y = _data()
    model = _rules_model(build)
    model.train_on_batch(x, y)
    path = tmp_path / f"m{suffix}"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert _bn(loaded).get_config() == _bn(model).get_config()
    if suffix == ".keras":
        with zipfile.ZipFile(path) as zf:
            layers = json.loads(zf.read("config.json"))["config"]["layers"]
        bn = next(e for e in layers if e["class_name"] == "BatchNormalization")["config"]
        assert bn["gamma_regularizer"] == {
            "module": "keras.regularizers",
            "class_name": "L2",
            "config": {"l2": 0.3},
            "registered_name": None,
        }
        assert bn["beta_constraint"] == {
            "module": "keras.constraints",
            "class_name": "NonNeg",
            "config": {},
            "registered_name": None,
        }
    else:
        assert loaded.train_on_batch(x, y) == pytest.approx(model.train_on_batch(x, y), rel=1e-12)
        for a, b in zip(loaded.get_weights(), model.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_schema_refuses_a_bad_rule():
    cfg = _bn(_rules_model(_sequential)).get_config()
    cfg["gamma_regularizer"] = {"class_name": "L2", "config": {"l2": -1.0}}
    with pytest.raises(ModelFileError, match="gamma_regularizer"):
        schema.LAYER_SCHEMAS["BatchNormalization"](cfg, "where")
