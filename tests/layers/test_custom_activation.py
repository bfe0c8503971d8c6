"""Custom activations (issue 19): any callable ``f(x)`` written with ``keras.ops`` as ``activation=``.

The built-ins' ``keras.ops`` twins take the hand-written path under the built-in's name; any other
callable runs under a local tape whose vector-Jacobian product is the layer's backward, checked
here against central differences in float64 through the layer, the outer tape and ``model.fit``
on the stack engine (and on the GPU path, through the fake CuPy). Saving names a registered
function; a lambda or an unregistered one is refused, as is a NumPy-only function's gradient.
"""

from __future__ import annotations

import json
import zipfile
import zlib

import numpy as np
import pytest

from convolab import _gpu, backend, keras, random
from convolab.autodiff import GradientTape
from convolab.kernels import cuda
from convolab.layers import Activation, Conv1D, Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, SeparableConv2D
from convolab.models.plan import compile_plan
from convolab.saving import ModelFileError, object_registry
from support import fake_cupy
from support.gradcheck import numerical_gradient, rel_error
from support.layer_gradients import check_layer_gradients

ops = keras.ops


def _rng(label):
    return np.random.default_rng(zlib.crc32(label.encode()))


def softish(t):
    """Smooth, not a built-in: ``tanh(t) * t + 0.5 t`` (its derivative is nowhere constant)."""
    return ops.tanh(t) * t + 0.5 * t


@pytest.fixture
def registered():
    """``act_test>scaled_tanh``, registered for the test only."""
    fn = keras.saving.register_keras_serializable(package="act_test")(scaled_tanh)
    yield fn
    key = object_registry._GLOBAL_NAMES.pop(fn)
    object_registry._GLOBAL_OBJECTS.pop(key)


def scaled_tanh(x):
    return ops.tanh(x) * 2.0


# -- the fast path for the built-ins' twins ------------------------------------------------------------


@pytest.mark.parametrize(
    "fn, name",
    [
        (ops.relu, "relu"),
        (ops.sigmoid, "sigmoid"),
        (ops.tanh, "tanh"),
        (ops.softmax, "softmax"),
        (ops.softplus, "softplus"),
        (ops.exp, "exponential"),
        (keras.activations.gelu, "gelu"),  # ops.gelu defaults to the approximation: not the twin
        (ops.silu, "silu"),
        (keras.activations.relu, "relu"),
    ],
)
def test_keras_ops_twins_map_to_the_built_in_names_and_compute_the_same(fn, name):
    rng = _rng(f"twin-{name}")
    x = rng.standard_normal((4, 5)).astype(np.float32)
    a = Dense(3, activation=fn)
    b = Dense(3, activation=name)
    assert a.activation == name and a.get_config()["activation"] == name
    a.build((None, 5))
    b.build((None, 5))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a(x), b(x))
    assert Activation(fn).activation == name


# -- gradients against central differences, float64 -----------------------------------------------------


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda act: Dense(3, activation=act, dtype="float64", bias_initializer="random_normal"), (3, 4)),
        (lambda act: Conv2D(2, 3, padding="same", activation=act, dtype="float64"), (2, 5, 5, 2)),
        (lambda act: DepthwiseConv2D(3, activation=act, dtype="float64"), (2, 5, 5, 2)),
        (lambda act: SeparableConv2D(2, 3, activation=act, dtype="float64"), (2, 5, 5, 2)),
        (lambda act: Conv1D(2, 3, activation=act, dtype="float64"), (2, 6, 2)),
        (lambda act: Conv2DTranspose(2, 3, strides=2, activation=act, dtype="float64"), (2, 3, 3, 2)),
        (lambda act: Activation(act, dtype="float64"), (3, 4)),
    ],
    ids=["dense", "conv2d", "depthwise", "separable", "conv1d", "conv2d_transpose", "activation"],
)
@pytest.mark.parametrize("act", [softish, lambda t: ops.sigmoid(t) * ops.exp(-t * t)], ids=["named", "lambda"])
def test_layer_backward_matches_central_differences(make, shape, act):
    rng = _rng(f"layer-{shape}")
    layer = make(act)
    assert layer.activation is act and layer.has_backward()
    layer.build((None,) + shape[1:])
    check_layer_gradients(layer, rng.standard_normal(shape), rng)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (Dense(3, activation=softish, dtype="float64", bias_initializer="random_normal"), (3, 4)),
        (Conv2D(2, 2, activation=softish, dtype="float64"), (2, 4, 4, 2)),
        (Activation(softish, dtype="float64"), (3, 4)),
    ],
    ids=["dense", "conv2d", "activation"],
)
def test_outer_tape_gradients_match_central_differences(layer, shape):
    """Called on the outer tape (a replica runs call then backward), with training=False too."""
    rng = _rng(f"tape-{shape}")
    x = rng.standard_normal(shape)
    layer.build((None,) + shape[1:])
    dy = rng.standard_normal(layer.compute_output_shape(shape))
    xt = ops.convert_to_tensor(x)
    with GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
    sources = [xt] + list(layer.trainable_weights)
    grads = tape.gradient(y, sources, output_gradients=dy)
    assert rel_error(grads[0], numerical_gradient(lambda v: layer(v), x.copy(), dy)) < 1e-6
    for g, w in zip(grads[1:], layer.trainable_weights):
        assert rel_error(g, numerical_gradient(lambda _: layer(x), np.asarray(w), dy)) < 1e-6


def _mlp(act, activity_regularizer=None):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            Conv2D(2, 2, activation=act, dtype="float64"),
            keras.layers.Flatten(dtype="float64"),
            Dense(3, activation=act, dtype="float64", activity_regularizer=activity_regularizer),
            Activation(act, dtype="float64"),
            Dense(1, dtype="float64"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    return model


@pytest.mark.parametrize("activity_regularizer", [None, "l2"])
def test_fit_on_the_stack_engine_steps_by_the_numerical_gradient(activity_regularizer):
    """One SGD(1.0) step of ``fit`` moves each weight by minus its gradient: checked against central
    differences of the loss (the activity penalty on the custom activation's output included)."""
    rng = _rng(f"fit-{activity_regularizer}")
    x, y = rng.standard_normal((6, 4, 4, 1)), rng.standard_normal((6, 1))
    model = _mlp(softish, activity_regularizer)
    assert compile_plan(model).engine == "stack"
    before = [np.array(w) for w in model.get_weights()]

    def loss_of(_):
        h = x
        for layer in model.layers:  # called one by one, each keeps its output for its penalty
            h = layer(h, training=True)
        return np.mean((h - y) ** 2) + sum(layer.activity_penalty() for layer in model.layers[2:3])

    numerical = []
    for w in model.trainable_weights:
        numerical.append(numerical_gradient(loss_of, np.asarray(w), 1.0))
    model.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    for b, a, num in zip(before, model.get_weights(), numerical):
        assert rel_error(b - a, num) < 1e-6


def test_stack_engine_and_tape_engine_agree():
    rng = _rng("engines")
    x, y = rng.standard_normal((8, 4, 4, 1)), rng.standard_normal((8, 1))
    stack, tape = _mlp(softish, "l2"), _mlp(softish, "l2")
    tape.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse", run_eagerly=True)
    stack.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    h1 = stack.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    h2 = tape.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h1, h2, rtol=1e-10)


def test_shards_on_threads_give_the_whole_batch_update(monkeypatch):
    """The runner's shards each open a local tape on their own thread: the summed update is the
    whole batch's."""
    from convolab.models import parallel

    rng = _rng("shards")
    x, y = rng.standard_normal((64, 4, 4, 1)), rng.standard_normal((64, 1))
    monkeypatch.setattr(parallel, "MIN_SHARD_FLOPS", 0)
    runs = {}
    try:
        for n in (1, 2):
            parallel.set_num_threads(n)
            model = _mlp(softish)
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
            model.fit(x, y, batch_size=32, epochs=3, verbose=0, shuffle=False)
            runs[n] = model.get_weights()
    finally:
        parallel.set_num_threads(None)
    for a, b in zip(runs[1], runs[2]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_a_lambda_model_trains():
    rng = _rng("lambda-trains")
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, :1] + x[:, 1:2] > 0).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((5,)), Dense(16, activation=lambda t: ops.tanh(t) * 2), Dense(1, activation=ops.sigmoid)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    losses = model.fit(x, y, batch_size=16, epochs=15, verbose=0).history["loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_gpu_path_through_the_fake_cupy(monkeypatch):
    """On device arrays the local tape and its replay stay on the device (no host conversion)."""
    rng = _rng("gpu")
    x, y = rng.standard_normal((8, 4, 4, 1)).astype(np.float32), rng.standard_normal((8, 1)).astype(np.float32)

    def run():
        model = _mlp(softish)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        return [np.array(w) for w in model.get_weights()]

    cpu = run()
    mod = fake_cupy.make_module()
    monkeypatch.setattr(_gpu, "_import_cupy", lambda: mod)
    monkeypatch.setattr(cuda, "_modules", {})
    monkeypatch.setattr(random, "_device_generator", None)
    backend.set_device("gpu")
    try:
        gpu = run()
    finally:
        backend.set_device("cpu")
        _gpu.cupy = None
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# -- functions that cannot be differentiated, or are not element-wise --------------------------------------


@pytest.mark.parametrize(
    "fn, why",
    [
        (np.tanh, "raised TypeError"),
        (lambda t: ops.convert_to_tensor(np.tanh(ops.convert_to_numpy(t))), "does not depend on its input"),
    ],
    ids=["numpy-ufunc", "via-numpy"],
)
def test_a_numpy_only_activation_is_refused_at_the_first_backward(fn, why):
    rng = _rng("numpy-only")
    x, y = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), Dense(2, activation=fn, name="np_dense")])
    model.compile(optimizer="sgd", loss="mse")
    out = model.predict(x, verbose=0)  # the forward is right
    np.testing.assert_allclose(out, np.tanh(x @ model.layers[0].get_weights()[0]), rtol=1e-5)
    with pytest.raises(TypeError, match=rf"Dense 'np_dense': the activation .* has no gradient: .*{why}.*keras.ops"):
        model.fit(x, y, verbose=0)


def test_an_activation_that_changes_the_shape_is_refused():
    layer = Dense(4, activation=lambda t: t[..., :2], name="cut")
    with pytest.raises(ValueError, match=r"Dense 'cut': the activation .* must return an array of its input's shape"):
        layer(np.ones((2, 3), np.float32))


def test_strings_that_name_nothing_are_still_refused():
    with pytest.raises(ValueError, match=r"Dense 'd': unknown activation 'nobody>fn'"):
        Dense(2, activation="nobody>fn", name="d")


# -- saving --------------------------------------------------------------------------------------------


def _model(act):
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((5, 5, 2)),
            Conv2D(3, 3, activation=act),
            keras.layers.Flatten(),
            Dense(4, activation=act),
            Activation(act),
            Dense(2),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def _unregister(fn):
    object_registry._GLOBAL_OBJECTS.pop(object_registry._GLOBAL_NAMES.pop(fn))


@pytest.mark.parametrize("suffix", [".keras", ".convolab"])
def test_registered_activation_round_trips(tmp_path, registered, suffix):
    model = _model(registered)
    assert model.layers[0].get_config()["activation"] == "act_test>scaled_tanh"
    assert keras.activations.serialize(registered) == "act_test>scaled_tanh"
    x = _rng("rt").standard_normal((3, 5, 5, 2)).astype(np.float32)
    path = tmp_path / f"m{suffix}"
    model.save(path)
    back = keras.models.load_model(path)
    assert back.layers[0].activation is registered and back.layers[3].activation is registered
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    if suffix == ".keras":  # as keras.activations.serialize writes a registered function
        with zipfile.ZipFile(path) as z:
            layers = json.loads(z.read("config.json"))["config"]["layers"]
        assert layers[1]["config"]["activation"] == {
            "module": "builtins",
            "class_name": "function",
            "config": "act_test>scaled_tanh",
            "registered_name": "function",
        }
    # not registered at load time: refused, then loaded with it passed in custom_objects
    _unregister(registered)
    try:
        with pytest.raises(ModelFileError, match=r"activation: expected .*registered.*act_test>scaled_tanh"):
            keras.models.load_model(path)
        for key in ("act_test>scaled_tanh", "scaled_tanh"):
            back = keras.models.load_model(path, custom_objects={key: scaled_tanh})
            assert back.layers[0].activation is scaled_tanh
            np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    finally:
        keras.saving.register_keras_serializable(package="act_test")(registered)


@pytest.mark.parametrize("suffix", [".keras", ".convolab"])
@pytest.mark.parametrize(
    "act, what",
    [(softish, "'softish', a function that is not registered"), (lambda t: t * 2, "'.*<lambda>', a lambda")],
)
def test_unregistered_function_or_lambda_is_refused_at_save(tmp_path, suffix, act, what):
    model = _model(act)
    assert model.layers[0].get_config()["activation"] is act  # in memory (clone_model) the callable itself
    with pytest.raises(ValueError, match=rf"save_model: Conv2D '\w+' has the custom activation {what}"):
        model.save(tmp_path / f"m{suffix}")
    assert not (tmp_path / f"m{suffix}").exists()
    with pytest.raises(ValueError, match="keras.activations.serialize"):
        keras.activations.serialize(act)


def test_functional_model_with_a_custom_activation_is_refused_at_save(tmp_path):
    inp = keras.Input((3,))
    out = Dense(2, activation=softish, name="fd")(inp)
    model = keras.Model(inp, out)
    with pytest.raises(ValueError, match=r"Dense 'fd' has the custom activation 'softish'"):
        model.save(tmp_path / "f.convolab")


def test_clone_model_keeps_a_custom_activation():
    model = _model(softish)
    clone = keras.models.clone_model(model)
    assert clone.layers[0].activation is softish and clone.layers[3].activation is softish


def test_onnx_export_refuses_a_custom_activation(tmp_path, registered):
    pytest.importorskip("onnx")
    from convolab.saving import export_model

    model = _model(registered)
    with pytest.raises(
        ValueError, match=r"export_model: Conv2D '\w+' has the custom activation 'act_test>scaled_tanh'"
    ):
        export_model(model, tmp_path / "m.onnx")
