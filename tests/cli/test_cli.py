"""The convolab command: every subcommand in-process (main(argv) -> exit code), errors as one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

from convolab import datasets, zoo  # noqa: E402
from convolab.cli import main  # noqa: E402
from support.paths import SRC  # noqa: E402


def one_error_line(err, starts="convolab: error: "):
    """stderr holds exactly one line, the error, and no traceback."""
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(starts), err
    assert "Traceback" not in err
    return lines[0]


def fake_digits(n, size=28, channels=None, seed=0):
    """uint8 images whose class (0 or 1: vertical or horizontal bar) a CNN learns in one epoch."""
    rng = np.random.default_rng(seed)
    shape = (n, size, size) if channels is None else (n, size, size, channels)
    x = (rng.random(shape) * 40).astype(np.uint8)
    y = rng.integers(0, 2, n).astype(np.uint8)
    for i in range(n):
        r, c = rng.integers(2, size - 12, 2)
        if y[i] == 0:
            x[i, r : r + 10, c : c + 2] = 255
        else:
            x[i, r : r + 2, c : c + 10] = 255
    return x, y


def png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


@pytest.fixture
def fake_datasets(monkeypatch):
    """Small stand-ins for mnist/fashion_mnist/cifar10 with the documented load_data signature."""
    calls = []

    def loader(name, size, channels):
        def load_data(data_dir=None, cache_dir=None, download=True):
            calls.append((name, data_dir, download))
            (xtr, ytr), (xte, yte) = fake_digits(160, size, channels, 1), fake_digits(40, size, channels, 2)
            if name == "cifar10":  # Keras's CIFAR-10 labels are (N, 1)
                ytr, yte = ytr[:, None], yte[:, None]
            return (xtr, ytr), (xte, yte)

        return type("Loader", (), {"load_data": staticmethod(load_data)})

    monkeypatch.setattr(datasets, "mnist", loader("mnist", 28, None))
    monkeypatch.setattr(datasets, "fashion_mnist", loader("fashion_mnist", 28, None))
    monkeypatch.setattr(datasets, "cifar10", loader("cifar10", 32, 3))
    return calls


# -- the parser --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["demo", "--help"],
        ["train", "--help"],
        ["filters", "--help"],
        ["predict", "--help"],
        ["evaluate", "--help"],
        ["--version"],
    ],
)
def test_help_and_version(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "convolab" in out


def test_no_command_prints_help_and_returns_2(capsys):
    assert main([]) == 2
    assert "usage: convolab" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--model", "resnet", "--dataset", "mnist"], "invalid choice: 'resnet'"),
        (["train", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
        (["train", "--model", "simple"], "--dataset"),
        (["train", "--dataset", "mnist", "--epochs", "0"], "whole number >= 1"),
        (["train", "--dataset", "mnist", "--val-split", "1.5"], "between 0 and 1"),
        (["bake"], "invalid choice: 'bake'"),
        (["filters", "x.png"], "--kernel"),
        (["demo", "--samples", "10"], "at least 50"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert fragment in line


# -- filters -------------------------------------------------------------------------------------


@pytest.fixture
def images(tmp_path):
    x, _ = fake_digits(2)
    rgb = (np.random.default_rng(0).random((40, 30, 3)) * 255).astype(np.uint8)
    Image.fromarray(x[1]).convert("RGB").save(tmp_path / "d.jpg")
    return [png(tmp_path / "digit.png", x[0]), png(tmp_path / "photo.png", rgb), str(tmp_path / "d.jpg")]


@pytest.mark.parametrize("kernel", ["sobel_x", "gaussian-blur", "[[-1., 0., 1.], [-1., 0., 1.]]", "[[1, 2], [3, 4]]"])
def test_filters_writes_the_figure(capsys, tmp_path, images, kernel):
    out = tmp_path / "fig.png"
    assert main(["filters", *images, "--kernel", kernel, "--out", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300


def test_filters_grey_and_valid(tmp_path, images):
    out = tmp_path / "fig.png"
    assert main(["filters", images[1], "--kernel", "laplacian", "--grey", "--padding", "valid", "--out", str(out)]) == 0
    assert out.exists()


@pytest.mark.parametrize(
    "kernel, fragment",
    [
        ("[[1, 2], [3]]", "same length"),
        ("[1, 2, 3]", "2-D"),
        ("[[]]", "empty"),
        ("[['a']]", "numbers"),
        ("[[1, 2", "cannot read"),
        ("__import__('os')", "unknown kernel name"),
        ("nope", "known kernels: vertical_edge"),
    ],
)
def test_filters_bad_kernel_is_a_usage_error(capsys, images, kernel, fragment):
    assert main(["filters", images[0], "--kernel", kernel]) == 2
    assert fragment in one_error_line(capsys.readouterr().err)


def test_filters_runtime_errors(capsys, tmp_path, images):
    assert main(["filters", str(tmp_path / "missing.png"), "--kernel", "sobel_x"]) == 1
    assert "missing.png" in one_error_line(capsys.readouterr().err)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a PNG")
    assert main(["filters", str(bad), "--kernel", "sobel_x"]) == 1
    assert "cannot read image" in one_error_line(capsys.readouterr().err)
    assert main(["filters", str(tmp_path), "--kernel", "sobel_x"]) == 1
    one_error_line(capsys.readouterr().err)
    big = "[" + ",".join(["[" + ",".join(["1"] * 30) + "]"] * 30) + "]"
    assert main(["filters", images[0], "--kernel", big, "--padding", "valid", "--out", str(tmp_path / "o.png")]) == 1
    assert "larger than the images" in one_error_line(capsys.readouterr().err)


# -- demo ------------------------------------------------------------------------------------------

DEMO_FIGURES = [
    "01_vertical_edge_filter.png",
    "02_horizontal_edge_filter.png",
    "03_training_curves.png",
    "04_learned_filters.png",
    "05_feature_maps.png",
    "06_confusion_matrix.png",
    "07_misclassified.png",
]


def test_demo_on_a_stand_in_sample(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "load_sample", lambda: fake_digits(300), raising=False)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--samples", "250"]) == 0
    stdout = capsys.readouterr().out
    assert "200 digits for training, 50 for validation" in stdout
    assert "validation accuracy after 1 epoch(s)" in stdout
    assert str(out.resolve()) in stdout
    for name in DEMO_FIGURES:
        with Image.open(out / name) as im:
            assert im.format == "PNG"
    record = json.loads((out / "history.json").read_text())
    assert record["params"] == 52084 and len(record["history"]["val_acc"]) == 1
    assert len(record["seconds_per_epoch"]) == 1


def test_demo_without_the_sample_is_a_runtime_error(capsys, monkeypatch, tmp_path):
    def unavailable():
        raise OSError("the bundled MNIST sample file is missing from this installation")

    monkeypatch.setattr(datasets, "load_sample", unavailable, raising=False)
    assert main(["demo", "--out", str(tmp_path)]) == 1
    assert "bundled MNIST sample" in one_error_line(capsys.readouterr().err)


# -- train / evaluate / predict ----------------------------------------------------------------------


def test_train_writes_curves_history_and_model(capsys, tmp_path, fake_datasets):
    out = tmp_path / "run"
    argv = [
        "train",
        "--model",
        "simple",
        "--dataset",
        "mnist",
        "--epochs",
        "2",
        "--seed",
        "0",
        "--batch-size",
        "16",
        "--data-dir",
        str(tmp_path),
        "--offline",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Epoch 2/2" in captured.out and "val_acc" in captured.out
    assert fake_datasets == [("mnist", str(tmp_path), False)]
    record = json.loads((out / "history.json").read_text())
    assert record["model"] == "simple" and record["params"] == 52084 and record["validation"] == "test set"
    assert len(record["history"]["val_acc"]) == 2 and len(record["seconds_per_epoch"]) == 2
    with Image.open(out / "training_curves.png") as im:
        assert im.format == "PNG"
    try:
        import convolab.saving  # noqa: F401
    except ImportError:
        assert "model not saved" in captured.err
    else:
        assert (out / "model.convolab").exists()


def test_train_lenet_on_cifar_with_val_split(capsys, tmp_path, fake_datasets):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "cifar10",
                "--epochs",
                "1",
                "--val-split",
                "0.25",
                "--samples",
                "120",
                "--optimizer",
                "sgd",
                "--learning-rate",
                "0.05",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    assert "test set: loss" in stdout
    record = json.loads((out / "history.json").read_text())
    assert record["model"] == "lenet" and record["optimizer"] == "SGD" and record["train_samples"] == 120
    assert record["params"] == 62006 and "test" in record


def test_train_multi_on_fashion_mnist(tmp_path, fake_datasets):
    assert (
        main(["train", "--model", "multi", "--dataset", "fashion_mnist", "--epochs", "1", "--out", str(tmp_path)]) == 0
    )
    assert json.loads((tmp_path / "history.json").read_text())["params"] == 8490


def test_train_when_the_dataset_is_unavailable(capsys, monkeypatch, tmp_path):
    error = getattr(datasets, "DatasetUnavailableError", OSError)

    def load_data(data_dir=None, cache_dir=None, download=True):
        raise error("MNIST is not available: 4 file(s) missing.\nPut them in /somewhere")

    monkeypatch.setattr(datasets, "mnist", type("L", (), {"load_data": staticmethod(load_data)}))
    assert main(["train", "--dataset", "mnist", "--out", str(tmp_path)]) == 1
    assert "MNIST is not available" in one_error_line(capsys.readouterr().err)


def test_learning_rate_needs_an_optimizer(capsys, fake_datasets):
    assert main(["train", "--dataset", "mnist", "--learning-rate", "0.1"]) == 2
    assert "--optimizer" in one_error_line(capsys.readouterr().err)


@pytest.fixture
def saved_model(tmp_path):
    saving = pytest.importorskip("convolab.saving")
    from convolab.random import set_random_seed

    from convolab import keras

    set_random_seed(1)
    model = zoo.simple_cnn(num_classes=2, optimizer=keras.optimizers.Adam(learning_rate=3e-3))
    x, y = fake_digits(300, seed=11)
    model.fit(x[..., None] / 255.0, y, epochs=5, verbose=0)  # 100% on 200 fresh samples
    path = tmp_path / "model.convolab"
    saving.save_model(model, str(path))
    return path


def test_predict_prints_class_and_probability(capsys, tmp_path, saved_model):
    x, y = fake_digits(4, seed=5)
    paths = [png(tmp_path / f"{i}.png", im) for i, im in enumerate(x)]
    big = Image.fromarray(x[0]).resize((56, 56)).convert("RGB")
    big.save(tmp_path / "big.jpg")
    paths.append(str(tmp_path / "big.jpg"))
    assert main(["predict", str(saved_model), *paths, "--classes", "vertical,horizontal"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 5
    names = [l.split(": ")[1].split(" (")[0] for l in lines]
    assert names[:4] == [["vertical", "horizontal"][int(v)] for v in y]
    assert all(l.rstrip().endswith("%)") for l in lines)
    assert "resized from 56x56 to 28x28" in captured.err and "greyscale" in captured.err


def test_predict_errors(capsys, tmp_path, saved_model):
    good = png(tmp_path / "ok.png", fake_digits(1)[0][0])
    assert main(["predict", str(tmp_path / "nope.convolab"), good]) == 1
    assert "nope.convolab" in one_error_line(capsys.readouterr().err)
    junk = tmp_path / "junk.convolab"
    junk.write_bytes(b"\x00" * 64)
    assert main(["predict", str(junk), good]) == 1
    one_error_line(capsys.readouterr().err)
    assert main(["predict", str(saved_model), str(tmp_path / "missing.png")]) == 1
    assert "missing.png" in one_error_line(capsys.readouterr().err)
    assert main(["predict", str(saved_model), good, "--classes", "a,b,c"]) == 2
    assert "3 names" in one_error_line(capsys.readouterr().err)


def test_evaluate(capsys, tmp_path, saved_model, fake_datasets):
    out = tmp_path / "eval"
    assert main(["evaluate", str(saved_model), "--dataset", "mnist", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "mnist test set (40 images): loss:" in stdout and "acc:" in stdout
    record = json.loads((out / "evaluation.json").read_text())
    assert 0 <= record["acc"] <= 1 and record["samples"] == 40
    assert (out / "confusion_matrix.png").exists()
    assert main(["evaluate", str(saved_model), "--dataset", "cifar10"]) == 1
    assert "(28, 28, 1)" in one_error_line(capsys.readouterr().err)


# -- as a real process ---------------------------------------------------------------------------


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "convolab.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.skipif(not hasattr(datasets, "load_sample"), reason="convolab.datasets.load_sample not available")
def test_python_m_convolab_cli_demo(tmp_path):
    result = _run("demo", "--samples", "600", "--epochs", "1", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "validation accuracy" in result.stdout
    assert sorted(p.name for p in (tmp_path / "demo").glob("*.png")) == DEMO_FIGURES


def test_python_m_convolab_cli_error_is_one_line(tmp_path):
    result = _run("filters", str(tmp_path / "none.png"), "--kernel", "sobel_x")
    assert result.returncode == 1
    one_error_line(result.stderr)
    result = _run("train", "--model", "resnet", "--dataset", "mnist")
    assert result.returncode == 2
    one_error_line(result.stderr)


def test_filters_shrinks_big_images(capsys, tmp_path):
    big = png(tmp_path / "big.png", (np.random.default_rng(0).random((900, 600)) * 255).astype(np.uint8))
    assert main(["filters", big, "--kernel", "sobel_x", "--max-size", "300", "--out", str(tmp_path / "o.png")]) == 0
    assert "shrunk from 600x900 to 200x300" in capsys.readouterr().err


def test_train_from_an_npz_subset(capsys, tmp_path):
    (xtr, ytr), (xte, yte) = fake_digits(64, 32, 3, 1), fake_digits(16, 32, 3, 2)
    np.savez(tmp_path / "subset.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "cifar10",
                "--epochs",
                "1",
                "--data-dir",
                str(tmp_path / "subset.npz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads((out / "history.json").read_text())["train_samples"] == 64
    np.savez(tmp_path / "wrong.npz", x_train=xtr)
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "wrong.npz")]) == 1
    assert "lacks y_train, x_test, y_test" in one_error_line(capsys.readouterr().err)


def test_export_writes_onnx_that_matches_predict(tmp_path, capsys):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import numpy as np

    from convolab import zoo
    from convolab.cli import main

    model = zoo.multi_cnn()
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    model_path = tmp_path / "m.convolab"
    model.save(model_path)
    out = tmp_path / "m.onnx"
    assert main(["export", str(model_path), str(out)]) == 0
    sess = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_export_bad_model_file_is_one_line(tmp_path, capsys):
    from convolab.cli import main

    bad = tmp_path / "bad.convolab"
    bad.write_bytes(b"not a model")
    assert main(["export", str(bad), str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("convolab: error:")
