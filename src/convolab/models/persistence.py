"""How ``Model.save``, ``save_weights``, ``load_weights`` and ``export`` reach :mod:`convolab.saving`.

The saving package builds models when it loads a file, so it sits above the models and they may
not import it (that was the models -> saving -> models import cycle). Instead
``convolab.saving`` hands its functions to this module when it is imported, as a codec registers
itself; ``convolab/__init__.py`` imports it (through ``convolab.models``), so the functions are
here before any model exists.
"""

from __future__ import annotations

_functions: dict = {}


def register(**functions) -> None:
    """Called by ``convolab.saving``: ``register(save_model=..., save_weights=..., ...)``."""
    _functions.update(functions)


def _get(name):
    try:
        return _functions[name]
    except KeyError:
        raise RuntimeError(
            f"{name} is provided by convolab.saving, which has not been imported yet: "
            "import convolab (or convolab.saving) first"
        ) from None


def save_model(model, filepath, **kwargs):
    """:func:`convolab.saving.save_model`."""
    return _get("save_model")(model, filepath, **kwargs)


def save_weights(model, filepath):
    """:func:`convolab.saving.save_weights`."""
    return _get("save_weights")(model, filepath)


def load_weights(model, filepath):
    """:func:`convolab.saving.load_weights`."""
    return _get("load_weights")(model, filepath)


def export_model(model, filepath, **kwargs):
    """:func:`convolab.saving.export_model`."""
    return _get("export_model")(model, filepath, **kwargs)
