"""Where a classifier goes wrong: the confusion matrix and the misclassified samples."""

from __future__ import annotations

import numpy as np

from ._base import (
    as_image_list,
    class_name,
    finish,
    grid,
    labels_1d,
    model_input,
    new_figure,
    predict,
    probabilities,
    show_image,
)


def confusion_matrix(y_true, y_pred, num_classes=None):
    """Counts ``cm[i, j]`` of samples of true class ``i`` predicted as class ``j``.

    Args:
        y_true: labels ``(N,)`` or ``(N, 1)``.
        y_pred: labels ``(N,)`` or scores/probabilities ``(N, K)`` (argmax is taken).
        num_classes: size of the matrix; default ``max label + 1`` (or ``K``).

    Returns:
        int64 array ``(num_classes, num_classes)``.
    """
    t = labels_1d(y_true, "y_true")
    k_pred = np.shape(y_pred)[1] if np.ndim(y_pred) == 2 and np.shape(y_pred)[1] > 1 else 0
    p = labels_1d(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"confusion_matrix: y_true has {len(t)} labels and y_pred {len(p)}")
    if len(t) and (t.min() < 0 or p.min() < 0):
        raise ValueError("confusion_matrix: labels must be >= 0")
    k = num_classes or max(int(t.max(initial=-1)) + 1, int(p.max(initial=-1)) + 1, k_pred)
    if len(t) and max(t.max(), p.max()) >= k:
        raise ValueError(f"confusion_matrix: a label is >= num_classes={k}")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _true_and_pred(model_or_y_true, y_pred_or_x, y):
    if hasattr(model_or_y_true, "predict") and hasattr(model_or_y_true, "layers"):
        if y_pred_or_x is None or y is None:
            raise ValueError("plot_confusion_matrix(model, x, y=labels): pass the images and their labels")
        x = model_input(model_or_y_true, y_pred_or_x)
        return labels_1d(y, "y"), predict(model_or_y_true, x)
    if y_pred_or_x is None:
        raise ValueError("plot_confusion_matrix(y_true, y_pred): pass the predictions too")
    return labels_1d(model_or_y_true, "y_true"), np.asarray(y_pred_or_x)


def plot_confusion_matrix(model_or_y_true, y_pred_or_x=None, classes=None, save=None, *, y=None, title=None):
    """Draw the confusion matrix with every count written in its cell.

    Two forms: ``plot_confusion_matrix(y_true, y_pred)`` with labels (or scores) already
    predicted, or ``plot_confusion_matrix(model, x, y=y_true)`` to predict first.

    Args:
        classes: class names for the axes (default the label numbers).
        save: path to write the figure to.

    Returns:
        The matplotlib ``Figure`` (rows: true class; columns: predicted class).
    """
    t, pred = _true_and_pred(model_or_y_true, y_pred_or_x, y)
    cm = confusion_matrix(t, pred, num_classes=len(classes) if classes is not None else None)
    k = cm.shape[0]
    acc = np.trace(cm) / max(cm.sum(), 1)
    side = max(4.5, 0.45 * k + 2.0)
    fig = new_figure((side + 0.8, side), title=title or f"Confusion matrix (accuracy {acc:.3f}, n={cm.sum()})")
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8)
    names = [class_name(classes, i) for i in range(k)]
    long_names = max(map(len, names)) > 2  # words, not digits: slant them so they do not overlap
    ax.set_xticks(range(k), names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = cm.max() or 1
    for (r, c), v in np.ndenumerate(cm):
        ax.text(
            c,
            r,
            str(v),
            ha="center",
            va="center",
            fontsize=8 if k <= 12 else 6,
            color="white" if v > 0.5 * top else "black",
        )
    return finish(fig, save)


def plot_misclassified(model, x, y, classes=None, n=10, save=None, title=None):
    """Show the first ``n`` samples the model gets wrong, with true and predicted class.

    Args:
        model: a trained model; its outputs may be probabilities or logits.
        x: images, shaped as the model expects (a missing channel axis of 1 is added).
        y: true labels ``(N,)`` or ``(N, 1)``.
        classes: class names.
        n: at most this many samples, rows of 5.

    Returns:
        The matplotlib ``Figure`` (a note instead of images when nothing is misclassified).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"plot_misclassified: `n` must be an int >= 1; got {n!r}")
    t = labels_1d(y, "y")
    xin = model_input(model, x)
    if len(t) != len(xin):
        raise ValueError(f"plot_misclassified: {len(xin)} images but {len(t)} labels")
    prob = probabilities(predict(model, xin))
    pred = prob.argmax(axis=1)
    wrong = np.flatnonzero(pred != t)[:n]
    if len(wrong) == 0:
        fig = new_figure((6, 2), title=title or "Misclassified samples")
        ax = fig.subplots()
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"none: all {len(t)} samples are classified correctly", ha="center", va="center")
        return finish(fig, save)
    ims = as_image_list(np.asarray(x)[wrong], what="x")
    cols = min(len(wrong), 5)
    rows = -(-len(wrong) // cols)
    fig = new_figure(
        (2.0 * cols, 2.2 * rows + 0.5), title=title or f"Misclassified: {int((pred != t).sum())} of {len(t)}"
    )
    for ax, i, im in zip(grid(fig, len(wrong), cols), wrong, ims):
        show_image(
            ax, im, f"true {class_name(classes, t[i])}\npred {class_name(classes, pred[i])} ({prob[i, pred[i]]:.0%})"
        )
    return finish(fig, save)
