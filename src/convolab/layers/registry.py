"""The layer classes a convolab file may name: each one declares its own file schema.

A layer class that sets ``config_schema`` in its own body (a checker from
:func:`convolab.utils.layer_schema.layer_schema`) is registered here under its class name when
the class is created (``Layer.__init_subclass__``): that is the whole allow-list for loading,
so adding a layer is a one-file change. A subclass that does not set ``config_schema`` itself
is not registered (it may compute something else than the class it extends); Lambda sets none,
so no file can name it. ONNX export asks the layer too (its ``to_onnx`` method).

:data:`CLASSES` and :data:`SCHEMAS` are read-only live views: ``name -> class`` and
``name -> config checker``, in registration order.
"""

from __future__ import annotations

import types

_classes: dict = {}
_schemas: dict = {}

#: ``class name -> layer class``, every registered layer (a live, read-only view)
CLASSES = types.MappingProxyType(_classes)
#: ``class name -> its file config's checker`` (a live, read-only view)
SCHEMAS = types.MappingProxyType(_schemas)


def register(cls):
    """Register ``cls`` (which declares ``config_schema``) under ``cls.__name__``.

    A second class of the same name is refused with a TypeError, unless it is the same class
    defined again (same module and qualified name, e.g. a module reloaded), which replaces it.
    """
    name = cls.__name__
    old = _classes.get(name)
    if old is not None and old is not cls and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(
            f"layer class {cls.__module__}.{cls.__qualname__} declares a config_schema under the name "
            f"{name!r}, which {old.__module__}.{old.__qualname__} already has; a file names layers by class "
            "name, so give the class another name"
        )
    if not callable(cls.config_schema):
        raise TypeError(f"layer class {name}: config_schema must be a checker (value, where) -> value")
    _classes[name] = cls
    _schemas[name] = cls.config_schema  # read on the class: the checker itself, not a bound method
    return cls


def unregister(cls):
    """Take ``cls`` off the registry (a test's layer, once the test is done); no-op if absent."""
    if _classes.get(cls.__name__) is cls:
        del _classes[cls.__name__]
        del _schemas[cls.__name__]
