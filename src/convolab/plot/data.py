"""A row (or grid) of dataset samples with their labels."""

from __future__ import annotations

from ._base import as_image_list, class_name, finish, grid, labels_1d, new_figure, show_image


def display_dataset(x, y=None, classes=None, n=10, save=None, title=None):
    """Show the first ``n`` images of ``x``, titled with their labels (class names if given).

    Args:
        x: ``(N, H, W)``, ``(N, H, W, 1)`` or ``(N, H, W, 3)`` images, uint8 or float.
        y: labels ``(N,)`` or ``(N, 1)`` (CIFAR-10's Keras shape), optional.
        classes: class names indexed by label, e.g. CIFAR-10's ``['airplane', ...]``.
        n: how many images (at most ``len(x)``); rows of 10.
        save: path to write the figure to.

    Returns:
        The matplotlib ``Figure``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"display_dataset: `n` must be an int >= 1; got {n!r}")
    if isinstance(classes, int) and not isinstance(classes, bool):
        raise TypeError(
            f"display_dataset: `classes` is a list of class names; got {classes!r} "
            f"(to show {classes} images pass n={classes})"
        )
    ims = as_image_list(x[:n] if hasattr(x, "__getitem__") else x, what="x")[:n]
    labels = None if y is None else labels_1d(y, "y")[: len(ims)]
    n = len(ims)
    if labels is not None and len(labels) < n:
        raise ValueError(f"display_dataset: {n} images but only {len(labels)} labels")
    cols = min(n, 10)
    rows = -(-n // cols)
    fig = new_figure((1.5 * cols, 1.7 * rows + (0.4 if title else 0)), title=title)
    for i, ax in enumerate(grid(fig, n, cols)):
        show_image(ax, ims[i], None if labels is None else class_name(classes, labels[i]))
    return finish(fig, save)
