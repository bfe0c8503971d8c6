"""Saving and loading models compiled with every optimizer and learning-rate schedule.

A loaded model must carry the same optimizer config, slots, ``iterations`` and optimizer-wide
state (Nadam's ``u_product``), so that training continues bitwise; a file whose optimizer or
schedule settings are wrong is refused with ModelFileError.
"""

import json
import struct

import numpy as np
import pytest

import convolab
from convolab import keras
from convolab import random as crandom
from convolab.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, Nadam, RMSprop
from convolab.optimizers.schedules import CosineDecay, ExponentialDecay, LearningRateSchedule, PiecewiseConstantDecay
from convolab.saving import ModelFileError, load_model, schema
from convolab.saving._common import OPTIMIZER_CLASSES, SCHEDULE_CLASSES


def small_model(optimizer, dtype="float32"):
    L = keras.layers
    model = keras.models.Sequential(
        [
            L.Conv2D(3, 3, padding="same", activation="relu", input_shape=(6, 6, 2), dtype=dtype),
            L.MaxPooling2D(2, dtype=dtype),
            L.Flatten(dtype=dtype),
            L.Dense(4, dtype=dtype),
        ]
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["acc"])
    return model


def data(n=24):
    rng = np.random.default_rng(0)
    return rng.random((n, 6, 6, 2), dtype=np.float32), rng.integers(0, 4, n)


OPTIMIZERS = {
    "adadelta": lambda: Adadelta(learning_rate=1.0),
    "adagrad": lambda: Adagrad(learning_rate=0.05, initial_accumulator_value=0.2),
    "nadam": lambda: Nadam(learning_rate=0.01),
    "adamw": lambda: AdamW(learning_rate=0.01, weight_decay=0.1, amsgrad=True),
    "adamw-c": lambda: AdamW(learning_rate=0.01),
    "sgd-decay": lambda: SGD(0.05, momentum=0.9, weight_decay=0.01),
    "adam-exp": lambda: Adam(learning_rate=ExponentialDecay(0.01, 4, 0.5, staircase=True)),
    "rmsprop-piecewise": lambda: RMSprop(learning_rate=PiecewiseConstantDecay([3, 7], [0.01, 0.005, 0.001])),
    "nadam-cosine": lambda: Nadam(learning_rate=CosineDecay(0.0, 10, alpha=0.1, warmup_target=0.02, warmup_steps=4)),
    "adagrad-cosine": lambda: Adagrad(learning_rate=CosineDecay(0.1, 20), weight_decay=0.05),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", list(OPTIMIZERS.values()), ids=list(OPTIMIZERS))
def test_round_trip_and_training_continues_bitwise(tmp_path, make, dtype):
    x, y = data()
    x = x.astype(dtype)
    convolab.set_random_seed(1)
    model = small_model(make(), dtype)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "m.convolab"
    model.save(path)
    loaded = load_model(path)
    opt, back = model.optimizer, loaded.optimizer
    assert type(back) is type(opt)
    assert back.get_config() == opt.get_config()
    assert back.iterations == opt.iterations == 6
    assert back.learning_rate == opt.learning_rate
    assert back.get_global_state() == opt.get_global_state()
    assert len(back.state) == len(opt.state)
    for s1, s2 in zip(opt.state, back.state):
        assert s1.keys() == s2.keys()
        for k in s1:
            assert s1[k].dtype == s2[k].dtype and np.array_equal(s1[k], s2[k])
    crandom.set_random_seed(5)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    crandom.set_random_seed(5)
    loaded.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert loaded.optimizer.learning_rate == model.optimizer.learning_rate
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)
    model.save(tmp_path / "a.convolab")
    loaded.save(tmp_path / "b.convolab")
    assert (tmp_path / "a.convolab").read_bytes() == (tmp_path / "b.convolab").read_bytes()


def test_nadam_file_holds_u_product(tmp_path):
    x, y = data()
    model = small_model(Nadam())
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.convolab")
    doc = _doc(tmp_path / "m.convolab")
    assert doc["training_state"]["optimizer_globals"] == {"u_product": model.optimizer.get_global_state()["u_product"]}
    assert doc["compile"]["optimizer"]["class_name"] == "Nadam"
    sgd = small_model("sgd")
    sgd.fit(x, y, epochs=1, batch_size=8, verbose=0)
    sgd.save(tmp_path / "s.convolab")
    assert "optimizer_globals" not in _doc(tmp_path / "s.convolab")["training_state"]  # older files unchanged


def test_allow_lists_match_the_schema():
    assert set(OPTIMIZER_CLASSES) == set(schema.OPTIMIZER_SCHEMAS)
    assert set(SCHEDULE_CLASSES) == set(schema.SCHEDULE_SCHEMAS)


class MySchedule(LearningRateSchedule):
    def __call__(self, step):
        return 0.01

    def get_config(self):
        return {}


class MyExponentialDecay(ExponentialDecay):
    pass


@pytest.mark.parametrize(
    "schedule,name", [(MySchedule(), "MySchedule"), (MyExponentialDecay(0.1, 10, 0.5), "MyExponentialDecay")]
)
def test_custom_schedule_trains_but_is_not_saved(tmp_path, schedule, name):
    x, y = data()
    model = small_model(Adam(learning_rate=schedule))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    with pytest.raises(
        ValueError,
        match=rf"save_model: the learning-rate schedule {name} cannot be saved; convolab "
        r"files hold only the built-in ones: ExponentialDecay",
    ):
        model.save(tmp_path / "m.convolab")
    assert not (tmp_path / "m.convolab").exists()


# -- crafted files -----------------------------------------------------------------------------


def _split(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _doc(path):
    return json.loads(_split(path)[0]["__metadata__"]["convolab"])


def _saved(tmp_path, optimizer):
    x, y = data()
    model = small_model(optimizer)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "m.convolab"
    model.save(path)
    return path


def _rewrite(path, edit):
    header, payload = _split(path)
    doc = json.loads(header["__metadata__"]["convolab"])
    edit(doc)
    text = json.dumps(dict(header, __metadata__={"convolab": json.dumps(doc)})).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + payload)


def _opt(d):
    return d["compile"]["optimizer"]["config"]


def _sched(d):
    return _opt(d)["learning_rate"]["config"]


@pytest.mark.parametrize(
    "optimizer,edit,match",
    [
        (
            Nadam(),
            lambda d: d["training_state"].pop("optimizer_globals"),
            r"optimizer globals \[\]; Nadam keeps \['u_product'\]",
        ),
        (Nadam(), lambda d: d["training_state"]["optimizer_globals"].update(u_product=1.5), "u_product"),
        (Nadam(), lambda d: d["training_state"]["optimizer_globals"].update(u_product="0.5"), "u_product"),
        (Nadam(), lambda d: d["training_state"]["optimizer_globals"].update(momentum=0.5), "unknown key"),
        (
            Adam(),
            lambda d: d["training_state"].update(optimizer_globals={"u_product": 0.5}),
            r"optimizer globals \['u_product'\]; Adam keeps \[\]",
        ),
        (Nadam(), lambda d: _opt(d).update(beta_1=1.0), "beta_1"),
        (Adadelta(), lambda d: _opt(d).update(rho=-0.1), "rho"),
        (Adagrad(), lambda d: _opt(d).update(initial_accumulator_value=-1), "initial_accumulator_value"),
        (AdamW(), lambda d: _opt(d).pop("weight_decay"), "missing key"),
        (AdamW(), lambda d: _opt(d).update(weight_decay=None), "weight_decay"),
        (SGD(), lambda d: _opt(d).update(weight_decay=-0.5), "weight_decay"),
        (
            Adam(learning_rate=ExponentialDecay(0.1, 10, 0.9)),
            lambda d: _opt(d)["learning_rate"].update(class_name="PolynomialDecay"),
            "class_name",
        ),
        (
            Adam(learning_rate=ExponentialDecay(0.1, 10, 0.9)),
            lambda d: _opt(d)["learning_rate"].update(class_name="os.system"),
            "class_name",
        ),
        (Adam(learning_rate=ExponentialDecay(0.1, 10, 0.9)), lambda d: _sched(d).update(decay_steps=0), "decay_steps"),
        (
            Adam(learning_rate=ExponentialDecay(0.1, 10, 0.9)),
            lambda d: _sched(d).update(decay_rate=10**400),
            "decay_rate",
        ),
        (Adam(learning_rate=ExponentialDecay(0.1, 10, 0.9)), lambda d: _sched(d).update(staircase=1), "staircase"),
        (Adam(learning_rate=ExponentialDecay(0.1, 10, 0.9)), lambda d: _sched(d).update(fn="eval"), "unknown key"),
        (
            Adam(learning_rate=ExponentialDecay(0.1, 10, 0.9)),
            lambda d: _opt(d).update(learning_rate=[0.1]),
            "a positive number or a learning-rate schedule",
        ),
        (
            Adam(learning_rate=PiecewiseConstantDecay([5], [0.1, 0.01])),
            lambda d: _sched(d).update(boundaries=[5, 3], values=[0.1, 0.01, 0.001]),
            "strictly increasing",
        ),
        (
            Adam(learning_rate=PiecewiseConstantDecay([5], [0.1, 0.01])),
            lambda d: _sched(d).update(boundaries=[5.5]),
            "boundaries",
        ),
        (
            Adam(learning_rate=PiecewiseConstantDecay([5], [0.1, 0.01])),
            lambda d: _sched(d).update(values=[0.1, 0.01, 0.1]),
            "length of `boundaries`",
        ),
        (
            Adam(learning_rate=PiecewiseConstantDecay([5], [0.1, 0.01])),
            lambda d: _sched(d).update(values=[0.1, -1]),
            "values",
        ),
        (Adam(learning_rate=CosineDecay(0.1, 10)), lambda d: _sched(d).update(alpha=2), "alpha"),
        (Adam(learning_rate=CosineDecay(0.1, 10)), lambda d: _sched(d).update(warmup_target="1"), "warmup_target"),
        (Adam(learning_rate=CosineDecay(0.1, 10)), lambda d: _sched(d).update(warmup_steps=-3), "warmup_steps"),
    ],
)
def test_crafted_optimizer_settings_are_refused(tmp_path, optimizer, edit, match):
    path = _saved(tmp_path, optimizer)
    load_model(path)  # the untouched file loads
    _rewrite(path, edit)
    with pytest.raises(ModelFileError, match=match):
        load_model(path)
