"""Shared plumbing for the plotting functions: headless figures, saving, image display rules.

Figures are built as ``matplotlib.figure.Figure`` objects, never through ``pyplot``: no global
figure registry to leak memory in loops, no display needed (servers, CI), and a returned
Figure still shows inline in Jupyter (see :func:`_enable_notebook_display`).
matplotlib is imported here, lazily, so ``import convolab`` does not pay for it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

#: Resolution of every figure; a saved PNG is ``figsize * DPI`` pixels.
DPI = 100


def new_figure(figsize, title=None):
    """A constrained-layout Figure of ``figsize`` inches at :data:`DPI`, with an optional suptitle."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a declared dependency
        raise ImportError("convolab.plot needs matplotlib: pip install matplotlib") from exc
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained", facecolor="white")
    if title:
        fig.suptitle(title, fontsize=14)
    _enable_notebook_display()
    return fig


def finish(fig, save):
    """Write ``fig`` to ``save`` (format from the extension, PNG if none) and return ``fig``."""
    if save is not None:
        path = Path(os.fspath(save))
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=fig.dpi, facecolor=fig.get_facecolor(), format=None if path.suffix else "png")
    return fig


def _enable_notebook_display():
    """Let Jupyter render a returned Figure as PNG even if ``pyplot`` was never imported.

    ``%matplotlib inline`` registers this formatter when pyplot loads; a notebook that only
    imports convolab would otherwise print ``<Figure size ...>``. Outside a kernel: no-op.
    """
    ipython_mod = sys.modules.get("IPython")
    if ipython_mod is None:
        return
    try:
        shell = ipython_mod.get_ipython()
        if shell is None or not hasattr(shell, "kernel"):
            return
        from IPython.core.pylabtools import print_figure
        from matplotlib.figure import Figure

        formatter = shell.display_formatter.formatters["image/png"]
        if Figure not in formatter.type_printers:
            formatter.for_type(Figure, lambda fig: print_figure(fig, "png"))
    except (AttributeError, ImportError, KeyError):
        return


def grid(fig, n, ncols):
    """``n`` axes in rows of ``ncols`` (extra cells hidden); returns the flat list of the ``n``."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    return list(axes[:n])


def as_image_list(images, what="images"):
    """Split ``images`` into a list of ``(H, W)`` or ``(H, W, C)`` arrays.

    Accepts a list of images, one ``(H, W)`` image, ``(N, H, W)`` grey or ``(N, H, W, C)``.
    A trailing channel axis of 1 is dropped; an alpha channel is dropped.
    """
    if isinstance(images, (list, tuple)) and images and not np.isscalar(images[0]):
        items = [np.asarray(im) for im in images]
        out = []
        for i, im in enumerate(items):
            if im.ndim == 3 and im.shape[-1] in (1, 3, 4):
                out.append(_drop_extra_channels(im))
            elif im.ndim == 2:
                out.append(im)
            else:
                raise ValueError(f"{what}[{i}] must be (H, W) or (H, W, C) with C in 1, 3, 4; got shape {im.shape}")
        return [_check_numeric(im, what) for im in out]
    arr = np.asarray(images)
    _check_numeric(arr, what)
    if arr.ndim == 2:
        return [arr]
    if arr.ndim == 3:
        return list(arr)
    if arr.ndim == 4 and arr.shape[-1] in (1, 3, 4):
        return [_drop_extra_channels(im) for im in arr]
    raise ValueError(f"{what} must be (H, W), (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got shape {arr.shape}")


def _drop_extra_channels(im):
    if im.shape[-1] == 1:
        return im[..., 0]
    if im.shape[-1] == 4:
        return im[..., :3]
    return im


def _check_numeric(arr, what):
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric arrays; got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{what} are empty; got shape {arr.shape}")
    return arr


def show_image(ax, im, title=None):
    """Draw a grey ``(H, W)`` or colour ``(H, W, 3)`` image on ``ax`` with a sensible value range.

    uint8 shows as 0..255; floats in [0, 1] as 0..1; other floats are stretched min..max.
    """
    im = np.asarray(im)
    if im.ndim == 3 and im.shape[-1] in (1, 4):
        im = _drop_extra_channels(im)
    if im.ndim == 3:
        ax.imshow(to_rgb01(im), interpolation="nearest")
    else:
        lo, hi = value_range(im)
        ax.imshow(im, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title, fontsize=9)


def value_range(im):
    if im.dtype == np.uint8:
        return 0, 255
    lo, hi = float(np.min(im)), float(np.max(im))
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    return lo, hi if hi > lo else lo + 1


def to_rgb01(im):
    """A colour image as floats in [0, 1]: uint8 / 255, [0, 1] floats as they are, others stretched."""
    im = np.asarray(im)
    if im.dtype == np.uint8:
        return im.astype(np.float32) / 255
    im = im.astype(np.float32)
    lo, hi = float(im.min()), float(im.max())
    if lo >= 0 and hi <= 1:
        return im
    if lo >= 0 and hi <= 255:
        return im / 255
    return (im - lo) / (hi - lo if hi > lo else 1)


def probabilities(outputs):
    """Rows of class probabilities: outputs that are not already a distribution get a softmax.

    A model compiled with ``from_logits=True`` (the lesson's one-conv CNN) outputs raw scores.
    """
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"expected model outputs of shape (batch, classes); got shape {out.shape}")
    if np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        return out
    z = out - out.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def model_input(model, x, what="x"):
    """``x`` as float32, with a channel axis added when the model wants ``(H, W, 1)`` and got ``(H, W)``."""
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be a numeric array; got dtype {x.dtype}")
    shape = getattr(model, "input_shape", None)
    if shape is not None and len(shape) == 4 and shape[-1] == 1 and x.ndim == 3:
        x = x[..., None]
    return x.astype(np.float32, copy=False)


def predict(model, x, batch_size=256):
    """``model.predict`` in large batches without progress output."""
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def labels_1d(y, what="y"):
    """Integer labels as ``(N,)`` (accepts Keras's CIFAR ``(N, 1)`` and one-hot/probability rows)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{what} must be labels of shape (N,) or (N, 1); got shape {y.shape}")
    if y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError(f"{what} must be integer class labels; got non-integer values")
    return y.astype(np.int64)


def class_name(classes, label):
    if classes is None:
        return str(int(label))
    try:
        return str(classes[int(label)])
    except (IndexError, KeyError):
        return str(int(label))
