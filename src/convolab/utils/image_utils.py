"""``keras.utils.load_img``, ``img_to_array``, ``array_to_img``, ``save_img``: single images with Pillow.

Channels last (NHWC) throughout, as the rest of convolab; Keras's ``data_format`` argument is refused
unless it is ``"channels_last"``.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

PIL_INTERPOLATION_METHODS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "hamming": Image.Resampling.HAMMING,
    "box": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}
_COLOR_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def _check_data_format(data_format, who):
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"{who}: convolab images are channels last; data_format must be None or "
            f"'channels_last'; got {data_format!r}"
        )


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """Loads an image file into a Pillow image, as Keras's ``load_img``.

    Args:
        path: a str / path, or an ``io.BytesIO``.
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"``.
        target_size: None (keep) or ``(height, width)``.
        interpolation: a key of ``PIL_INTERPOLATION_METHODS`` (default ``"nearest"``, as Keras).
        keep_aspect_ratio: crop the centred window of the target shape before resizing.

    Returns:
        A ``PIL.Image.Image``; the file is read whole and closed.
    """
    if color_mode not in _COLOR_MODES:
        raise ValueError(f"load_img: color_mode must be one of {tuple(_COLOR_MODES)}; got {color_mode!r}")
    if isinstance(path, io.BytesIO):
        img = Image.open(path)
    elif isinstance(path, (str, bytes, os.PathLike)):
        with open(path, "rb") as f:
            img = Image.open(io.BytesIO(f.read()))
    else:
        raise TypeError(f"load_img: path must be a str, a path or an io.BytesIO; got {type(path).__name__}")
    mode = _COLOR_MODES[color_mode]
    if img.mode != mode and not (mode == "L" and img.mode in ("I;16", "I")):
        img = img.convert(mode)
    if target_size is None:
        return img
    height, width = target_size
    if img.size == (width, height):
        return img
    if interpolation not in PIL_INTERPOLATION_METHODS:
        raise ValueError(
            f"load_img: interpolation must be one of {tuple(PIL_INTERPOLATION_METHODS)}; got {interpolation!r}"
        )
    box = None
    if keep_aspect_ratio:
        w, h = img.size
        crop_h, crop_w = min(h, (w * height) // width), min(w, (h * width) // height)
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        box = (left, top, left + crop_w, top + crop_h)
    return img.resize((width, height), PIL_INTERPOLATION_METHODS[interpolation], box=box)


def img_to_array(img, data_format=None, dtype="float32"):
    """A Pillow image as an array ``(H, W, C)`` (grayscale gets ``C = 1``)."""
    _check_data_format(data_format, "img_to_array")
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 2:
        return x.reshape(x.shape + (1,))
    if x.ndim != 3:
        raise ValueError(f"img_to_array: expected an image of 2 or 3 dimensions; got shape {x.shape}")
    return x


def array_to_img(x, data_format=None, scale=True, dtype="float32"):
    """An array ``(H, W, C)`` with C in 1, 3, 4 as a Pillow image.

    Args:
        x: the image.
        scale: stretch values to [0, 255] (min to 0, max to 255), as Keras.
    """
    _check_data_format(data_format, "array_to_img")
    x = np.array(x, dtype=dtype or "float32")
    if x.ndim != 3:
        raise ValueError(f"array_to_img: expected one image of shape (height, width, channels); got shape {x.shape}")
    if scale:
        x = x - np.min(x)
        if np.max(x) != 0:
            x /= np.max(x)
        x *= 255
    channels = x.shape[2]
    if channels == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"array_to_img: expected 1, 3 or 4 channels; got shape {x.shape}")


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Saves an array ``(H, W, C)`` as an image file (``kwargs`` go to ``PIL.Image.save``)."""
    if file_format is not None and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    named = isinstance(path, (str, os.PathLike))
    ext = file_format or (os.path.splitext(os.fspath(path))[1].lstrip(".").lower() if named else "")
    if img.mode == "RGBA" and ext in ("jpeg", "jpg"):
        img = img.convert("RGB")  # JPEG has no alpha channel
    img.save(path, format=file_format, **kwargs)
