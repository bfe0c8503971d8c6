"""Image resizing along H and W: nearest-neighbour repetition and TensorFlow's bilinear resize.

Bilinear resizing is separable and linear, so it is written as two small interpolation matrices,
``y = A_h @ x @ A_w.T`` per image and channel; the gradient is ``A_h.T @ dy @ A_w``.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module


def bilinear_resize_matrix(in_size, out_size, dtype="float64"):
    """The ``(out_size, in_size)`` matrix of TensorFlow's bilinear resize along one axis.

    ``tf.image.resize(..., 'bilinear', antialias=False)`` (what Keras 3's ``UpSampling2D`` and
    ``Resizing`` call) uses half-pixel centres: output pixel ``i`` reads the input at
    ``s = (i + 0.5) * in_size / out_size - 0.5``, between ``max(floor(s), 0)`` and
    ``min(ceil(s), in_size - 1)`` with weight ``s - floor(s)`` on the upper one.
    """
    s = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
    f = np.floor(s)
    lerp = s - f
    lower = np.maximum(f, 0).astype(np.intp)
    upper = np.minimum(np.ceil(s), in_size - 1).astype(np.intp)
    m = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    np.add.at(m, (rows, lower), 1.0 - lerp)
    np.add.at(m, (rows, upper), lerp)
    return m.astype(dtype)


def bilinear_resize_forward(x, size):
    """Resize every image to ``size`` as ``tf.image.resize(x, size, 'bilinear')`` does.

    Args:
        x: ``(N, H, W, C)``, floating point.
        size: ``(out_h, out_w)``.

    Returns:
        ``(y, cache)``; ``cache`` holds the two interpolation matrices.

    Shape:
        y: ``(N, out_h, out_w, C)``.
    """
    xp = get_array_module(x)  # the matrices go where the images are (CuPy refuses to mix)
    ah = xp.asarray(bilinear_resize_matrix(x.shape[1], size[0], x.dtype))
    aw = xp.asarray(bilinear_resize_matrix(x.shape[2], size[1], x.dtype))
    y = np.einsum("oh,nhwc->nowc", ah, x, optimize=True)
    y = np.einsum("pw,nowc->nopc", aw, y, optimize=True)
    return y, (ah, aw)


def bilinear_resize_backward(dy, cache):
    """Gradient of :func:`bilinear_resize_forward`: the transposed matrices, ``(N, H, W, C)``."""
    ah, aw = cache
    dx = np.einsum("oh,nopc->nhpc", ah, dy, optimize=True)
    return np.einsum("pw,nhpc->nhwc", aw, dx, optimize=True)


def upsample_nearest_forward(x, size):
    """Repeat every row ``size[0]`` times and every column ``size[1]`` times.

    Args:
        x: ``(N, H, W, C)``.
        size: ``(sh, sw)``, positive ints.

    Returns:
        ``(y, cache)``; ``cache`` is ``size``.

    Shape:
        y: ``(N, H * sh, W * sw, C)``.
    """
    sh, sw = size
    return np.repeat(np.repeat(x, sh, axis=1), sw, axis=2), size


def upsample_nearest_backward(dy, cache):
    """Each input pixel receives the sum of the ``sh * sw`` gradients of its copies."""
    sh, sw = cache
    n, h, w, c = dy.shape
    return dy.reshape(n, h // sh, sh, w // sw, sw, c).sum(axis=(2, 4))
