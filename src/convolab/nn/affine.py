"""Per-image affine resampling with TensorFlow's fill modes (the math of RandomRotation,
RandomTranslation and RandomZoom).

A transform is Keras's 8-number projective row ``[a0, a1, a2, b0, b1, b2, c0, c1]`` with
``c0 = c1 = 0``: output pixel ``(y, x)`` reads the input at
``x' = a0 * x + a1 * y + a2``, ``y' = b0 * x + b1 * y + b2``.

Points outside the image follow ``fill_mode``, exactly as TensorFlow's
``ImageProjectiveTransformV3`` (what Keras 3 calls on its default backend) does it: the
coordinate is first mapped into the image ('reflect' ``(d c b a | a b c d | d c b a)``, 'wrap'
``(a b c d | a b c d)``, 'nearest' ``(a a | a b c d | d d)``) and clamped to ``[0, size - 1]``;
'constant' leaves it as is. Then 'nearest' interpolation reads the pixel at the rounded
coordinate (half away from zero), 'bilinear' the four around it; any pixel read outside the
image counts as ``fill_value``.

Resampling is linear in the image, so the gradient scatters ``dy`` back with the same weights.
"""

from __future__ import annotations

import numpy as np

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


def _map_reflect(c, n):
    if n <= 1:
        return np.zeros_like(c)
    sz2 = 2 * n
    neg = sz2 * np.trunc(-c / sz2) + c
    neg = np.where(neg < -n, neg + sz2, -neg - 1)
    pos = c - sz2 * np.trunc(c / sz2)
    pos = np.where(pos >= n, sz2 - pos - 1, pos)
    return np.clip(np.where(c < 0, neg, np.where(c > n - 1, pos, c)), 0, n - 1)


def _map_wrap(c, n):
    if n <= 1:
        return np.zeros_like(c)
    neg = c + n * (np.trunc(-c / (n - 1)) + 1)
    pos = c - n * np.trunc(c / (n - 1))
    return np.clip(np.where(c < 0, neg, np.where(c > n - 1, pos, c)), 0, n - 1)


_MAPS = {
    "reflect": _map_reflect,
    "wrap": _map_wrap,
    "nearest": lambda c, n: np.clip(c, 0, n - 1),
    "constant": lambda c, n: c,
}


def _round_half_away(v):
    return np.where(v >= 0, np.floor(v + 0.5), -np.floor(-v + 0.5))


def affine_transform_forward(x, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0):
    """Resample every image through its own affine transform (output size = input size).

    Args:
        x: ``(N, H, W, C)``, floating point.
        transforms: ``(N, 8)`` Keras transform rows (``c0 = c1 = 0``).
        interpolation: 'bilinear' or 'nearest'.
        fill_mode: 'reflect', 'wrap', 'constant' or 'nearest'.
        fill_value: the value read outside the image.

    Returns:
        ``(y, cache)``; ``cache`` holds the flat source indices and weights of each corner.

    Shape:
        y: ``(N, H, W, C)``.
    """
    n, h, w, c = x.shape
    t = np.asarray(transforms, dtype=np.float64).reshape(n, 8)[:, :, None, None]
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    xin = _MAPS[fill_mode](t[:, 0] * xx + t[:, 1] * yy + t[:, 2], w)
    yin = _MAPS[fill_mode](t[:, 3] * xx + t[:, 4] * yy + t[:, 5], h)
    if interpolation == "nearest":
        corners = [(_round_half_away(yin), _round_half_away(xin), np.ones_like(xin))]
    else:
        y0, x0 = np.floor(yin), np.floor(xin)
        wy, wx = yin - y0, xin - x0
        corners = [
            (y0, x0, (1 - wy) * (1 - wx)),
            (y0, x0 + 1, (1 - wy) * wx),
            (y0 + 1, x0, wy * (1 - wx)),
            (y0 + 1, x0 + 1, wy * wx),
        ]
    batch = np.arange(n)[:, None, None]
    y = np.zeros(x.shape, dtype=x.dtype)
    fill_weight = np.zeros((n, h, w), dtype=np.float64)
    flat = x.reshape(n * h * w, c)
    reads = []
    for cy, cx, weight in corners:
        inside = (cy >= 0) & (cy <= h - 1) & (cx >= 0) & (cx <= w - 1)
        iy = np.clip(cy, 0, h - 1).astype(np.intp)
        ix = np.clip(cx, 0, w - 1).astype(np.intp)
        idx = (batch * h + iy) * w + ix
        wt = np.where(inside, weight, 0.0)
        fill_weight += weight - wt
        y += flat[idx] * wt[..., None].astype(x.dtype)
        reads.append((idx, wt))
    if fill_value != 0:
        y += (fill_weight * fill_value)[..., None].astype(x.dtype)
    return y, (x.shape, reads)


def affine_transform_backward(dy, cache):
    """Gradient of :func:`affine_transform_forward` with respect to ``x`` (the fill has none)."""
    shape, reads = cache
    n, h, w, c = shape
    dx = np.zeros((n * h * w, c), dtype=dy.dtype)
    for idx, wt in reads:
        np.add.at(dx, idx.ravel(), (dy * wt[..., None].astype(dy.dtype)).reshape(-1, c))
    return dx.reshape(shape)


def rotation_transforms(angles, height, width):
    """Keras's rotation about the image centre, counter-clockwise for positive ``angles`` (radians).

    Returns:
        ``(N, 8)`` transform rows.
    """
    a = np.asarray(angles, dtype=np.float64)
    cos, sin = np.cos(a), np.sin(a)
    x_off = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_off = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    z = np.zeros_like(a)
    return np.stack([cos, -sin, x_off, sin, cos, y_off, z, z], axis=1)


def translation_transforms(dy, dx):
    """Shift by ``dy`` pixels down and ``dx`` pixels right (output ``(y, x)`` reads ``(y - dy, x - dx)``).

    Returns:
        ``(N, 8)`` transform rows.
    """
    dy, dx = np.asarray(dy, dtype=np.float64), np.asarray(dx, dtype=np.float64)
    o, z = np.ones_like(dy), np.zeros_like(dy)
    return np.stack([o, z, -dx, z, o, -dy, z, z], axis=1)


def zoom_transforms(zoom_h, zoom_w, height, width):
    """Scale about the image centre: a zoom above 1 shows more of the image (zoom out).

    Returns:
        ``(N, 8)`` transform rows.
    """
    zh, zw = np.asarray(zoom_h, dtype=np.float64), np.asarray(zoom_w, dtype=np.float64)
    z = np.zeros_like(zh)
    x_off = (width - 1) / 2.0 * (1.0 - zw)
    y_off = (height - 1) / 2.0 * (1.0 - zh)
    return np.stack([zw, z, x_off, z, zh, y_off, z, z], axis=1)
