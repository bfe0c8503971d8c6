"""Training curves: accuracy and loss per epoch, training and validation."""

from __future__ import annotations

from ._base import finish, new_figure


def history_dict(history):
    """The ``{key: [values per epoch]}`` dict of a ``History``, a ``fit`` result, or the dict itself."""
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise TypeError(
            f"plot_results expects a History (what fit returns) or its .history dict; got {type(history).__name__}"
        )
    return h


def _accuracy_key(h):
    for key in ("acc", "accuracy", "sparse_categorical_accuracy", "categorical_accuracy"):
        if key in h or "val_" + key in h:
            return key
    return None


def plot_results(history, save=None, title=None):
    """Plot accuracy (left) and loss (right) per epoch, training and validation, with a legend.

    Args:
        history: what ``model.fit`` returns, or its ``.history`` dict. Accuracy may be under
            ``acc`` or ``accuracy`` (as compiled); ``val_`` keys are drawn when present.
        save: path to write the figure to.
        title: optional figure title.

    Returns:
        The matplotlib ``Figure`` (10 x 3.6 inches).
    """
    h = history_dict(history)
    acc = _accuracy_key(h)
    panels = [
        (name, key)
        for name, key in (("Accuracy", acc), ("Loss", "loss"))
        if key is not None and (key in h or "val_" + key in h)
    ]
    if not panels:
        raise ValueError(f"plot_results: the history holds no accuracy or loss; keys: {sorted(h)}")
    fig = new_figure((10, 3.6), title=title)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, key) in zip(axes, panels):
        for k, label, style in ((key, "train", "o-"), ("val_" + key, "validation", "s--")):
            values = h.get(k)
            if values:
                ax.plot(range(1, len(values) + 1), [float(v) for v in values], style, label=label, markersize=4)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
        ax.legend()
    return finish(fig, save)
