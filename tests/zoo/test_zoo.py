"""convolab.zoo: the lesson's three models, layer by layer, compiled as the lesson compiles them."""

import numpy as np
import pytest

from convolab import keras, losses, optimizers, zoo
from convolab.random import set_random_seed

# (layer class, output shape, params) rows of the lesson's model.summary() tables
LESSON_TABLES = {
    "simple_cnn": [("Conv2D", (None, 24, 24, 9), 234), ("Flatten", (None, 5184), 0), ("Dense", (None, 10), 51850)],
    "multi_cnn": [
        ("Conv2D", (None, 24, 24, 10), 260),
        ("MaxPooling2D", (None, 12, 12, 10), 0),
        ("Conv2D", (None, 8, 8, 20), 5020),
        ("MaxPooling2D", (None, 4, 4, 20), 0),
        ("Flatten", (None, 320), 0),
        ("Dense", (None, 10), 3210),
    ],
    "lenet": [
        ("Conv2D", (None, 28, 28, 6), 456),
        ("MaxPooling2D", (None, 14, 14, 6), 0),
        ("Conv2D", (None, 10, 10, 16), 2416),
        ("MaxPooling2D", (None, 5, 5, 16), 0),
        ("Flatten", (None, 400), 0),
        ("Dense", (None, 120), 48120),
        ("Dense", (None, 84), 10164),
        ("Dense", (None, 10), 850),
    ],
}
TOTALS = {"simple_cnn": 52084, "multi_cnn": 8490, "lenet": 62006}


@pytest.mark.parametrize("name", sorted(LESSON_TABLES))
def test_models_match_the_lessons_summary_tables(name):
    model = getattr(zoo, name)()
    rows = [(type(l).__name__, l.output_shape, l.count_params()) for l in model.layers]
    assert rows == LESSON_TABLES[name]
    assert model.count_params() == TOTALS[name]
    lines = []
    model.summary(print_fn=lines.append)
    assert f"Total params: {TOTALS[name]:,}" in "\n".join(lines)


def test_layer_hyper_parameters():
    conv, _, dense = zoo.simple_cnn().layers
    assert (conv.filters, conv.kernel_size, conv.activation) == (9, (5, 5), "relu")
    assert dense.activation in (None, "linear")
    lenet = zoo.lenet()
    c1, p1, c2 = lenet.layers[:3]
    assert (c1.filters, c1.kernel_size, c1.strides, c1.activation) == (6, (5, 5), (1, 1), "relu")
    assert (p1.pool_size, p1.strides) == ((2, 2), (2, 2))
    assert [l.activation for l in lenet.layers[-3:]] == ["relu", "relu", "softmax"]


@pytest.mark.parametrize("builder", [zoo.simple_cnn, zoo.multi_cnn])
def test_mnist_models_compile_as_the_lesson(builder):
    model = builder()
    assert isinstance(model.optimizer, optimizers.RMSprop)  # Keras's compile default
    assert isinstance(model.loss, losses.SparseCategoricalCrossentropy) and model.loss.from_logits
    assert model.metrics_names == ["loss", "acc"]


def test_lenet_compiles_as_the_lesson():
    model = zoo.lenet()
    assert isinstance(model.optimizer, optimizers.Adam)
    assert isinstance(model.loss, losses.SparseCategoricalCrossentropy) and not model.loss.from_logits
    assert model.metrics_names == ["loss", "acc"]


@pytest.mark.parametrize("builder", [zoo.simple_cnn, zoo.multi_cnn, zoo.lenet])
def test_optimizer_override(builder):
    assert isinstance(builder(optimizer="sgd").optimizer, optimizers.SGD)
    adam = keras.optimizers.Adam(learning_rate=0.01)
    assert builder(optimizer=adam).optimizer is adam


def test_input_shape_override():
    model = zoo.simple_cnn(input_shape=(32, 32, 3))
    assert model.layers[0].count_params() == 5 * 5 * 3 * 9 + 9
    assert model.count_params() == 684 + 28 * 28 * 9 * 10 + 10
    assert zoo.multi_cnn(input_shape=(32, 32, 3)).layers[-1].input_shape == (None, 500)
    assert zoo.lenet(input_shape=(28, 28, 1)).layers[4].output_shape == (None, 256)
    assert zoo.simple_cnn(kernel_size=(3, 3)).layers[0].output_shape == (None, 26, 26, 9)
    with pytest.raises(ValueError, match="larger than its input"):
        zoo.multi_cnn(input_shape=(10, 10, 1))


def test_build_by_name():
    assert zoo.build("lenet").count_params() == 62006
    assert zoo.build("simple", input_shape=(28, 28, 1)).count_params() == 52084
    assert zoo.build("multi", num_classes=3).output_shape == (None, 3)
    with pytest.raises(ValueError, match="simple, multi, lenet"):
        zoo.build("resnet")
    assert set(zoo.DEFAULT_MODEL) == set(zoo.INPUT_SHAPES) == set(zoo.CLASS_NAMES)
    assert zoo.CLASS_NAMES["cifar10"][3] == "cat" and zoo.CLASS_NAMES["fashion_mnist"][9] == "Ankle boot"


def _bars(n, size, channels, seed):
    """Class 0: a vertical bar, class 1: a horizontal bar, at random places, on noise."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, channels)).astype(np.float32) * 0.2
    y = rng.integers(0, 2, n)
    for i in range(n):
        r, c = rng.integers(2, size - 12, 2)
        if y[i] == 0:
            x[i, r : r + 10, c : c + 2] = 1.0
        else:
            x[i, r : r + 2, c : c + 10] = 1.0
    return x, y


@pytest.mark.parametrize(
    "builder, shape", [(zoo.simple_cnn, (28, 28, 1)), (zoo.multi_cnn, (28, 28, 1)), (zoo.lenet, (32, 32, 3))]
)
def test_each_model_learns_bar_orientation(builder, shape):
    set_random_seed(1)
    x, y = _bars(600, shape[0], shape[2], seed=0)
    model = builder(optimizer=keras.optimizers.Adam(learning_rate=3e-3))
    hist = model.fit(x[:480], y[:480], validation_data=(x[480:], y[480:]), epochs=6, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert hist.history["val_acc"][-1] >= 0.95  # 0.975-1.0 over seeds 0-3
