"""keras.utils.load_img / img_to_array / array_to_img / save_img, and the crop and pad geometry."""

import io

import numpy as np
import pytest
from PIL import Image

from convolab import keras
from convolab.utils.image_decode import crop_box, pad_geometry
from support.image_folders import solid

U = keras.utils


def test_load_img_modes_and_target_size(tmp_path):
    path = solid(tmp_path / "x.png", (200, 10, 30), size=(6, 4))
    img = U.load_img(path)
    assert img.mode == "RGB" and img.size == (6, 4)
    assert U.load_img(str(path), color_mode="grayscale").mode == "L"
    assert U.load_img(path, color_mode="rgba").mode == "RGBA"
    small = U.load_img(path, target_size=(2, 3))
    assert small.size == (3, 2)
    assert U.load_img(io.BytesIO(path.read_bytes())).size == (6, 4)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        U.load_img(path, target_size=(2, 3), interpolation="gaussian")
    with pytest.raises(ValueError, match="color_mode must be one of"):
        U.load_img(path, color_mode="hsv")


def test_img_to_array_and_back(tmp_path):
    path = solid(tmp_path / "x.png", (200, 10, 30), size=(6, 4))
    x = U.img_to_array(U.load_img(path))
    assert x.dtype == np.float32 and x.shape == (4, 6, 3)
    assert np.array_equal(x[0, 0], [200, 10, 30])
    assert U.img_to_array(U.load_img(path, color_mode="grayscale")).shape == (4, 6, 1)
    back = U.array_to_img(x, scale=False)
    assert back.mode == "RGB" and np.array_equal(np.asarray(back), x.astype(np.uint8))
    stretched = np.asarray(U.array_to_img(np.float32([[[0.0], [0.5]], [[1.0], [0.25]]])))
    assert stretched.tolist() == [[0, 127], [255, 63]]
    with pytest.raises(ValueError, match="expected one image of shape"):
        U.array_to_img(np.zeros((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="channels last"):
        U.img_to_array(back, data_format="channels_first")


def test_save_img_round_trip(tmp_path):
    x = np.zeros((3, 5, 3), np.float32)
    x[:, :, 1] = 90
    U.save_img(tmp_path / "y.png", x, scale=False)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "y.png")), x.astype(np.uint8))
    U.save_img(tmp_path / "z.jpg", np.zeros((3, 5, 4)))  # RGBA to JPEG: saved as RGB
    assert Image.open(tmp_path / "z.jpg").mode == "RGB"


@pytest.mark.parametrize(
    "h, w, th, tw, box",
    [
        (340, 500, 200, 200, (80, 0, 420, 340)),  # Keras's smart_resize example: a 340 x 340 centred crop
        (4, 10, 4, 4, (3, 0, 7, 4)),
        (10, 4, 4, 4, (0, 3, 4, 7)),
        (6, 6, 3, 6, (0, 1, 6, 4)),
        (5, 5, 5, 5, (0, 0, 5, 5)),
    ],
)
def test_crop_box(h, w, th, tw, box):
    assert crop_box(h, w, th, tw) == box


@pytest.mark.parametrize(
    "h, w, th, tw, geometry",
    [
        (4, 8, 8, 8, (4, 8, 2, 0)),
        (8, 4, 8, 8, (8, 4, 0, 2)),
        (3, 9, 6, 6, (2, 6, 2, 0)),
        (10, 10, 5, 5, (5, 5, 0, 0)),
    ],
)
def test_pad_geometry(h, w, th, tw, geometry):
    assert pad_geometry(h, w, th, tw) == geometry
