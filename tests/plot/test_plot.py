"""convolab.plot: every figure renders headless to a real PNG of the promised size, with content."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from convolab import keras  # noqa: E402
from support.paths import SRC  # noqa: E402
from convolab.callbacks import History  # noqa: E402
from convolab.plot import (  # noqa: E402
    DPI,
    confusion_matrix,
    display_dataset,
    plot_confusion_matrix,
    plot_convolution,
    plot_feature_maps,
    plot_filters,
    plot_misclassified,
    plot_results,
)
from convolab.random import set_random_seed  # noqa: E402


def check_png(path, fig, size_inches=None):
    """A real PNG, of figsize * dpi pixels, not blank: returns the pixel array."""
    path = Path(path)
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = fig.get_size_inches()
        assert im.size == (round(w * DPI), round(h * DPI))
        if size_inches is not None:
            assert im.size == (round(size_inches[0] * DPI), round(size_inches[1] * DPI))
        pixels = np.asarray(im.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 20, f"only {len(colours)} distinct colours: nearly blank"
    non_white = (pixels < 250).any(axis=-1).mean()
    assert non_white > 0.02, f"only {non_white:.1%} of pixels are not white"
    return pixels


def digits(n=6, size=28, seed=0):
    """Bright strokes on black, like MNIST."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size), dtype=np.float32)
    for i in range(n):
        length = size // 3
        r, c = rng.integers(1, size - length - 1, 2)
        x[i, r : r + length, c : c + 2] = 1.0
        x[i, r : r + 2, c : c + length] = 0.8
    return x


def tiny_cnn(input_shape=(12, 12, 1), filters=4, seed=0):
    set_random_seed(seed)
    model = keras.models.Sequential(
        [
            keras.layers.Conv2D(filters, (3, 3), input_shape=input_shape, activation="relu", name="conv"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, name="logits"),
        ]
    )
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"])
    return model


# -- plot_convolution ----------------------------------------------------------------------------


def test_plot_convolution_lesson_call(tmp_path):
    x = digits(5)
    fig = plot_convolution(x, [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]], "Vertical edge filter", save=tmp_path / "v.png")
    assert fig.texts[0].get_text() == "Vertical edge filter" or fig._suptitle.get_text() == "Vertical edge filter"
    assert len(fig.axes) == 2 * (5 + 1)
    pixels = check_png(tmp_path / "v.png", fig)
    # signed result: blue and red both present
    r, g, b = (pixels[..., i].astype(int) for i in range(3))
    assert ((b - r) > 80).any() and ((r - b) > 80).any()


@pytest.mark.parametrize(
    "images",
    [
        (digits(3) * 255).astype(np.uint8),  # uint8 (N, H, W)
        digits(3)[..., None],  # (N, H, W, 1)
        np.random.default_rng(1).random((2, 16, 16, 3)),  # colour
        [digits(1)[0], np.random.default_rng(2).random((20, 30, 3))],  # list of different sizes
        digits(1)[0],  # one (H, W) image
    ],
)
def test_plot_convolution_accepts_every_layout(tmp_path, images):
    fig = plot_convolution(images, "gaussian_blur", save=tmp_path / "c.png")
    n = len(images) if isinstance(images, list) or np.ndim(images) >= 3 else 1
    assert len(fig.axes) == 2 * (n + 1)
    check_png(tmp_path / "c.png", fig)


def test_plot_convolution_bad_kernel_raises_before_drawing():
    with pytest.raises(ValueError, match="2-D"):
        plot_convolution(digits(2), [1, 2, 3])


# -- plot_results ------------------------------------------------------------------------------


def _history(acc_key):
    h = History()
    for e, (a, va, l, vl) in enumerate([(0.8, 0.85, 0.6, 0.5), (0.9, 0.88, 0.3, 0.35), (0.95, 0.9, 0.2, 0.3)]):
        h.on_epoch_end(e, {"loss": l, acc_key: a, "val_loss": vl, "val_" + acc_key: va})
    return h


@pytest.mark.parametrize("acc_key", ["acc", "accuracy"])
@pytest.mark.parametrize("as_dict", [False, True])
def test_plot_results_from_history_or_dict(tmp_path, acc_key, as_dict):
    h = _history(acc_key)
    fig = plot_results(h.history if as_dict else h, save=tmp_path / "r.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Accuracy", "Loss"]
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]
        np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), [0.85, 0.88, 0.9])
    check_png(tmp_path / "r.png", fig, size_inches=(10, 3.6))


def test_plot_results_without_validation_or_accuracy():
    fig = plot_results({"loss": [1.0, 0.5]})
    assert [ax.get_title() for ax in fig.axes] == ["Loss"]
    assert len(fig.axes[0].lines) == 1
    with pytest.raises(ValueError, match="keys"):
        plot_results({"lr": [0.1]})
    with pytest.raises(TypeError):
        plot_results([1, 2, 3])


# -- display_dataset ---------------------------------------------------------------------------


def test_display_dataset_with_cifar_style_labels(tmp_path):
    x = (np.random.default_rng(0).random((12, 32, 32, 3)) * 255).astype(np.uint8)
    y = np.arange(12).reshape(-1, 1) % 3  # Keras's CIFAR-10 labels are (N, 1)
    fig = display_dataset(x, y, classes=["cat", "dog", "frog"], save=tmp_path / "d.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["cat", "dog", "frog", "cat", "dog", "frog", "cat", "dog", "frog", "cat"]
    check_png(tmp_path / "d.png", fig, size_inches=(15, 1.7))


def test_display_dataset_grid_and_numeric_labels(tmp_path):
    fig = display_dataset(digits(15), np.arange(15), n=15, save=tmp_path / "d.png")
    assert [ax.get_title() for ax in fig.axes][:3] == ["0", "1", "2"]
    check_png(tmp_path / "d.png", fig, size_inches=(15, 3.4))
    assert len(display_dataset(digits(4), n=10).axes) == 4  # n is capped at len(x)
    with pytest.raises(ValueError, match="only 2 labels"):
        display_dataset(digits(4), [1, 2])
    with pytest.raises(TypeError, match="pass n=5"):
        display_dataset(digits(4), [1, 2, 3, 4], 5)  # tfcv's positional order was (x, y, n)


# -- plot_filters --------------------------------------------------------------------------------


def test_plot_filters_grey_first_layer(tmp_path):
    model = tiny_cnn(filters=4)
    fig = plot_filters(model, save=tmp_path / "f.png")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 4
    np.testing.assert_array_equal(images[2].get_array(), model.layers[0].kernel[:, :, 0, 2])
    check_png(tmp_path / "f.png", fig)
    # the layer itself, or a bare kernel array, work too
    assert len([a for a in plot_filters(model.layers[0]).axes if a.images]) == 4
    assert len([a for a in plot_filters(np.ones((3, 3, 1, 12))).axes if a.images]) == 12


def test_plot_filters_rgb_are_colour_images(tmp_path):
    model = tiny_cnn(input_shape=(12, 12, 3), filters=6)
    fig = plot_filters(model, save=tmp_path / "f.png")
    arrays = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(arrays) == 6 and all(a.shape == (3, 3, 3) for a in arrays)
    assert all(0 <= float(a.min()) and float(a.max()) <= 1 for a in arrays)
    check_png(tmp_path / "f.png", fig)


def test_plot_filters_errors():
    dense_only = keras.models.Sequential([keras.layers.Dense(3, input_shape=(4,))])
    with pytest.raises(ValueError, match="no Conv2D"):
        plot_filters(dense_only)
    with pytest.raises(ValueError, match="kernel"):
        plot_filters(np.ones((3, 3)))


# -- plot_feature_maps ---------------------------------------------------------------------------


@pytest.mark.parametrize("layer", [0, "conv"])
def test_plot_feature_maps_of_the_convolution(tmp_path, layer):
    model = tiny_cnn(filters=4)
    image = digits(1, size=12)[0]  # (H, W): the channel axis is added
    fig = plot_feature_maps(model, image, layer=layer, save=tmp_path / "m.png")
    maps = [ax.images[0].get_array() for ax in fig.axes if ax.images][1:]  # first panel: the input
    assert len(maps) == 4
    want = model.layers[0].call(image[None, :, :, None].astype(np.float32))[0]
    np.testing.assert_allclose(maps[3], want[:, :, 3], rtol=1e-6)
    check_png(tmp_path / "m.png", fig)


def test_plot_feature_maps_of_later_layers(tmp_path):
    model = tiny_cnn(filters=4)
    image = digits(1, size=12)[0][..., None]
    fig = plot_feature_maps(model, image, layer="pool")
    assert [ax.images[0].get_array().shape for ax in fig.axes if ax.images][1:] == [(5, 5)] * 4
    fig = plot_feature_maps(model, image[None], layer=-1, save=tmp_path / "bars.png")
    assert len(fig.axes[1].patches) == 3  # one bar per output unit
    check_png(tmp_path / "bars.png", fig)


def test_plot_feature_maps_errors():
    model = tiny_cnn()
    with pytest.raises(ValueError, match=r"\(12, 12, 1\)"):
        plot_feature_maps(model, np.zeros((28, 28)))
    with pytest.raises(ValueError, match="no layer named"):
        plot_feature_maps(model, np.zeros((12, 12)), layer="nope")
    with pytest.raises(ValueError, match="out of range"):
        plot_feature_maps(model, np.zeros((12, 12)), layer=9)


# -- confusion matrix ------------------------------------------------------------------------------


def test_confusion_matrix_counts():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2])
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    scores = np.eye(4)[[0, 1, 1, 3]]  # probabilities: argmax taken; width gives the size
    np.testing.assert_array_equal(confusion_matrix(np.array([[0], [1], [2], [3]]), scores).diagonal(), [1, 1, 0, 1])
    assert confusion_matrix([0, 1], [1, 0], num_classes=5).shape == (5, 5)
    with pytest.raises(ValueError, match="3 labels"):
        confusion_matrix([0, 1, 2], [0, 1])


def test_plot_confusion_matrix_annotates_counts(tmp_path):
    y_true = np.array([0, 0, 1, 2, 2, 2, 1, 1])
    y_pred = np.array([0, 1, 1, 2, 0, 2, 1, 1])
    fig = plot_confusion_matrix(y_true, y_pred, classes=["a", "b", "c"], save=tmp_path / "cm.png")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["1", "1", "0", "0", "3", "0", "1", "0", "2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert "accuracy 0.750" in fig._suptitle.get_text()
    check_png(tmp_path / "cm.png", fig)


def test_plot_confusion_matrix_from_a_model(tmp_path):
    model = tiny_cnn()
    x = digits(9, size=12)
    y = np.arange(9) % 3
    fig = plot_confusion_matrix(model, x, y=y, save=tmp_path / "cm.png")
    counts = sum(int(t.get_text()) for t in fig.axes[0].texts)
    assert counts == 9
    check_png(tmp_path / "cm.png", fig)
    with pytest.raises(ValueError, match="labels"):
        plot_confusion_matrix(model, x)


# -- plot_misclassified --------------------------------------------------------------------------


class FixedModel:
    """A stand-in model: predicts the given rows of scores."""

    layers = ()
    input_shape = (None, 12, 12, 1)

    def __init__(self, outputs):
        self.outputs = np.asarray(outputs, dtype=np.float32)

    def predict(self, x, batch_size=None, verbose=0):
        return self.outputs[: len(x)]


def test_plot_misclassified_titles(tmp_path):
    x = digits(4, size=12)
    y = np.array([0, 1, 2, 0])
    logits = np.array([[5, 0, 0], [0, 0, 5], [0, 0, 5], [0, 5, 0]])  # samples 1 and 3 are wrong
    fig = plot_misclassified(FixedModel(logits), x, y, classes=["zero", "one", "two"], save=tmp_path / "m.png")
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[0].startswith("true one\npred two (") and titles[1].startswith("true zero\npred one (")
    assert "99%" in titles[0]  # softmax of the logits, not the raw score
    assert "2 of 4" in fig._suptitle.get_text()
    check_png(tmp_path / "m.png", fig)


def test_plot_misclassified_when_all_are_right(tmp_path):
    fig = plot_misclassified(FixedModel(np.eye(3)), digits(3, size=12), [0, 1, 2], save=tmp_path / "m.png")
    assert "all 3 samples" in fig.axes[0].texts[0].get_text()
    with Image.open(tmp_path / "m.png") as im:
        assert im.format == "PNG" and im.size == (600, 200)


def test_plot_misclassified_with_a_real_model(tmp_path):
    model = tiny_cnn()
    fig = plot_misclassified(model, digits(6, size=12), np.zeros(6, dtype=int), n=2)
    assert len([ax for ax in fig.axes if ax.images]) <= 2


# -- the package -------------------------------------------------------------------------------


def test_star_import_gives_the_tfcv_names():
    namespace = {}
    exec("from convolab.plot import *", namespace)
    for name in (
        "plot_convolution",
        "display_dataset",
        "plot_results",
        "plot_filters",
        "plot_feature_maps",
        "plot_confusion_matrix",
        "plot_misclassified",
    ):
        assert callable(namespace[name])


def test_save_without_extension_is_png_and_parent_folders_are_made(tmp_path):
    target = tmp_path / "a" / "b" / "figure"
    fig = plot_results({"loss": [1.0, 0.5], "acc": [0.5, 0.7]}, save=target)
    check_png(target, fig)


def test_figures_are_headless_and_matplotlib_is_loaded_lazily(tmp_path):
    src = SRC
    code = (
        "import sys, numpy as np\n"
        "import convolab.plot as p\n"
        "assert 'matplotlib' not in sys.modules, 'imported eagerly'\n"
        "p.plot_convolution(np.eye(8)[None], 'sobel_x', save=sys.argv[1])\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot used'\n"
    )
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "MPLBACKEND": "", "DISPLAY": ""}
    import os

    env = {**os.environ, **env}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "h.png")], check=True, env=env, timeout=60)
    with Image.open(tmp_path / "h.png") as im:
        assert im.format == "PNG"


def test_figures_display_inline_in_a_jupyter_kernel(monkeypatch):
    IPython = pytest.importorskip("IPython")
    from matplotlib.figure import Figure

    class Formatter:
        def __init__(self):
            self.type_printers = {}

        def for_type(self, cls, fn):
            self.type_printers[cls] = fn

    png_formatter = Formatter()
    shell = type(
        "Shell",
        (),
        {"kernel": object(), "display_formatter": type("D", (), {"formatters": {"image/png": png_formatter}})()},
    )()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    fig = plot_results({"loss": [1.0, 0.5]})
    data = png_formatter.type_printers[Figure](fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
