"""``keras.models``: ``Model``, ``Sequential``, ``load_model``, ``clone_model`` and ``model_from_json``."""

import json

from ..models import Model, Sequential, load_model  # noqa: F401
from ..models import model_config
from ..models.cloning import clone_model  # noqa: F401


def model_from_json(json_string, custom_objects=None):
    """``keras.models.model_from_json``: a new model (new weights) from ``model.to_json()``'s text,
    convolab's or Keras 3's own.

    Keras 3 writes every argument object as an object (``{"class_name": "DTypePolicy", ...}``,
    initializers as ``{"class_name": "GlorotUniform", "config": {"seed": null}}``); such text is
    read by the same checked reader as a ``.keras`` file's ``config.json``, with ``custom_objects``
    in scope for the user's classes.
    """
    doc = _keras_written(json_string)
    if doc is None:
        return model_config.model_from_json(json_string, custom_objects)
    from ..saving import graph_io
    from ..saving.keras_zip import plan_keras_config
    from ..saving.object_registry import CustomObjectScope

    with CustomObjectScope(custom_objects or {}):
        return graph_io._build_model(plan_keras_config(doc, "model_from_json"))


def _keras_written(text):
    """The parsed document when ``text`` is Keras 3's JSON (argument objects as objects), else None."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return None  # model_config's reader says what is wrong

    def objects(v):
        if isinstance(v, dict):
            for key, value in v.items():
                if (
                    (key == "dtype" or key.endswith("_initializer"))
                    and isinstance(value, dict)
                    and "class_name" in value
                ):
                    return True
                if objects(value):
                    return True
        elif isinstance(v, list):
            return any(objects(x) for x in v)
        return False

    return doc if isinstance(doc, dict) and objects(doc) else None
