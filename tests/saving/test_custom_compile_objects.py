"""A model compiled with the user's own losses and metrics, saved and loaded (issue 19).

Each model is compiled as a Keras user writes it (a registered loss function or ``Loss`` subclass
with a constructor argument, a metric function, a ``Metric`` subclass) and saved to ``.keras``,
``.convolab`` and legacy ``.h5``; loaded back (registered, by ``custom_objects=``, in a
``CustomObjectScope``, in a fresh process) it evaluates to the very same loss and metric values.
Unregistered objects: the file names them (as Keras's) and a load without them warns and gives
the model uncompiled, with its weights. A lambda loss: saved without compile settings, warned.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest

pytest.importorskip("h5py")

from convolab import keras  # noqa: E402
from convolab.saving import ModelFileError, object_registry, schema  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORMATS = ["keras", "convolab", "h5"]
PKG = "ClossTest"


# -- the user's objects, as a Keras program defines them -----------------------------------
def my_mse(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)


class ScaledMAE(keras.losses.Loss):
    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * keras.ops.mean(keras.ops.abs(y_pred - y_true), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def my_max_error(y_true, y_pred):
    return keras.ops.max(keras.ops.abs(y_pred - y_true), axis=-1)


class WorstError(keras.metrics.Metric):
    def __init__(self, power=1.0, name="worst_error", **kwargs):
        super().__init__(name=name, **kwargs)
        self.power = power
        self.worst = self.add_variable(shape=(), initializer="zeros", name="worst")

    def update_state(self, y_true, y_pred, sample_weight=None):
        value = float(np.max(np.abs(np.asarray(y_pred) - np.asarray(y_true)))) ** self.power
        self.worst.assign(max(float(self.worst), value))

    def result(self):
        return self.worst

    def get_config(self):
        return {**super().get_config(), "power": self.power}


# registered copies (the unregistered originals stay as they are, for the tests without registration)
def _registered(obj, name):
    if isinstance(obj, type):
        obj = type(name, (obj,), {"__module__": __name__})
    else:
        src = obj

        def obj(y_true, y_pred):
            return src(y_true, y_pred)

        obj.__name__ = obj.__qualname__ = name
    return keras.saving.register_keras_serializable(package=PKG)(obj)


reg_mse = _registered(my_mse, "reg_mse")
RegScaledMAE = _registered(ScaledMAE, "RegScaledMAE")
reg_max_error = _registered(my_max_error, "reg_max_error")
RegWorstError = _registered(WorstError, "RegWorstError")

LOSSES = {"function": lambda: reg_mse, "class": lambda: RegScaledMAE(scale=2.5)}
UNREGISTERED = {
    "my_mse": my_mse,
    "ScaledMAE": ScaledMAE,
    "my_max_error": my_max_error,
    "WorstError": WorstError,
}


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 3)).astype("float32")


def _model():
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)])


def _compiled(loss, metrics):
    model = _model()
    model.compile(optimizer="adam", loss=loss, metrics=metrics)
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return model


def _evaluate(model):
    x, y = _data(1)
    return model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)


def _save_quietly(model, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # .keras/.h5 warn that the optimizer state is not kept
        model.save(path)


def _load_no_warning(path, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*could not be compiled")
        return keras.saving.load_model(path, **kwargs)


# -- registered objects round-trip --------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("loss_kind", sorted(LOSSES))
def test_registered_losses_and_metrics_round_trip_to_the_same_values(tmp_path, fmt, loss_kind):
    model = _compiled(LOSSES[loss_kind](), [reg_max_error, RegWorstError(power=2.0), "mae"])
    path = tmp_path / f"m.{fmt}"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # registered: nothing to warn about ...
        warnings.filterwarnings("ignore", message=".*optimizer's state")  # ... but Keras files' own note
        model.save(path)
    loaded = _load_no_warning(path)
    assert loaded.compiled
    assert loaded.metrics_names == model.metrics_names == ["loss", "reg_max_error", "worst_error", "mae"]
    assert _evaluate(loaded) == pytest.approx(_evaluate(model), rel=1e-6)
    if loss_kind == "class":
        assert type(loaded.loss) is RegScaledMAE and loaded.loss.scale == 2.5  # the constructor argument
    else:
        assert loaded.loss.fn is reg_mse
    worst = [m for m in loaded.metrics_list if isinstance(m, RegWorstError)]
    assert len(worst) == 1 and worst[0].power == 2.0


def test_the_keras_file_holds_the_objects_as_keras_writes_them(tmp_path):
    model = _compiled(RegScaledMAE(scale=2.5), [reg_max_error, RegWorstError(power=2.0)])
    _save_quietly(model, tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        comp = json.loads(zf.read("config.json"))["compile_config"]
    assert comp["loss"] == {
        "module": __name__,
        "class_name": "RegScaledMAE",
        "config": {"name": "loss", "scale": 2.5},
        "registered_name": f"{PKG}>RegScaledMAE",
    }
    assert comp["metrics"][0] == {
        "module": "builtins",
        "class_name": "function",
        "config": f"{PKG}>reg_max_error",
        "registered_name": "function",
    }
    assert comp["metrics"][1]["registered_name"] == f"{PKG}>RegWorstError"
    assert comp["metrics"][1]["config"] == {"name": "worst_error", "dtype": "float32", "power": 2.0}


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_convolab_file_keeps_the_training_state_with_a_custom_loss(tmp_path, fmt):
    model = _compiled(reg_mse, [reg_max_error])
    _save_quietly(model, tmp_path / f"m.{fmt}")
    loaded = _load_no_warning(tmp_path / f"m.{fmt}")
    x, y = _data(2)
    if fmt == "convolab":  # resumes bitwise: same optimizer state, same next step
        assert loaded.optimizer.iterations == model.optimizer.iterations == 2
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        for a, b in zip(model.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(a, b)
    else:
        loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)  # trains with the user's loss
        assert loaded.loss.fn is reg_mse


# -- unregistered objects: custom_objects=, CustomObjectScope, or an uncompiled model ---------
@pytest.mark.filterwarnings("ignore:.*optimizer's state")
@pytest.mark.parametrize("fmt", FORMATS)
def test_unregistered_objects_load_with_custom_objects_or_a_scope(tmp_path, fmt):
    model = _compiled(ScaledMAE(scale=3.0), [my_max_error, WorstError(power=0.5)])
    path = tmp_path / f"m.{fmt}"
    with pytest.warns(UserWarning, match=r"loss 'ScaledMAE', metric 'my_max_error', metric 'WorstError'"):
        model.save(path)
    want = _evaluate(model)
    loaded = _load_no_warning(path, custom_objects=UNREGISTERED)
    assert _evaluate(loaded) == pytest.approx(want, rel=1e-6) and loaded.loss.scale == 3.0
    with keras.saving.CustomObjectScope(UNREGISTERED):
        scoped = _load_no_warning(path)
    assert _evaluate(scoped) == pytest.approx(want, rel=1e-6)


@pytest.mark.filterwarnings("ignore:.*optimizer's state")
@pytest.mark.parametrize("fmt", FORMATS)
def test_without_them_the_model_loads_uncompiled_with_a_warning_naming_them(tmp_path, fmt):
    model = _compiled(my_mse, [WorstError()])
    path = tmp_path / f"m.{fmt}"
    with pytest.warns(UserWarning, match=r"not registered.*uncompiled"):
        model.save(path)
    with pytest.warns(UserWarning, match=r"could not be compiled.*'my_mse', 'WorstError'.*custom_objects"):
        loaded = keras.saving.load_model(path)
    assert not loaded.compiled
    x, _ = _data(3)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not keras.saving.load_model(path, compile=False).compiled  # no compile, no warning


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_lambda_loss_saves_the_model_uncompiled_with_a_warning(tmp_path, fmt):
    # Chosen over refusing: the architecture and weights stay saveable (a checkpoint must not
    # fail), and a file never holds code, so the lambda could not come back anyway.
    model = _compiled(lambda t, p: keras.ops.mean(keras.ops.abs(p - t), axis=-1), ["mae"])
    path = tmp_path / f"m.{fmt}"
    with pytest.warns(UserWarning, match=r"with a lambda as its loss.*without the compile settings"):
        model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.saving.load_model(path)
    assert not loaded.compiled
    x, _ = _data(3)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_lambda_metric_is_left_out_and_the_rest_compiles(tmp_path):
    model = _compiled(reg_mse, [reg_max_error, lambda t, p: p])
    with pytest.warns(UserWarning, match=r"metric a lambda has no name a file can hold"):
        model.save(tmp_path / "m.convolab")
    loaded = _load_no_warning(tmp_path / "m.convolab")
    assert loaded.metrics_names == ["loss", "reg_max_error"]


# -- several outputs -----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_functional_model_with_a_user_loss_per_output(tmp_path, fmt):
    keras.utils.set_random_seed(2)
    inp = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inp)
    a = keras.layers.Dense(3, name="a")(hidden)
    b = keras.layers.Dense(3, name="b")(hidden)
    model = keras.Model(inp, [a, b])
    model.compile(
        optimizer="sgd",
        loss={"a": reg_mse, "b": RegScaledMAE(scale=0.5)},
        loss_weights={"a": 1.0, "b": 2.0},
        metrics={"a": [reg_max_error], "b": [RegWorstError()]},
    )
    x, y = _data(4)
    _save_quietly(model, tmp_path / f"m.{fmt}")
    loaded = _load_no_warning(tmp_path / f"m.{fmt}")
    want = model.evaluate(x, [y, y], verbose=0, return_dict=True)
    assert loaded.evaluate(x, [y, y], verbose=0, return_dict=True) == pytest.approx(want, rel=1e-6)


# -- what loading refuses, and what it never does ------------------------------------------
def test_a_get_config_without_the_constructor_arguments_fails_at_save(tmp_path):
    @keras.saving.register_keras_serializable(package=PKG)
    class Forgetful(keras.losses.Loss):
        def __init__(self, scale):  # no default, and get_config() does not give it
            super().__init__()
            self.scale = scale

        def call(self, y_true, y_pred):
            return self.scale * keras.ops.mean(keras.ops.abs(y_pred - y_true), axis=-1)

    model = _compiled(Forgetful(2.0), [])
    for fmt in FORMATS:
        with pytest.raises(ValueError, match=r"the loss Forgetful cannot be rebuilt from its get_config\(\)"):
            model.save(tmp_path / f"m.{fmt}")
        assert not (tmp_path / f"m.{fmt}").exists()


def _with_compile(tmp_path, edit):
    model = _compiled(reg_mse, [reg_max_error])
    _save_quietly(model, tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(files["config.json"])
    edit(config["compile_config"])
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "e.keras", "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return tmp_path / "e.keras"


def test_keras_36_bare_function_names_and_keras_builtin_functions_load(tmp_path):
    def edit(comp):
        comp["loss"]["config"] = "reg_mse"  # Keras 3.6 wrote the bare __name__
        comp["metrics"].append(
            {
                "module": "builtins",
                "class_name": "function",
                "config": "mean_absolute_error",
                "registered_name": "function",
            }
        )

    loaded = _load_no_warning(_with_compile(tmp_path, edit))
    assert loaded.loss.fn is reg_mse and loaded.metrics_names == ["loss", "reg_max_error", "mean_absolute_error"]


def test_a_name_registered_as_another_kind_is_refused(tmp_path):
    def edit(comp):
        comp["loss"] = {
            "module": "x",
            "class_name": "RegWorstError",
            "config": {},
            "registered_name": f"{PKG}>RegWorstError",
        }

    with pytest.raises(ModelFileError, match=r"compile.loss: expected a losses.Loss subclass"):
        keras.saving.load_model(_with_compile(tmp_path, edit))


def test_a_module_the_file_names_is_never_imported(tmp_path):
    def edit(comp):
        comp["loss"] = {
            "module": "subprocess",
            "class_name": "Popen",
            "config": {"args": "true"},
            "registered_name": "Popen",
        }

    with pytest.warns(UserWarning, match=r"could not be compiled.*'Popen'"):
        loaded = keras.saving.load_model(_with_compile(tmp_path, edit))
    assert not loaded.compiled


def test_the_schema_checks_the_shape_of_a_user_entry():
    base = {"optimizer": {"class_name": "SGD", "config": keras.optimizers.SGD().get_config()}, "metrics": []}
    good = {"module": "m", "class_name": "L", "config": {"a": 1}, "registered_name": "p>L"}
    assert schema.compile_schema({**base, "loss": good}, "compile")["loss"] == good
    for bad, words in [
        ({**good, "extra": 1}, "unknown key"),
        ({**good, "config": [1]}, "compile.loss.config: expected an object"),
        ({**good, "class_name": "function", "config": {}}, "compile.loss.config: expected a string"),
        ({**good, "registered_name": 3}, "registered_name"),
    ]:
        with pytest.raises(ModelFileError, match=words):
            schema.compile_schema({**base, "loss": bad}, "compile")


def test_registry_helpers():
    assert object_registry.is_registered(reg_mse) and not object_registry.is_registered(my_mse)
    assert object_registry.get_by_suffix(">reg_mse") is reg_mse
    with keras.saving.CustomObjectScope({"other>reg_mse": my_mse}):
        assert object_registry.get_by_suffix(">reg_mse") is my_mse  # the innermost scope first


# -- a fresh process, the objects registered in its script -----------------------------------
USER_CODE = """
import json, sys
import numpy as np
from convolab import keras

@keras.saving.register_keras_serializable(package="Fresh")
def fresh_mse(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)

@keras.saving.register_keras_serializable(package="Fresh")
class FreshLoss(keras.losses.Loss):
    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
    def call(self, y_true, y_pred):
        return self.scale * keras.ops.mean(keras.ops.abs(y_pred - y_true), axis=-1)
    def get_config(self):
        return {**super().get_config(), "scale": self.scale}

@keras.saving.register_keras_serializable(package="Fresh")
def fresh_metric(y_true, y_pred):
    return keras.ops.max(keras.ops.abs(y_pred - y_true), axis=-1)

@keras.saving.register_keras_serializable(package="Fresh")
class FreshWorst(keras.metrics.Metric):
    def __init__(self, name="fresh_worst", **kwargs):
        super().__init__(name=name, **kwargs)
        self.worst = self.add_variable(shape=(), initializer="zeros", name="worst")
    def update_state(self, y_true, y_pred, sample_weight=None):
        self.worst.assign(max(float(self.worst), float(np.max(np.abs(np.asarray(y_pred) - np.asarray(y_true))))))
    def result(self):
        return self.worst

rng = np.random.default_rng(5)
x, y = rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 3)).astype("float32")
"""

SAVE = """
keras.utils.set_random_seed(3)
out = {}
for i, loss in enumerate([fresh_mse, FreshLoss(scale=1.5)]):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=loss, metrics=[fresh_metric, FreshWorst()])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for fmt in ("keras", "convolab", "h5"):
        model.save(f"m{i}.{fmt}")
        out[f"m{i}.{fmt}"] = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
print(json.dumps(out))
"""

LOAD = """
import warnings
warnings.simplefilter("error")
out = {}
for name in sys.argv[1:]:
    model = keras.saving.load_model(name)
    out[name] = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
print(json.dumps(out))
"""


def _run(code, tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_fresh_process_loads_them_with_the_registration_in_its_script(tmp_path):
    saved = _run(USER_CODE + SAVE, tmp_path)
    assert set(saved) == {f"m{i}.{f}" for i in (0, 1) for f in FORMATS}
    loaded = _run(USER_CODE + LOAD, tmp_path, *sorted(saved))
    for name, values in saved.items():
        assert set(values) == {"loss", "fresh_metric", "fresh_worst"}
        assert loaded[name] == pytest.approx(values, rel=1e-6), name


@pytest.mark.parametrize("ext", [".keras", ".convolab", ".h5"])
def test_a_model_compiled_without_a_loss_saves_and_reloads_compiled(tmp_path, ext):
    """compile(optimizer) with no loss (the model brings its own: here an activity penalty, which
    is add_loss's built-in form): Keras 3 writes loss null and compiles the loaded model the same
    way; the reloaded model trains on its own loss."""
    if ext != ".convolab":
        pytest.importorskip("h5py")
    from convolab import keras

    dense = keras.layers.Dense(2, kernel_initializer="ones", activity_regularizer=keras.regularizers.L2(0.5))
    model = keras.Sequential([keras.Input((3,)), dense])
    model.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["mae"])
    path = str(tmp_path / f"m{ext}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: no loss is not an unnamed loss
        model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.compiled and loaded.loss is None and type(loaded.optimizer).__name__ == "SGD"
    x = np.ones((8, 3), "float32")
    losses = loaded.fit(x, epochs=3, verbose=0).history["loss"]  # one batch an epoch
    # L2(0.5) of the outputs (all 3.0), summed per sample and averaged over the batch: 0.5 * 2 * 9
    np.testing.assert_allclose(losses[0], 9.0, rtol=1e-6)
    assert losses[2] < losses[1] < losses[0]
