"""``convolab train --data-dir FOLDER``: a tiny folder of images written with Pillow, trained for a few
seconds; the curves, confusion matrix, history (top-k included) and model file are checked."""

import json

import numpy as np
import pytest
from PIL import Image

from convolab import keras
from convolab.cli import main

COLOURS = [(220, 30, 30), (30, 220, 30), (30, 30, 220), (220, 220, 30), (30, 220, 220), (220, 30, 220)]


def make_folder(root, classes=3, per_class=6, size=(12, 10)):
    """``root/class_i/img_j.png``: noisy solid colours, one colour per class; returns the class names."""
    rng = np.random.default_rng(0)
    names = [f"class_{i}" for i in range(classes)]
    for name, colour in zip(names, COLOURS):
        (root / name).mkdir(parents=True)
        for j in range(per_class):
            noise = rng.integers(-25, 26, size=(size[1], size[0], 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"img_{j}.png")
    return names


def one_error_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("convolab: error: "), err
    return lines[0]


def test_resnet20_on_an_image_folder(capsys, tmp_path):
    names = make_folder(tmp_path / "photos")
    out = tmp_path / "out"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(tmp_path / "photos"),
                "--model",
                "resnet20",
                "--image-size",
                "8",
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--top-k",
                "2",
                "--seed",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    assert "3 classes (class_0, class_1, class_2), 15 training and 3 validation images" in stdout
    for figure in ("training_curves.png", "confusion_matrix.png"):
        with Image.open(out / figure) as im:
            assert im.size[0] > 100 and im.size[1] > 100
    record = json.loads((out / "history.json").read_text())
    assert record["class_names"] == names and record["val_samples"] == 3 and record["train_samples"] == 15
    assert record["image_size"] == [8, 8] and record["top_k"] == 2 and record["optimizer"] == "Adam"
    history = record["history"]
    assert set(history) == {"loss", "acc", "top2_acc", "val_loss", "val_acc", "val_top2_acc"}
    assert all(len(v) == 2 for v in history.values())
    assert all(a <= b for a, b in zip(history["val_acc"], history["val_top2_acc"]))
    assert 0 <= record["validation"]["acc"] <= record["validation"]["top2_acc"] <= 1
    model = keras.models.load_model(out / "model.convolab")
    assert model.output_shape == (None, 3) and model.input_shape == (None, 8, 8, 3)


def test_default_top5_with_more_than_five_classes_on_a_lesson_model(tmp_path):
    make_folder(tmp_path / "photos", classes=6, per_class=5)
    out = tmp_path / "out"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(tmp_path / "photos"),
                "--model",
                "simple",
                "--image-size",
                "12,10",
                "--color-mode",
                "grayscale",
                "--epochs",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads((out / "history.json").read_text())
    assert record["top_k"] == 5 and record["optimizer"] == "RMSprop"  # the lesson's compile, plus top-5
    assert {"top5_acc", "val_top5_acc"} <= set(record["history"])
    assert keras.models.load_model(out / "model.convolab").input_shape == (None, 12, 10, 1)
    assert (out / "confusion_matrix.png").is_file()


def test_no_top_k_for_few_classes(tmp_path):
    make_folder(tmp_path / "photos", classes=3, per_class=4)
    out = tmp_path / "out"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(tmp_path / "photos"),
                "--model",
                "lenet",
                "--image-size",
                "16",
                "--epochs",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads((out / "history.json").read_text())
    assert record["top_k"] is None and set(record["history"]) == {"loss", "acc", "val_loss", "val_acc"}


@pytest.mark.parametrize(
    "setup, extra, fragment",
    [
        (lambda root: root.mkdir(), [], "expects one subfolder per class (at least 2); got 0"),
        (
            lambda root: make_folder(root),
            ["--top-k", "3"],
            "--top-k must be smaller than the number of classes (3); got 3",
        ),
        (lambda root: None, [], "is missing"),
        (lambda root: make_folder(root), ["--samples", "4"], "--samples is for --dataset"),
    ],
)
def test_folder_usage_errors(capsys, tmp_path, setup, extra, fragment):
    setup(tmp_path / "photos")
    argv = ["train", "--data-dir", str(tmp_path / "photos"), "--image-size", "8", "--out", str(tmp_path / "o")]
    assert main(argv + extra) == 2
    assert fragment in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("value", ["0", "8,8,8", "big", "8x0"])
def test_bad_image_size(capsys, value):
    assert main(["train", "--data-dir", "x", "--image-size", value]) == 2
    assert "SIZE or HEIGHT,WIDTH" in one_error_line(capsys.readouterr().err)


def test_neither_dataset_nor_folder(capsys):
    assert main(["train", "--model", "simple"]) == 2
    assert "--dataset" in one_error_line(capsys.readouterr().err)
