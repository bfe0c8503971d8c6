"""Classic hand-made convolution filters, and ``convolve`` to apply one to a batch of images.

The lesson opens with a vertical-edge filter run over MNIST digits before any network is
trained. This module names such kernels and applies them through the engine's own path:
``im2col`` and one matrix product, exactly what ``Conv2D`` does (cross-correlation, as
Keras and TensorFlow compute it; no kernel flip)::

    from convolab.filters import convolve, get_kernel
    edges = convolve(x_train[:5], 'vertical_edge')          # (5, 28, 28)
    edges = convolve(x_train[:5], [[-1., 0., 1.], [-1., 0., 1.]])   # the lesson's 2x3 kernel

Kernels are 2-D float32 arrays ``(kh, kw)``; they need not be square.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .nn.im2col import im2col
from .utils.conv_utils import normalize_padding


def _frozen(rows, scale=1.0):
    k = np.asarray(rows, dtype=np.float32) * np.float32(scale)
    k.setflags(write=False)  # the shared table must not be edited through a returned view
    return k


#: Named kernels (read-only float32 arrays). ``get_kernel(name)`` returns a writable copy.
KERNELS = {
    "vertical_edge": _frozen([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),
    "horizontal_edge": _frozen([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
    "sobel_x": _frozen([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "sobel_y": _frozen([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
    "laplacian": _frozen([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    "box_blur": _frozen(np.ones((3, 3)), 1 / 9),
    "gaussian_blur": _frozen([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16),
    "sharpen": _frozen([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "emboss": _frozen([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
}


def kernel_names():
    """The names :func:`get_kernel` accepts, in table order."""
    return list(KERNELS)


def gaussian_kernel(size=3, sigma=1.0):
    """A normalised ``size x size`` Gaussian blur kernel.

    Args:
        size: odd int >= 1, the side of the square kernel.
        sigma: standard deviation in pixels, > 0.

    Returns:
        float32 array ``(size, size)`` summing to 1.
    """
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian_kernel: `size` must be an odd int >= 1; got {size!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not sigma > 0 or not math.isfinite(sigma):
        raise ValueError(f"gaussian_kernel: `sigma` must be a finite number > 0; got {sigma!r}")
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r**2) / (2.0 * float(sigma) ** 2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def _normalise_name(name):
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def get_kernel(kernel):
    """Return a kernel as a writable float32 ``(kh, kw)`` array.

    Args:
        kernel: a name from :data:`KERNELS` (case-insensitive; ``'sobel-x'`` works too),
            a nested list of numbers as the lesson writes them (``[[-1., 0., 1.], ...]``,
            rows of equal length, any size), or a 2-D numeric array.

    Raises:
        ValueError: unknown name; not 2-D; empty; ragged rows; non-finite values.
        TypeError: non-numeric entries (strings, None, booleans).
    """
    if isinstance(kernel, str):
        key = _normalise_name(kernel)
        if key not in KERNELS:
            raise ValueError(f"unknown kernel name {kernel!r}; known kernels: {', '.join(KERNELS)}")
        return KERNELS[key].copy()
    if isinstance(kernel, (list, tuple)):
        _check_nested_rows(kernel)
    try:
        arr = np.asarray(kernel)
    except ValueError:  # NumPy refuses ragged nested sequences
        raise ValueError(f"kernel rows must all have the same length; got {kernel!r}") from None
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"kernel must hold numbers (ints or floats); got {_describe(kernel)} of dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"kernel must be 2-D (rows, columns); got {arr.ndim}-D, shape {arr.shape}: {_describe(kernel)}"
        )
    if arr.size == 0:
        raise ValueError(f"kernel must not be empty; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"kernel values must be finite; got {_describe(kernel)}")
    return np.array(arr, dtype=np.float32)


def _check_nested_rows(kernel):
    """Give ragged and mis-nested lists a precise message before NumPy sees them."""
    rows = list(kernel)
    if rows and all(isinstance(r, (list, tuple)) for r in rows):
        lengths = [len(r) for r in rows]
        if len(set(lengths)) > 1:
            raise ValueError(f"kernel rows must all have the same length; got row lengths {lengths} in {kernel!r}")
        for r in rows:
            for v in r:
                if isinstance(v, (list, tuple, np.ndarray)):
                    return  # deeper nesting: the rank check below names the shape
                if isinstance(v, bool) or not isinstance(v, numbers.Real):
                    raise TypeError(f"kernel must hold numbers (ints or floats); got {v!r} in {kernel!r}")


def _describe(value):
    text = repr(value if not isinstance(value, np.ndarray) else value.tolist())
    return text if len(text) <= 80 else text[:77] + "..."


def convolve(images, kernel, padding="same"):
    """Apply one 2-D kernel to a batch of images, each channel on its own (depthwise).

    Cross-correlation through ``im2col`` and one matrix product, as ``Conv2D`` computes it.
    Integer images (``uint8``) are cast to float32 without rescaling.

    Args:
        images: ``(H, W)`` one grey image, ``(N, H, W)`` grey images, or ``(N, H, W, C)``
            images with ``C`` channels (the kernel is applied to each channel separately).
        kernel: anything :func:`get_kernel` accepts.
        padding: ``'same'`` (zeros, output as large as the input; TensorFlow's split for
            even kernels) or ``'valid'`` (only windows that fit).

    Returns:
        float32 array (float64 if ``images`` is float64) with the rank of ``images``.

    Shape:
        ``(N, H, W, C)`` -> ``(N, Ho, Wo, C)`` with ``Ho = H`` for ``'same'`` and
        ``Ho = H - kh + 1`` for ``'valid'`` (likewise ``Wo``).
    """
    k = get_kernel(kernel)
    padding = normalize_padding(padding, owner="convolve")
    x = np.asarray(images)
    if x.dtype == bool or x.dtype.kind not in "iuf":
        raise TypeError(f"convolve: images must be a numeric array; got dtype {x.dtype}")
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"convolve: images must be (H, W), (N, H, W) or (N, H, W, C); got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"convolve: images are empty; got shape {x.shape}")
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    rank = x.ndim
    x4 = x.reshape((1,) + x.shape + (1,)) if rank == 2 else x[..., None] if rank == 3 else x
    n, h, w, c = x4.shape
    kh, kw = k.shape
    if padding == "valid" and (kh > h or kw > w):
        raise ValueError(
            f"convolve: kernel of shape {k.shape} is larger than the images ({h}x{w}, images shape "
            f"{x.shape}) with padding='valid'; use padding='same' or a smaller kernel"
        )
    # Depthwise: every channel becomes its own one-channel image, so one GEMM serves all.
    planes = np.ascontiguousarray(np.moveaxis(x4, 3, 1).reshape(n * c, h, w, 1), dtype=dtype)
    cols, (ho, wo) = im2col(planes, (kh, kw), (1, 1), padding)
    y = (cols @ k.astype(dtype).reshape(kh * kw, 1)).reshape(n, c, ho, wo)
    y = np.moveaxis(y, 1, 3)
    if rank == 2:
        return np.ascontiguousarray(y[0, :, :, 0])
    if rank == 3:
        return np.ascontiguousarray(y[..., 0])
    return np.ascontiguousarray(y)


__all__ = ["KERNELS", "convolve", "gaussian_kernel", "get_kernel", "kernel_names"]
