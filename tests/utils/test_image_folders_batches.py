"""image_dataset_from_directory's batches: values, sizes, streaming, epochs, unreadable files, fit."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from convolab import keras
from convolab.utils.image_folder_dataset import UnreadableImageWarning
from support.image_folders import COLOURS, make_folder, solid

load = keras.utils.image_dataset_from_directory
L = keras.layers


def class_of(path, root):
    return os.path.relpath(path, root).split(os.sep)[0]


@pytest.mark.parametrize("ext", ["png", "bmp", "gif"])
def test_solid_colour_gives_the_exact_colour(tmp_path, ext):
    solid(tmp_path / "a" / f"x.{ext}", (200, 10, 30), size=(7, 5))
    x, y = load(tmp_path, image_size=(3, 4), verbose=False)[0]
    assert x.dtype == np.float32 and x.shape == (1, 3, 4, 3) and y.tolist() == [0]
    assert np.array_equal(x[0], np.broadcast_to(np.float32([200, 10, 30]), (3, 4, 3)))


def test_jpeg_colour_is_close(tmp_path):
    solid(tmp_path / "a" / "x.jpg", (200, 10, 30))
    x, _ = load(tmp_path, image_size=(5, 5), verbose=False)[0]
    assert np.abs(x - np.float32([200, 10, 30])).max() <= 4


@pytest.mark.parametrize(
    "color_mode, expected",
    [
        ("grayscale", [round(0.299 * 200 + 0.587 * 10 + 0.114 * 30)]),
        ("rgb", [200, 10, 30]),
        ("rgba", [200, 10, 30, 255]),
    ],
)
def test_color_modes(tmp_path, color_mode, expected):
    solid(tmp_path / "a" / "x.png", (200, 10, 30))
    solid(tmp_path / "a" / "y.png", 77, mode="L")
    x, _ = load(tmp_path, color_mode=color_mode, image_size=(2, 2), shuffle=False, verbose=False)[0]
    assert x.shape == (2, 2, 2, len(expected))
    assert np.array_equal(x[0, 0, 0], np.float32(expected))
    grey = {"grayscale": [77], "rgb": [77] * 3, "rgba": [77] * 3 + [255]}[color_mode]
    assert np.array_equal(x[1, 1, 1], np.float32(grey))


def two_halves(path, size=(8, 4)):
    """Left half red, right half blue; size = (width, height)."""
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[:, : size[0] // 2] = (255, 0, 0)
    a[:, size[0] // 2 :] = (0, 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def test_resizing_with_nearest_keeps_the_halves(tmp_path):
    two_halves(tmp_path / "a" / "x.png")
    x, _ = load(tmp_path, image_size=(2, 4), interpolation="nearest", verbose=False)[0]
    assert x[0, :, :, 0].tolist() == [[255, 255, 0, 0]] * 2
    assert x[0, :, :, 2].tolist() == [[0, 0, 255, 255]] * 2
    big, _ = load(tmp_path, image_size=(8, 16), interpolation="bilinear", verbose=False)[0]
    assert big.shape == (1, 8, 16, 3)
    assert big[0, :, 0, 0].tolist() == [255] * 8 and big[0, :, -1, 2].tolist() == [255] * 8


def test_crop_to_aspect_ratio_takes_the_centre(tmp_path):
    a = np.zeros((4, 10, 3), np.uint8)  # 3 red columns, 4 green, 3 blue
    a[:, :3] = (255, 0, 0)
    a[:, 3:7] = (0, 255, 0)
    a[:, 7:] = (0, 0, 255)
    (tmp_path / "a").mkdir()
    Image.fromarray(a).save(tmp_path / "a" / "x.png")
    x, _ = load(tmp_path, image_size=(4, 4), crop_to_aspect_ratio=True, verbose=False)[0]
    assert np.array_equal(x[0], np.broadcast_to(np.float32([0, 255, 0]), (4, 4, 3)))
    squeezed, _ = load(tmp_path, image_size=(4, 4), verbose=False)[0]
    assert squeezed[0, 0, 0, 0] > 0  # without cropping the red band stays


def test_pad_to_aspect_ratio_pads_with_zeros(tmp_path):
    solid(tmp_path / "a" / "x.png", (255, 255, 255), size=(8, 4))
    x, _ = load(tmp_path, image_size=(8, 8), pad_to_aspect_ratio=True, verbose=False)[0]
    assert x[0, :, 0, 0].tolist() == [0, 0] + [255] * 4 + [0, 0]


@pytest.mark.parametrize("label_mode", ["int", "categorical", "binary"])
def test_label_modes(tmp_path, label_mode):
    make_folder(tmp_path, corrupt=False)
    classes = ["cat", "dog"] if label_mode == "binary" else None
    ds = load(
        tmp_path, label_mode=label_mode, class_names=classes, seed=3, batch_size=64, image_size=(4, 4), verbose=False
    )
    _, y = ds[0]
    truth = np.array([ds.class_names.index(class_of(p, tmp_path)) for p in ds.file_paths])
    if label_mode == "int":
        assert y.dtype == np.int32 and np.array_equal(y, truth)
    elif label_mode == "categorical":
        assert y.dtype == np.float32 and np.array_equal(y, np.eye(3, dtype=np.float32)[truth])
    else:
        assert y.dtype == np.float32 and np.array_equal(y, truth[:, None].astype(np.float32))


def test_labels_match_image_content(tmp_path):
    make_folder(tmp_path, per_format=2, corrupt=False)
    ds = load(tmp_path, seed=5, batch_size=4, image_size=(4, 4), verbose=False)
    for i in range(len(ds)):
        x, y = ds[i]
        for image, label in zip(x, y):
            r, g, b = image[0, 0]
            name = ds.class_names[label]
            if name == "dog" and r == g == b:
                continue  # the grey dog
            assert (r, g, b)[list(COLOURS).index(name)] > 150


class OpenCounter:
    """Records every path PIL.Image.open is asked for."""

    def __init__(self, monkeypatch):
        self.paths = []
        real = Image.open

        def counting_open(fp, *args, **kwargs):
            self.paths.append(os.fspath(fp))
            return real(fp, *args, **kwargs)

        monkeypatch.setattr(Image, "open", counting_open)


def test_streaming_opens_only_the_files_of_the_batch(tmp_path, monkeypatch):
    make_folder(tmp_path, per_format=2, corrupt=False)
    opened = OpenCounter(monkeypatch)
    ds = load(tmp_path, seed=9, batch_size=4, image_size=(4, 4), verbose=False)
    assert opened.paths == []  # listing reads no image
    ds[2]
    assert opened.paths == ds.file_paths[8:12]
    ds[len(ds) - 1]
    assert opened.paths[4:] == ds.file_paths[(len(ds) - 1) * 4 :]


def epoch_paths(ds, opened):
    start = len(opened.paths)
    for i in range(len(ds)):
        ds[i]
    ds.on_epoch_end()
    return opened.paths[start:]


def test_reshuffled_each_epoch_seeded(tmp_path, monkeypatch):
    make_folder(tmp_path, per_format=2, corrupt=False)
    opened = OpenCounter(monkeypatch)
    ds = load(tmp_path, seed=11, batch_size=5, image_size=(2, 2), verbose=False)
    epochs = [epoch_paths(ds, opened) for _ in range(3)]
    assert epochs[0] == ds.file_paths  # the first epoch follows file_paths
    assert epochs[1] != epochs[0] and epochs[2] != epochs[1]
    assert all(sorted(e) == sorted(ds.file_paths) for e in epochs)
    again = load(tmp_path, seed=11, batch_size=5, image_size=(2, 2), verbose=False)
    assert [epoch_paths(again, opened) for _ in range(3)] == epochs
    fixed = load(tmp_path, shuffle=False, batch_size=5, image_size=(2, 2), verbose=False)
    assert epoch_paths(fixed, opened) == epoch_paths(fixed, opened) == sorted(ds.file_paths)


def test_corrupt_file_is_skipped_with_a_warning_and_kept(tmp_path, monkeypatch):
    make_folder(tmp_path)
    broken = tmp_path / "dog" / "broken.jpg"
    before = broken.read_bytes()
    ds = load(tmp_path, shuffle=False, batch_size=4, image_size=(4, 4), verbose=False)
    assert len(ds) == 4 and str(broken) in ds.file_paths
    with pytest.warns(UnreadableImageWarning, match=r"skipping '.*broken\.jpg'.*left in place.*batch 1 of 4"):
        x, y = ds[1]  # cat/more/deep.png, dog/broken.jpg, dog0.bmp, dog0.gif
    assert x.shape == (3, 4, 4, 3) and y.tolist() == [0, 1, 1]
    assert ds.skipped_files == [str(broken)]
    opened = OpenCounter(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning, no second read
        x, y = ds[1]
    assert x.shape[0] == 3 and str(broken) not in opened.paths
    assert broken.read_bytes() == before  # never deleted or changed
    assert len(ds) == 4 and str(broken) in ds.file_paths


def test_a_batch_of_only_unreadable_files_raises(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.png").write_bytes(b"nope")
    solid(tmp_path / "a" / "good.png", (1, 1, 1))
    ds = load(tmp_path, shuffle=False, batch_size=1, image_size=(2, 2), verbose=False)
    with pytest.warns(UnreadableImageWarning), pytest.raises(ValueError, match=r"every file of batch 0.*bad\.png"):
        ds[0]
    assert ds[1][0].shape == (1, 2, 2, 3)
    with pytest.raises(IndexError, match="batch index 2 out of range for 2 batches"):
        ds[2]


def test_short_fit_on_a_folder(tmp_path):
    make_folder(tmp_path, per_format=3)
    keras.utils.set_random_seed(0)
    train, val = load(
        tmp_path, validation_split=0.25, subset="both", seed=2, batch_size=8, image_size=(8, 8), verbose=False
    )
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Rescaling(1 / 255),
            L.Conv2D(4, 3, activation="relu"),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.warns(UnreadableImageWarning) as record:
        history = model.fit(train, validation_data=val, epochs=3, verbose=0)
    assert len([w for w in record if issubclass(w.category, UnreadableImageWarning)]) == 1
    assert set(history.history) >= {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert len(history.history["loss"]) == 3 and np.all(np.isfinite(history.history["loss"]))
    assert model.predict(val, verbose=0).shape[1] == 3
