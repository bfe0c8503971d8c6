"""The functional API and the tape on graphs: branches, merges, shared layers, custom layers,
subclassed models, each gradient checked against central differences in float64."""

import numpy as np
import pytest

from convolab import keras
from convolab.autodiff import GradientTape

from support.gradcheck import rel_error

L = keras.layers
ops = keras.ops


@pytest.fixture(autouse=True)
def float64():
    keras.backend.set_floatx("float64")
    keras.utils.set_random_seed(0)
    yield
    keras.backend.set_floatx("float32")


def _loss_and_grads(model, x, target):
    with GradientTape() as tape:
        out = model(x, training=True)
        loss = ops.mean(ops.square(ops.subtract(out, target)))
        for extra in model.losses:
            loss = ops.add(loss, extra)
    return float(np.asarray(loss)), tape.gradient(loss, model.trainable_variables)


def _check_gradients(model, x, target, h=1e-6, tol=1e-6):
    """Every trainable weight's tape gradient against central differences of the same loss."""
    _, grads = _loss_and_grads(model, x, target)
    assert all(g is not None for g in grads)
    for v, g in zip(model.trainable_variables, grads):
        w = v.value
        num = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            old = w[i]
            w[i] = old + h
            fp, _ = _loss_and_grads(model, x, target)
            w[i] = old - h
            fm, _ = _loss_and_grads(model, x, target)
            w[i] = old
            num[i] = (fp - fm) / (2 * h)
        assert rel_error(g, num) < tol, (v.path, rel_error(g, num))


def _data(shape, units, n=3):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n,) + shape), rng.standard_normal((n, units))


def test_toy_resnet_block_gradients():
    inputs = keras.Input(shape=(6, 6, 2))
    x = L.Conv2D(3, 3, padding="same", activation="tanh")(inputs)
    y = L.Conv2D(3, 3, padding="same", activation="relu")(x)
    y = L.Conv2D(3, 1)(y)
    x = L.Add()([x, y])  # the skip connection: two paths into one
    x = L.MaxPooling2D()(x)
    outputs = L.Dense(2)(L.Flatten()(x))
    model = keras.Model(inputs, outputs)
    _check_gradients(model, *_data((6, 6, 2), 2))


def test_shared_layer_gradients_sum_over_both_calls():
    a, b = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    shared = L.Dense(3, activation="tanh")
    merged = L.Concatenate()([shared(a), shared(b)])  # one weight matrix, two calls
    model = keras.Model([a, b], L.Dense(2)(merged))
    assert len(model.trainable_variables) == 4
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]
    _check_gradients(model, xs, rng.standard_normal((3, 2)))


def test_every_merge_layer_gradients():
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    da, db = L.Dense(3)(a), L.Dense(3)(b)
    merged = [cls()([da, db]) for cls in (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)]
    model = keras.Model([a, b], L.Dense(2)(L.Concatenate()(merged)))
    rng = np.random.default_rng(3)
    _check_gradients(model, [rng.standard_normal((4, 3)), rng.standard_normal((4, 3))], rng.standard_normal((4, 2)))


class Linear(keras.layers.Layer):
    """Keras's guide's custom layer: weights from add_weight, math from keras.ops, an added loss."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True, name="b")

    def call(self, inputs):
        y = ops.matmul(inputs, self.w) + self.b
        self.add_loss(0.01 * ops.sum(ops.square(self.w)))
        return ops.tanh(y)


def test_custom_layer_in_a_graph_gradients_include_its_added_loss():
    inputs = keras.Input(shape=(5,))
    custom = Linear(4)
    model = keras.Model(inputs, L.Dense(2)(custom(inputs)))
    assert custom.built and model.get_layer(custom.name) is custom
    assert [v.shape for v in custom.trainable_variables] == [(5, 4), (4,)]
    assert model.layers[1].output_shape == (None, 4)  # measured by a dry run
    _check_gradients(model, *_data((5,), 2))
    assert len(model.losses) == 1


class TwoTower(keras.Model):
    def __init__(self):
        super().__init__()
        self.left = L.Dense(3, activation="relu")
        self.right = L.Dense(3, activation="sigmoid")
        self.head = L.Dense(2)

    def call(self, inputs, training=False):
        return self.head(ops.concatenate([self.left(inputs), self.right(inputs) * 2.0], axis=-1))


def test_subclassed_model_gradients():
    model = TwoTower()
    x, t = _data((4,), 2)
    model(x)  # builds the layers
    assert len(model.layers) == 3 and len(model.trainable_variables) == 6
    _check_gradients(model, x, t)


def test_nested_functional_model_as_a_layer():
    inner_in = keras.Input(shape=(4,))
    inner = keras.Model(inner_in, L.Dense(3, activation="tanh")(inner_in), name="inner")
    outer_in = keras.Input(shape=(4,))
    outer = keras.Model(outer_in, L.Dense(2)(inner(outer_in)))
    assert outer.get_layer("inner") is inner
    assert len(outer.trainable_variables) == 4
    _check_gradients(outer, *_data((4,), 2))


def test_layer_called_twice_outside_a_graph_keeps_separate_caches():
    """Eager calls under the tape: the cache lives on the tape node, not the layer."""
    dense = L.Dense(2)
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    with GradientTape() as tape:
        loss = ops.add(ops.sum(dense(x1)), ops.sum(ops.square(dense(x2))))
    gk, gb = tape.gradient(loss, dense.trainable_variables)
    y2 = x2 @ dense.params["kernel"] + dense.params["bias"]
    np.testing.assert_allclose(gk, x1.sum(0)[:, None] + x2.T @ (2 * y2), rtol=1e-10)
    np.testing.assert_allclose(gb, 3 + (2 * y2).sum(0), rtol=1e-10)


def test_graph_structure_and_summary_counts():
    inputs = keras.Input(shape=(8, 8, 3), name="image")
    x = L.Conv2D(4, 3, name="c1")(inputs)
    model = keras.Model(inputs, L.Dense(5, name="d")(L.Flatten()(x)), name="net")
    assert [l.name for l in model.layers] == ["image", "c1", model.layers[2].name, "d"]
    assert model.inputs[0] is inputs and model.outputs[0].shape == (None, 5)
    assert model.count_params() == (3 * 3 * 3 * 4 + 4) + (6 * 6 * 4 * 5 + 5)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    # one chain: Keras's "sequential-like" table (three columns, the InputLayer's row first, 65 wide)
    assert "Connected to" not in text and "Total params: 837" in text
    rows = text.splitlines()
    assert rows[4].split() == ["image", "(InputLayer)", "[(None,", "8,", "8,", "3)]", "0"]
    assert max(len(line) for line in rows) == 65
    # a branch: the "Connected to" column names each layer's inputs (name[node][tensor])
    y = L.Conv2D(4, 1, name="c2")(inputs)
    merged = keras.Model(inputs, L.Concatenate(name="cat")([x, L.Cropping2D(1, name="crop")(y)]), name="net2")
    lines = []
    merged.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "['image[0][0]']" in text and "'c1[0][0]'" in text and "'crop[0][0]'" in text
    assert max(len(line) for line in text.splitlines()) == 98


def test_graph_errors_are_actionable():
    inputs = keras.Input(shape=(4,))
    with pytest.raises(TypeError, match="keras.layers.Add"):
        inputs + inputs
    other = keras.Input(shape=(4,))
    with pytest.raises(ValueError, match="not among the model's inputs"):
        keras.Model(inputs, L.Add()([L.Dense(4)(inputs), other]))
    model = keras.Model(inputs, L.Dense(2)(inputs))
    with pytest.raises(ValueError, match=r"expects shape \(None, 4\)"):
        model(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="at least 2 inputs"):
        L.Add()(inputs)
    with pytest.raises(ValueError, match="cannot be merged"):
        L.Add()([keras.Input(shape=(3,)), keras.Input(shape=(4,))])


def test_gradients_for_weight_arrays_and_apply_gradients_as_keras_code_writes_it():
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, L.Dense(2)(inputs))
    x, t = np.ones((4, 3)), np.zeros((4, 2))
    with GradientTape() as tape:
        loss = ops.mean(ops.square(model(x, training=True) - t))
    grads = tape.gradient(loss, model.trainable_weights)  # Variables, as Keras code passes them
    kernel, bias = model.trainable_weights
    np.testing.assert_allclose(grads[0], x.T @ (2 * (x @ kernel + bias) / 8), rtol=1e-12)
    before = kernel.numpy()
    keras.optimizers.SGD(0.1).apply_gradients(zip(grads, model.trainable_weights))
    np.testing.assert_allclose(kernel, before - 0.1 * grads[0], rtol=1e-12)
    with GradientTape() as tape:
        loss = ops.mean(model(x, training=True))
    with pytest.raises(TypeError, match="sources must be"):
        tape.gradient(loss, [np.ones(3)])


def test_apply_gradients_skips_missing_gradients_with_a_warning():
    w = keras.layers.Dense(1)
    w.build((None, 2))
    k, b = w.trainable_weights
    before = b.numpy()
    with pytest.warns(UserWarning, match="do not exist"):
        keras.optimizers.SGD(1.0).apply_gradients([(np.ones_like(k), k), (None, b)])
    np.testing.assert_array_equal(b, before)


def test_readme_functional_example_runs():
    import re

    from support.paths import REPO

    readme = REPO / "README.md"
    block = re.search(r"## The functional API.*?```python\n(.*?)```", readme.read_text(), re.S).group(1)
    scope = {}
    exec(compile(block.replace("model.summary()", "model.count_params()"), "README.md", "exec"), scope)
    assert np.isfinite(float(np.asarray(scope["loss"])))


def test_compile_refuses_per_output_losses_on_a_one_output_model_instead_of_ignoring_them():
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, L.Dense(2)(inputs))
    with pytest.raises(ValueError, match="loss_weights"):
        model.compile(optimizer="sgd", loss="mse", loss_weights=[1.0])
    with pytest.raises(ValueError, match="several outputs; this one has one"):
        model.compile(optimizer="sgd", loss=["mse", "mse"])
    two = keras.Model(inputs, [L.Dense(2, name="a")(inputs), L.Dense(1, name="b")(inputs)])
    with pytest.raises(ValueError, match="3 entries for 2 outputs"):
        two.compile(optimizer="sgd", loss=["mse", "mse", "mse"])
    with pytest.raises(ValueError, match=r"names outputs \['c'\]"):
        two.compile(optimizer="sgd", loss={"c": "mse"})
    two.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="pass `y` as a list or a dict"):
        two.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    with pytest.raises(ValueError, match="class_weight"):
        two.fit(np.ones((4, 3)), [np.ones((4, 2)), np.ones((4, 1))], class_weight={0: 1.0}, verbose=0)


def test_layer_input_and_output_tensors_build_feature_extractors():
    """The Keras idiom: a new model from an existing one's intermediate layer outputs."""
    inputs = keras.Input(shape=(4,), name="in")
    hidden = L.Dense(3, activation="relu", name="hidden")
    model = keras.Model(inputs, L.Dense(2, name="out")(hidden(inputs)))
    assert hidden.input is inputs and model.get_layer("in").input is inputs
    extractor = keras.Model(model.inputs, model.get_layer("hidden").output)
    x = np.random.default_rng(5).standard_normal((3, 4))
    np.testing.assert_allclose(extractor(x), np.maximum(x @ hidden.params["kernel"] + hidden.params["bias"], 0))
    with pytest.raises(AttributeError, match="has not been called"):
        L.Dense(2).output
