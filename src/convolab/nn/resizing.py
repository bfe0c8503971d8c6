"""Resizing images to a fixed size: TensorFlow's nearest and bilinear resize, with an optional
centre crop to the target's aspect ratio first, or padding (letterboxing) to it (Keras's ``Resizing``).

Bilinear resizing is :mod:`convolab.nn.resize` (two interpolation matrices). Nearest takes, for
output pixel ``i``, input pixel ``min(floor((i + 0.5) * in / out), in - 1)`` (``tf.image.resize``
with half-pixel centres, what Keras 3 calls); its gradient adds each output gradient back onto
the pixel it was read from.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module, scatter_add
from .resize import bilinear_resize_backward, bilinear_resize_forward


def nearest_indices(in_size, out_size):
    """The input index each of ``out_size`` outputs reads (half-pixel centres)."""
    idx = np.floor((np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size)).astype(np.intp)
    return np.minimum(idx, in_size - 1)


def aspect_crop_box(h, w, out_h, out_w):
    """``(top, left, crop_h, crop_w)``: the largest centred window of ``out_h / out_w``'s aspect ratio
    (Keras's ``crop_to_aspect_ratio``; sizes truncated as Keras casts them)."""
    crop_h = max(min(h, int(w * out_h / out_w)), 1)
    crop_w = max(min(w, int(h * out_w / out_h)), 1)
    return int((h - crop_h) / 2), int((w - crop_w) / 2), crop_h, crop_w


def aspect_pad(h, w, out_h, out_w):
    """``(pad_h, pad_w)``: the rows (or columns) added on *each* side to bring ``h x w`` towards
    ``out_h / out_w``'s aspect ratio (Keras 3's ``pad_to_aspect_ratio``).

    As Keras: the padded size is ``max(h, int(w * out_h / out_w))`` (or the same for the width),
    and half the difference, truncated, goes on each side, so an odd difference leaves the image
    one row short of the exact ratio. Only one of the two is non-zero (rows first).
    """
    pad_h = int((max(h, int(w * out_h / out_w)) - h) / 2)
    pad_w = int((max(w, int(h * out_w / out_h)) - w) / 2)
    return (pad_h, 0) if pad_h > 0 else (0, pad_w)


def resizing_forward(
    x, size, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, fill_value=0.0
):
    """Resize every image to ``size``.

    Args:
        x: ``(N, H, W, C)``, floating point.
        size: ``(out_h, out_w)``.
        interpolation: ``'bilinear'`` or ``'nearest'``.
        crop_to_aspect_ratio: crop the centre to the target aspect ratio first.
        pad_to_aspect_ratio: pad with ``fill_value`` to the target aspect ratio first
            (:func:`aspect_pad`; not with ``crop_to_aspect_ratio``).
        fill_value: the padding's value.

    Returns:
        ``(y, cache)``.

    Shape:
        y: ``(N, out_h, out_w, C)``.
    """
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("resizing_forward: set at most one of crop_to_aspect_ratio and pad_to_aspect_ratio; got both")
    n, h, w, c = x.shape
    box = aspect_crop_box(h, w, *size) if crop_to_aspect_ratio else (0, 0, h, w)
    top, left, ch, cw = box
    xc = x[:, top : top + ch, left : left + cw]
    pad = aspect_pad(h, w, *size) if pad_to_aspect_ratio else (0, 0)
    if pad != (0, 0):
        ph, pw = pad
        xp = get_array_module(x)
        padded = xp.full((n, h + 2 * ph, w + 2 * pw, c), fill_value, dtype=x.dtype)
        padded[:, ph : ph + h, pw : pw + w] = x
        xc, ch, cw = padded, h + 2 * ph, w + 2 * pw
    if interpolation == "bilinear":
        y, inner = bilinear_resize_forward(xc, size)
    else:
        inner = (nearest_indices(ch, size[0]), nearest_indices(cw, size[1]))
        y = xc[:, inner[0]][:, :, inner[1]]
    return y, (interpolation, inner, x.shape, box, pad)


def resizing_backward(dy, cache):
    """Gradient of :func:`resizing_forward`: ``dx`` ``(N, H, W, C)`` (zero outside the crop; the
    padding's share, a constant's, is dropped)."""
    interpolation, inner, x_shape, (top, left, ch, cw), (ph, pw) = cache
    if ph or pw:
        ch, cw = x_shape[1] + 2 * ph, x_shape[2] + 2 * pw
    xp = get_array_module(dy)
    if interpolation == "bilinear":
        dxc = bilinear_resize_backward(dy, inner)
    else:
        rows, cols = inner
        n, _, _, c = dy.shape
        dxc = xp.zeros((n, ch, cw, c), dtype=dy.dtype)
        # the pixel each output read: add its gradient there (repeated reads add up)
        scatter_add(dxc, (slice(None), rows[:, None], cols[None, :]), dy)
    if ph or pw:
        return dxc[:, ph : ph + x_shape[1], pw : pw + x_shape[2]].copy()
    if (ch, cw) == tuple(x_shape[1:3]):
        return dxc
    dx = xp.zeros(x_shape, dtype=dy.dtype)
    dx[:, top : top + ch, left : left + cw] = dxc
    return dx
