"""Reading one image file into a float32 ``(H, W, C)`` array, as ``image_dataset_from_directory`` does.

Decoding and resizing are Pillow's: ``bilinear``, ``nearest``, ``bicubic``, ``area`` (Pillow's
``BOX``) and ``lanczos3`` (Pillow's ``LANCZOS``, a = 3). Keras's other names (``lanczos5``,
``gaussian``, ``mitchellcubic``) are TensorFlow kernels that Pillow lacks, so they are refused.
Pillow antialiases when it shrinks, TensorFlow's ``resize`` does not: pixel values of a resized
image differ slightly from Keras's; a solid colour stays exact. Animated GIFs give their first frame.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

RESAMPLING = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
    "lanczos3": Image.Resampling.LANCZOS,
}
KERAS_ONLY_INTERPOLATIONS = ("lanczos5", "gaussian", "mitchellcubic")
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
_MODE = {1: "L", 3: "RGB", 4: "RGBA"}

# What Pillow raises for a file that is not a readable image: not an image at all
# (UnidentifiedImageError is an OSError), truncated data (OSError, EOFError), broken chunks
# (SyntaxError, ValueError) and absurd sizes (DecompressionBombError).
READ_ERRORS = (OSError, EOFError, SyntaxError, ValueError, Image.DecompressionBombError)


def crop_box(height, width, target_height, target_width):
    """The largest centred window of the target aspect ratio, as Keras's ``smart_resize`` takes it.

    Returns:
        ``(left, upper, right, lower)`` in pixels, Pillow's box order.
    """
    crop_height = max(min(height, int(width * target_height / target_width)), 1)
    crop_width = max(min(width, int(height * target_width / target_height)), 1)
    top = int((height - crop_height) / 2)
    left = int((width - crop_width) / 2)
    return left, top, left + crop_width, top + crop_height


def pad_geometry(height, width, target_height, target_width):
    """Size and offset of an image scaled to fit the target unchanged in shape, as
    ``tf.image.resize_with_pad`` places it (centred, zeros around).

    Returns:
        ``(new_height, new_width, top, left)``.
    """
    ratio = max(width / target_width, height / target_height)
    new_height = max(1, math.floor(height / ratio))
    new_width = max(1, math.floor(width / ratio))
    top = max(0, math.floor((target_height - height / ratio) / 2))
    left = max(0, math.floor((target_width - width / ratio) / 2))
    return new_height, new_width, top, left


def _convert(img, num_channels):
    mode = _MODE[num_channels]
    if img.mode == mode:
        img.load()
        return img
    return img.convert(mode)


def decode_image(
    path, num_channels, image_size, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False
):
    """Reads, converts and resizes one image file.

    Args:
        path: the file.
        num_channels: 1 (grayscale), 3 (RGB) or 4 (RGBA).
        image_size: ``(height, width)`` of the result.
        interpolation: a key of ``RESAMPLING``.
        crop_to_aspect_ratio: take ``crop_box`` before resizing (no distortion).
        pad_to_aspect_ratio: scale to fit, then pad with zeros (no distortion).

    Returns:
        float32 array with values in [0, 255].

    Shape:
        ``(image_size[0], image_size[1], num_channels)``.

    Raises:
        One of ``READ_ERRORS`` when the file cannot be read as an image.
    """
    target_height, target_width = image_size
    resample = RESAMPLING[interpolation]
    with Image.open(path) as opened:
        img = _convert(opened, num_channels)
        if pad_to_aspect_ratio:
            h, w, top, left = pad_geometry(img.height, img.width, target_height, target_width)
            inner = np.asarray(img.resize((w, h), resample), dtype=np.float32)
            x = np.zeros((target_height, target_width) + inner.shape[2:], dtype=np.float32)
            x[top : top + h, left : left + w] = inner
        else:
            box = crop_box(img.height, img.width, target_height, target_width) if crop_to_aspect_ratio else None
            x = np.asarray(img.resize((target_width, target_height), resample, box=box), dtype=np.float32)
    return x[..., None] if x.ndim == 2 else x
