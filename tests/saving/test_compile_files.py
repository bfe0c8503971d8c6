"""Compile settings in files: a multi-output model's per-output losses, loss_weights and metrics in a
.convolab file (training resumes exactly), and Keras 3's ``compile_config`` in a .keras file, written
in Keras's layout and read from files laid out as Keras 3.15 writes them (built here, no Keras needed)."""

import json
import warnings
import zipfile

import numpy as np
import pytest

pytest.importorskip("h5py")

from convolab import keras  # noqa: E402
from convolab.saving import ModelFileError, schema  # noqa: E402

L = keras.layers
RNG = np.random.default_rng(0)


def heads(compile_args=None):
    keras.utils.set_random_seed(0)
    i = keras.Input((6,), name="x")
    h = L.Dense(5, activation="relu", name="h")(i)
    model = keras.Model(
        i, [L.Dense(3, activation="softmax", name="digit")(h), L.Dense(1, activation="sigmoid", name="parity")(h)]
    )
    if compile_args is not None:
        model.compile(**compile_args)
    return model


def data(n=16):
    return (
        RNG.normal(size=(n, 6)).astype("float32"),
        [RNG.integers(0, 3, n), RNG.integers(0, 2, (n, 1)).astype("float32")],
    )


MULTI = [
    dict(
        optimizer=keras.optimizers.Adam(0.01),
        loss={"digit": "sparse_categorical_crossentropy", "parity": keras.losses.BinaryCrossentropy()},
        loss_weights={"digit": 1.0, "parity": 0.5},
        metrics={"digit": ["acc"], "parity": [keras.metrics.BinaryAccuracy(threshold=0.4)]},
        weighted_metrics=["acc"],
    ),
    dict(
        optimizer="rmsprop",
        loss=["sparse_categorical_crossentropy", "binary_crossentropy"],
        loss_weights=[0.3, 2.0],
        metrics=[["acc"], []],
    ),
    dict(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss={"digit": "sparse_categorical_crossentropy"},
        metrics=["acc"],
    ),  # parity has no loss: not trained
]


def _fresh(args):
    """compile arguments with new optimizer and metric objects (they hold state)."""
    out = dict(args)
    if not isinstance(args["optimizer"], str):
        out["optimizer"] = type(args["optimizer"]).from_config(args["optimizer"].get_config())
    if isinstance(args.get("metrics"), dict):
        out["metrics"] = {
            k: [m if isinstance(m, str) else type(m).from_config(m.get_config()) for m in v]
            for k, v in args["metrics"].items()
        }
    return out


@pytest.mark.filterwarnings("ignore:.*gradients do not exist for parity")  # the output without a loss
@pytest.mark.parametrize("args", MULTI, ids=["dicts", "lists", "one-loss"])
def test_multi_output_compile_in_convolab_files(tmp_path, args):
    model = heads(_fresh(args))
    x, y = data()
    model.train_on_batch(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.save(tmp_path / "m.convolab")
    loaded = keras.models.load_model(tmp_path / "m.convolab")
    assert loaded.compiled and loaded.metrics_names == model.metrics_names
    assert loaded.loss.weights == model.loss.weights
    assert [type(l).__name__ for l in loaded.loss.losses] == [type(l).__name__ for l in model.loss.losses]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    # the optimizer state came along: the next steps are the same, bit for bit
    for _ in range(2):
        assert loaded.train_on_batch(x, y, return_dict=True) == model.train_on_batch(x, y, return_dict=True)
    assert keras.models.load_model(tmp_path / "m.convolab", compile=False).compiled is False


def test_multi_output_compile_layout_and_refusals(tmp_path):
    model = heads(_fresh(MULTI[0]))
    model.save(tmp_path / "m.convolab")
    from convolab.saving._common import compile_config as _compile_config

    comp = json.loads(json.dumps(_compile_config(model)))
    assert comp["outputs"] == [
        {
            "name": "digit",
            "loss": {
                "class_name": "SparseCategoricalCrossentropy",
                "config": {"name": "sparse_categorical_crossentropy", "from_logits": False},
            },
            "loss_weight": 1.0,
            "metrics": ["acc"],
            "weighted_metrics": ["acc"],
        },
        {
            "name": "parity",
            "loss": {
                "class_name": "BinaryCrossentropy",
                "config": {"name": "binary_crossentropy", "from_logits": False, "label_smoothing": 0.0},
            },
            "loss_weight": 0.5,
            "metrics": [
                {
                    "class_name": "BinaryAccuracy",
                    "config": {"name": "binary_accuracy", "dtype": "float32", "threshold": 0.4},
                }
            ],
            "weighted_metrics": ["acc"],
        },
    ]
    schema.compile_schema(comp, "compile")
    for edit, words in [
        (lambda c: c["outputs"][1].update(name="digit"), "distinct output names"),
        (lambda c: [o.update(loss=None) for o in c["outputs"]], "a loss for at least one output"),
        (lambda c: c["outputs"][0].update(loss_weight=-1), "loss_weight"),
        (lambda c: c["outputs"].pop(), "a list of 2 to 64 items"),
    ]:
        bad = json.loads(json.dumps(comp))
        edit(bad)
        with pytest.raises(ModelFileError, match=words):
            schema.compile_schema(bad, "compile")


# -- .keras: writing ---------------------------------------------------------------------
def config_json(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("config.json"))


def test_keras_file_carries_compile_config_in_keras_layout(tmp_path):
    model = heads(_fresh(MULTI[0]))
    model.save(tmp_path / "m.keras")
    comp = config_json(tmp_path / "m.keras")["compile_config"]
    assert comp["optimizer"] == {
        "module": "keras.optimizers",
        "class_name": "Adam",
        "registered_name": None,
        "config": {
            "name": "adam",
            "learning_rate": 0.01,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-07,
            "amsgrad": False,
        },
    }
    assert comp["loss"]["parity"] == {
        "module": "keras.losses",
        "class_name": "BinaryCrossentropy",
        "registered_name": None,
        "config": {"name": "binary_crossentropy", "from_logits": False, "label_smoothing": 0.0},
    }
    assert comp["loss_weights"] == {"digit": 1.0, "parity": 0.5}
    assert comp["metrics"]["digit"] == ["acc"] and comp["metrics"]["parity"][0]["module"] == "keras.metrics"
    assert comp["weighted_metrics"] == {"digit": ["acc"], "parity": ["acc"]}
    assert (comp["run_eagerly"], comp["steps_per_execution"], comp["jit_compile"]) == (False, 1, False)
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.compiled and loaded.metrics_names == model.metrics_names and loaded.loss.weights == [1.0, 0.5]
    assert not keras.models.load_model(tmp_path / "m.keras", compile=False).compiled


def test_keras_file_of_a_one_output_model_and_a_schedule(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="softmax")])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["acc", keras.metrics.TopKCategoricalAccuracy(k=2)],
    )
    model.save(tmp_path / "s.keras")
    comp = config_json(tmp_path / "s.keras")["compile_config"]
    assert comp["optimizer"]["config"]["learning_rate"]["module"] == "keras.optimizers.schedules"
    assert comp["loss_weights"] is None and comp["weighted_metrics"] is None and comp["metrics"][0] == "acc"
    loaded = keras.models.load_model(tmp_path / "s.keras")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.metrics_names == model.metrics_names


def test_uncompiled_model_writes_no_compile_config(tmp_path):
    model = heads()
    model.save(tmp_path / "u.keras")
    assert "compile_config" not in config_json(tmp_path / "u.keras")
    assert not keras.models.load_model(tmp_path / "u.keras").compiled


# -- .keras: reading what Keras 3.15 writes ------------------------------------------------------
KERAS_ADAM = {
    "module": "keras.optimizers",
    "class_name": "Adam",
    "registered_name": None,
    "config": {
        "name": "adam",
        "learning_rate": 0.0010000000474974513,
        "weight_decay": None,
        "clipnorm": None,
        "global_clipnorm": None,
        "clipvalue": None,
        "use_ema": False,
        "ema_momentum": 0.99,
        "ema_overwrite_frequency": None,
        "loss_scale_factor": None,
        "gradient_accumulation_steps": None,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-07,
        "amsgrad": False,
    },
}
KERAS_BCE = {
    "module": "keras.losses",
    "class_name": "BinaryCrossentropy",
    "registered_name": None,
    "config": {
        "name": "binary_crossentropy",
        "reduction": "sum_over_batch_size",
        "from_logits": False,
        "label_smoothing": 0.0,
        "axis": -1,
    },
}
KERAS_DICTS = {
    "optimizer": KERAS_ADAM,
    "loss": {"digit": "sparse_categorical_crossentropy", "parity": KERAS_BCE},
    "loss_weights": {"digit": 1.0, "parity": 0.5},
    "metrics": {
        "digit": ["acc"],
        "parity": [
            {
                "module": "keras.metrics",
                "class_name": "BinaryAccuracy",
                "config": {"name": "binary_accuracy", "dtype": "float32", "threshold": 0.5},
                "registered_name": None,
            }
        ],
    },
    "weighted_metrics": {"digit": ["acc"]},
    "run_eagerly": False,
    "steps_per_execution": 1,
    "jit_compile": False,
}
KERAS_LISTS = {
    "optimizer": {
        **KERAS_ADAM,
        "class_name": "RMSprop",
        "config": {
            **{k: v for k, v in KERAS_ADAM["config"].items() if k not in ("beta_1", "beta_2", "amsgrad")},
            "name": "rm_sprop",
            "rho": 0.9,
            "momentum": 0.0,
            "centered": False,
        },
    },
    "loss": ["sparse_categorical_crossentropy", "binary_crossentropy"],
    "loss_weights": [1.0, 0.3],
    "metrics": [["acc"], ["acc"]],
    "weighted_metrics": None,
    "run_eagerly": False,
    "steps_per_execution": 1,
    "jit_compile": False,
}


def with_compile_config(tmp_path, comp):
    model = heads()
    model.save(tmp_path / "plain.keras")
    with zipfile.ZipFile(tmp_path / "plain.keras") as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(files["config.json"])
    config["compile_config"] = comp
    files["config.json"] = json.dumps(config).encode()
    path = tmp_path / "k.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return path


@pytest.mark.parametrize(
    "comp, weights, names",
    [
        (
            KERAS_DICTS,
            [1.0, 0.5],
            ["loss", "digit_loss", "parity_loss", "digit_acc", "digit_weighted_acc", "parity_binary_accuracy"],
        ),
        (KERAS_LISTS, [1.0, 0.3], ["loss", "digit_loss", "parity_loss", "digit_acc", "parity_acc"]),
    ],
    ids=["dicts", "lists"],
)
def test_keras_written_compile_config_compiles(tmp_path, comp, weights, names):
    model = keras.models.load_model(with_compile_config(tmp_path, comp))
    assert model.compiled and model.loss.weights == weights and model.metrics_names == names
    assert model.optimizer.learning_rate == pytest.approx(1e-3)
    x, y = data()
    assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])


def test_keras_written_one_output_compile_config(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Dense(2, activation="softmax")])
    model.save(tmp_path / "s.keras")
    with zipfile.ZipFile(tmp_path / "s.keras") as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(files["config.json"])
    config["compile_config"] = {
        "optimizer": {
            **KERAS_ADAM,
            "class_name": "SGD",
            "config": {
                **{
                    k: v for k, v in KERAS_ADAM["config"].items() if k not in ("beta_1", "beta_2", "amsgrad", "epsilon")
                },
                "name": "sgd",
                "momentum": 0.9,
                "nesterov": False,
            },
        },
        "loss": {
            "module": "keras.losses",
            "class_name": "SparseCategoricalCrossentropy",
            "registered_name": None,
            "config": {
                "name": "sparse_categorical_crossentropy",
                "reduction": "sum_over_batch_size",
                "from_logits": True,
                "ignore_class": None,
            },
        },
        "loss_weights": None,
        "metrics": ["accuracy", "mae"],
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "k.keras", "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    loaded = keras.models.load_model(tmp_path / "k.keras")
    assert type(loaded.optimizer).__name__ == "SGD" and loaded.optimizer.get_config()["momentum"] == 0.9
    assert loaded.loss.get_config() == {"name": "sparse_categorical_crossentropy", "from_logits": True}
    assert loaded.metrics_names == ["loss", "accuracy", "mae"]


def _edited(edit):
    comp = json.loads(json.dumps(KERAS_DICTS))
    edit(comp)
    return comp


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda c: c["optimizer"]["config"].update(global_clipnorm=1.0), "global_clipnorm: expected None"),
        (lambda c: c["optimizer"].update(class_name="Lion"), "Lion"),
        (lambda c: c["optimizer"].update(registered_name="my>Opt"), "never a custom one"),
        (
            lambda c: c["loss"].update(parity={**KERAS_BCE, "config": {**KERAS_BCE["config"], "reduction": "sum"}}),
            "reduction",
        ),
        (lambda c: c["loss"].update(parity="hinge"), "a loss name convolab knows"),
        (lambda c: c["loss"].update(third="mse"), "output names among"),
        (lambda c: c["metrics"].update(digit=["auc"]), "auc"),
        (lambda c: c.update(surprise=1), "surprise"),
    ],
)
def test_unreadable_compile_settings_are_refused_by_name(tmp_path, edit, words):
    path = with_compile_config(tmp_path, _edited(edit))
    with pytest.raises(ModelFileError) as e:
        keras.models.load_model(path)
    assert words in str(e.value) and "compile_config" in str(e.value)
    assert not keras.models.load_model(path, compile=False).compiled  # the way round it
