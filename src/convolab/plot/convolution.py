"""The lesson's convolution figure: input images, the kernel, and the filtered images."""

from __future__ import annotations

import numpy as np

from ..filters import convolve, get_kernel
from ._base import as_image_list, finish, new_figure, show_image


def plot_convolution(images, kernel, title="", save=None, padding="same"):
    """Show a row of images, the kernel, and below each image the image filtered by the kernel.

    The tfcv figure of the lesson (``plot_convolution(x_train[:5], [[-1., 0., 1.], ...], 'Vertical edge filter')``).
    Filtered grey images share one colour scale: blue is negative, red positive, white zero,
    so an edge filter's two sides read at a glance; a non-negative result (a blur) is grey.
    Colour images are filtered per channel and each result is stretched to [0, 1].

    Args:
        images: ``(N, H, W)``, ``(N, H, W, 1)``, ``(N, H, W, 3)``, one ``(H, W)`` image, or a
            list of images (sizes may differ). uint8 or float.
        kernel: a kernel name or nested list (see :func:`convolab.filters.get_kernel`).
        title: figure title.
        save: path to write the figure to (PNG unless the extension says otherwise).
        padding: ``'same'`` (default, as the lesson) or ``'valid'``.

    Returns:
        The matplotlib ``Figure``: ``2`` rows by ``N + 1`` columns, the kernel top right.
    """
    k = get_kernel(kernel)
    ims = as_image_list(images)
    filtered = [convolve(im, k, padding) if im.ndim == 2 else convolve(im[None], k, padding)[0] for im in ims]
    n = len(ims)
    width = min(1.6 * (n + 1), 18.0)
    fig = new_figure((width, 3.8 if title else 3.4), title=title or None)
    axes = fig.subplots(2, n + 1, squeeze=False)
    grey = [f for f in filtered if f.ndim == 2]
    signed = bool(grey) and min(float(f.min()) for f in grey) < 0
    vmax = max((float(np.abs(f).max()) for f in grey), default=1.0) or 1.0
    for i, (im, f) in enumerate(zip(ims, filtered)):
        show_image(axes[0, i], im)
        ax = axes[1, i]
        if f.ndim == 3:
            lo, hi = float(f.min()), float(f.max())
            ax.imshow(np.clip((f - lo) / (hi - lo if hi > lo else 1.0), 0, 1), interpolation="nearest")
        elif signed:
            ax.imshow(f, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        else:
            ax.imshow(f, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_axis_off()
    axes[0, 0].set_title("input", fontsize=9, loc="left")
    axes[1, 0].set_title("filtered", fontsize=9, loc="left")
    draw_kernel(axes[0, n], k)
    axes[1, n].set_axis_off()
    return finish(fig, save)


def draw_kernel(ax, k):
    """The kernel as a small signed heat map with its values written in (when it is small)."""
    m = float(np.abs(k).max()) or 1.0
    ax.imshow(k, cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
    if k.shape[0] <= 7 and k.shape[1] <= 7:
        for (r, c), v in np.ndenumerate(k):
            text = f"{v:g}" if float(v).is_integer() else f"{v:.2f}"
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color="white" if abs(v) > 0.6 * m else "black")
    ax.set_title(f"kernel {k.shape[0]}x{k.shape[1]}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
