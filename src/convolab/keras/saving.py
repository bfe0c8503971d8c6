"""``keras.saving``: save and load models, and register the user's own classes so files can name them.

As Keras 3's namespace: ``save_model``, ``load_model``, ``register_keras_serializable``,
``get_registered_object``, ``get_registered_name``, ``get_custom_objects``, ``CustomObjectScope`` /
``custom_object_scope``, ``serialize_keras_object`` / ``deserialize_keras_object``::

    @keras.saving.register_keras_serializable(package="MyLayers")
    class MyDense(keras.layers.Layer):
        ...
    model.save("m.keras")
    model = keras.saving.load_model("m.keras")  # MyDense is found as "MyLayers>MyDense"

The registry is also what loading allows: a file may name a user class only when it is registered,
in a ``custom_object_scope`` or passed as ``custom_objects``; nothing a file names is imported.
"""

from __future__ import annotations

import inspect

from ..saving import load_model as _load_model
from ..saving.object_registry import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)

#: convolab's packages -> the Keras module Keras writes for their classes
_KERAS_MODULES = (
    ("convolab.layers", "keras.layers"),
    ("convolab.losses", "keras.losses"),
    ("convolab.metrics", "keras.metrics"),
    ("convolab.optimizers", "keras.optimizers"),
    ("convolab.initializers", "keras.initializers"),
    ("convolab.regularizers", "keras.regularizers"),
    ("convolab.constraints", "keras.constraints"),
    ("convolab.activations", "keras.activations"),
    ("convolab.models", "keras.models"),
)


def save_model(model, filepath, overwrite=True, zipped=None, **kwargs):
    """``keras.saving.save_model``: ``model.save(filepath, overwrite=..., **kwargs)``.

    Args:
        model: a convolab model.
        filepath: ``*.keras`` (Keras 3's zip), ``*.h5`` (Keras's legacy HDF5), or convolab's
            ``*.convolab``.
        overwrite: False refuses to replace an existing file.
        zipped: accepted for Keras's signature; the file name decides the format.
        **kwargs: ``include_optimizer`` (convolab and legacy ``.h5`` files).
    """
    unknown = sorted(set(kwargs) - {"include_optimizer"})
    if unknown:
        raise TypeError(f"keras.saving.save_model: unexpected keyword argument(s) {', '.join(unknown)}")
    if zipped is not None and not isinstance(zipped, bool):
        raise TypeError(f"keras.saving.save_model: `zipped` must be a bool or None; got {zipped!r}")
    save = getattr(model, "save", None)
    if save is None:
        raise TypeError(f"keras.saving.save_model saves convolab models; got {type(model).__name__}")
    save(filepath, overwrite=overwrite, **kwargs)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """``keras.saving.load_model``: a model from a ``.keras``, legacy ``.h5`` or convolab file.

    Args:
        filepath: the file; its content decides the format.
        custom_objects: ``{name: class}`` for user layers the file names that are not registered
            (the name is the class name, or the registered ``"package>name"``).
        compile: compile the model with the settings the file holds.
        safe_mode: accepted; loading never runs code from the file.

    Raises:
        ModelFileError: the file is bad, or names a class that is neither built in nor registered.
    """
    return _load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def _keras_module(obj):
    module = getattr(obj, "__module__", None) or ""
    for ours, theirs in _KERAS_MODULES:
        if module == ours or module.startswith(ours + "."):
            return theirs
    return None


def serialize_keras_object(obj):
    """Keras's dict for ``obj``: ``{module, class_name, config, registered_name}``.

    Plain values (None, bool, numbers, strings, lists, dicts) come back as they are; a function
    as ``class_name: "function"`` and its (registered) name; an object by its ``get_config()``.
    A convolab built-in is written under Keras's module with ``registered_name`` None, a user's
    class under its own module and registered name.

    Raises:
        TypeError: ``obj`` has no ``get_config`` and is not a function or plain value.
    """
    import numpy as np

    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): serialize_keras_object(v) for k, v in obj.items()}
    keras_module = _keras_module(obj if inspect.isfunction(obj) else type(obj))
    if inspect.isfunction(obj):
        if obj.__name__ == "<lambda>":
            raise TypeError(
                "serialize_keras_object: a lambda cannot be serialized (convolab never saves code); "
                "use a named function registered with keras.saving.register_keras_serializable"
            )
        name = obj.__name__ if keras_module else get_registered_name(obj)
        return {
            "module": keras_module or obj.__module__,
            "class_name": "function",
            "config": name,
            "registered_name": name,
        }
    get_config = getattr(obj, "get_config", None)
    if get_config is None:
        raise TypeError(f"serialize_keras_object: cannot serialize {obj!r}: it has no get_config() method")
    cls = type(obj)
    config = serialize_keras_object(get_config())
    if keras_module == "keras.layers":
        from ..saving import keras_config

        config = keras_config.keras_layer_config(cls.__name__, config)
    return {
        "module": keras_module or cls.__module__,
        "class_name": cls.__name__,
        "config": config,
        "registered_name": None if keras_module else get_registered_name(cls),
    }


def _builtin(class_name, kind):
    """convolab's built-in class (or function, for ``kind == "function"``) of that Keras name."""
    from .. import activations, constraints, initializers, layers, losses, metrics, optimizers, regularizers

    for namespace in (layers, losses, metrics, optimizers, initializers, regularizers, constraints, activations):
        obj = getattr(namespace, class_name, None)
        if obj is not None and (inspect.isfunction(obj) if kind == "function" else inspect.isclass(obj)):
            return obj
    return None


def deserialize_keras_object(config, custom_objects=None, safe_mode=True, **kwargs):
    """The object a :func:`serialize_keras_object` dict describes.

    The class is looked up by ``registered_name`` and ``class_name`` in ``custom_objects``, the
    active :class:`CustomObjectScope` and the registry, then among convolab's built-ins; nothing
    is imported by module name.

    Raises:
        TypeError: the dict is malformed or names a class that is neither registered nor built in.
    """
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, str):
        found = get_registered_object(config, custom_objects)
        return found if found is not None else config
    if isinstance(config, (list, tuple)):
        return [deserialize_keras_object(v, custom_objects, safe_mode) for v in config]
    if not isinstance(config, dict):
        raise TypeError(f"deserialize_keras_object: expected a dict from serialize_keras_object; got {config!r}")
    if "class_name" not in config:
        return {k: deserialize_keras_object(v, custom_objects, safe_mode) for k, v in config.items()}
    class_name, inner = config["class_name"], config.get("config")
    registered = config.get("registered_name")
    if class_name == "function":
        found = _lookup((registered, inner), custom_objects) or _builtin(inner, "function")
        if found is None:
            raise TypeError(
                f"deserialize_keras_object: could not locate function {inner!r}; register it with "
                "@keras.saving.register_keras_serializable() or pass it in custom_objects"
            )
        return found
    cls = _lookup((registered, class_name), custom_objects)
    module = config.get("module") or ""
    if cls is None and (not module or module == "keras" or module.startswith("keras.")):
        cls = _builtin(class_name, "class")
    if cls is None:
        raise TypeError(
            f"deserialize_keras_object: could not locate class {class_name!r} (registered name "
            f"{registered!r}); decorate it with @keras.saving.register_keras_serializable() or pass it "
            "in custom_objects"
        )
    inner = dict(inner or {})
    if _keras_module(cls) == "keras.layers":
        from ..saving import keras_config

        inner = keras_config.layer_config(cls.__name__, inner, f"deserialize_keras_object({class_name})")
    from_config = getattr(cls, "from_config", None)
    return from_config(inner) if from_config is not None else cls(**inner)


def _lookup(names, custom_objects):
    for name in names:
        if isinstance(name, str) and name:
            found = get_registered_object(name, custom_objects)
            if found is not None:
                return found
    return None


__all__ = [
    "CustomObjectScope",
    "custom_object_scope",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "load_model",
    "register_keras_serializable",
    "save_model",
    "serialize_keras_object",
]
