"""The user's own classes and functions that files may name: Keras's ``register_keras_serializable``.

Keras 3 (``keras/src/saving/object_registration.py``) keeps two maps: registered name -> object
and object -> registered name, where the registered name is ``"package>name"`` (``package``
defaults to ``"Custom"``, ``name`` to the object's ``__name__``). ``CustomObjectScope`` adds
objects for the duration of a ``with`` block, and ``load_model(custom_objects=...)`` for one load.

This registry is also the loading allow-list for user code: a file may name a class convolab does
not ship only when the user registered it, put it in a scope or passed it in ``custom_objects``.
Nothing is ever imported by the module name a file gives (Keras does that outside safe mode);
an unknown name stays refused with :class:`~convolab.saving.ModelFileError`.
"""

from __future__ import annotations

import inspect
import threading

#: registered name ("package>name") -> class or function
_GLOBAL_OBJECTS: dict = {}
#: class or function -> registered name
_GLOBAL_NAMES: dict = {}
_scopes = threading.local()


def _scope_stack():
    stack = getattr(_scopes, "stack", None)
    if stack is None:
        stack = _scopes.stack = []
    return stack


def register_keras_serializable(package="Custom", name=None):
    """Register a class or function under ``"package>name"``, so files that name it load.

    Args:
        package: the registered name's prefix (default ``"Custom"``).
        name: the name after ``>``; default the object's ``__name__``.

    Returns:
        a decorator that registers its argument and returns it unchanged.

    Raises:
        TypeError: ``package`` or ``name`` is not a string.
        ValueError: a class without ``get_config`` (Keras's rule: its config could not be saved).
    """
    if not isinstance(package, str) or not package:
        raise TypeError(f"register_keras_serializable: `package` must be a non-empty string; got {package!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"register_keras_serializable: `name` must be a non-empty string or None; got {name!r}")

    def decorator(arg):
        if not callable(arg):
            raise TypeError(f"register_keras_serializable registers classes and functions; got {arg!r}")
        if inspect.isclass(arg) and not hasattr(arg, "get_config"):
            raise ValueError(
                f"register_keras_serializable: cannot register the class {arg.__name__}, which has "
                "no get_config() method (its configuration could not be saved)"
            )
        registered = f"{package}>{name if name is not None else arg.__name__}"
        _GLOBAL_OBJECTS[registered] = arg
        _GLOBAL_NAMES[arg] = registered
        return arg

    return decorator


def get_registered_name(obj) -> str:
    """``"package>name"`` of a registered object; else its ``__name__`` (as Keras)."""
    if obj in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[obj]
    return getattr(obj, "__name__", type(obj).__name__)


def is_registered(obj) -> bool:
    """Whether ``obj`` was registered with :func:`register_keras_serializable` (a scope does not count:
    it lasts one block, and a file written inside it names the object by ``__name__``)."""
    try:
        return obj in _GLOBAL_NAMES
    except TypeError:  # an unhashable callable
        return False


def get_by_suffix(suffix):
    """The first object in scope or registered under a name ending in ``suffix`` (innermost scope
    first, then the registry), else None: how Keras finds a registered function that an older
    file names by its bare ``__name__`` (``suffix`` ``">my_fn"`` finds ``"Custom>my_fn"``)."""
    for objects in [*reversed(_scope_stack()), _GLOBAL_OBJECTS]:
        for key, obj in objects.items():
            if key.endswith(suffix):
                return obj
    return None


def registered_name_of(obj):
    """The name under which ``obj`` is registered (``"package>name"``) or in a custom object scope
    on this thread; ``None`` when it is in neither (a file cannot name it)."""
    try:
        if obj in _GLOBAL_NAMES:
            return _GLOBAL_NAMES[obj]
    except TypeError:  # an unhashable callable is never registered
        return None
    for scope in reversed(_scope_stack()):
        for key, value in scope.items():
            if value is obj:
                return key
    return None


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object registered (or in scope) under ``name``, else None.

    Looked up, as Keras does, in the innermost :class:`CustomObjectScope` first, then the global
    registry, then ``custom_objects``, then ``module_objects``.
    """
    for scope in reversed(_scope_stack()):
        if name in scope:
            return scope[name]
    if name in _GLOBAL_OBJECTS:
        return _GLOBAL_OBJECTS[name]
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None


def get_custom_objects() -> dict:
    """The global registry itself (Keras's ``get_custom_objects``): adding to it registers."""
    return _GLOBAL_OBJECTS


def _check_objects(objects, what):
    if objects is None:
        return {}
    if not isinstance(objects, dict):
        raise TypeError(
            f"{what}: custom objects must be a dict of name -> class or function; got {type(objects).__name__}"
        )
    for key, value in objects.items():
        if not isinstance(key, str):
            raise TypeError(f"{what}: custom object names must be strings; got {key!r}")
        if not callable(value):
            raise TypeError(f"{what}: custom object {key!r} must be a class or function; got {value!r}")
    return dict(objects)


class CustomObjectScope:
    """``with CustomObjectScope({'MyLayer': MyLayer}):``: these names resolve while the block runs.

    Scopes nest (the innermost wins) and are per thread, as in Keras.
    """

    def __init__(self, custom_objects=None):
        self.custom_objects = _check_objects(custom_objects, "CustomObjectScope")

    def __enter__(self):
        _scope_stack().append(self.custom_objects)
        return self

    def __exit__(self, *exc):
        _scope_stack().pop()


custom_object_scope = CustomObjectScope


def lookup(class_name, registered_name):
    """``(key, object)`` of the user object a file entry names, looked up by ``registered_name``
    first, then ``class_name``; ``(None, None)`` when neither is registered or in scope.

    Only what is registered or in scope is found: this is the allow-list, and nothing is imported.
    """
    for key in (registered_name, class_name):
        if isinstance(key, str) and key:
            obj = get_registered_object(key)
            if obj is not None:
                return key, obj
    return None, None


def custom_layer_class(key):
    """The user's layer class registered (or in scope) under ``key``, or None.

    Models (subclassed ones hold their architecture in code) and convolab's own classes are not
    user layers: a built-in name resolves through convolab's allow-list, never through here.
    """
    from ..layers.base import Layer

    if not isinstance(key, str):
        return None
    obj = get_registered_object(key)
    if (
        inspect.isclass(obj)
        and issubclass(obj, Layer)
        and not getattr(obj, "_keras_model", False)
        and not obj.__module__.startswith("convolab.")
    ):
        return obj
    return None


def is_custom_layer(layer) -> bool:
    """Whether ``layer`` is an instance of a user's Layer subclass (not convolab's, not a model)."""
    from ..layers.base import Layer

    # a model class says so (Model._keras_model): models sit above this registry, which they use
    return (
        isinstance(layer, Layer)
        and not getattr(layer, "_keras_model", False)
        and not type(layer).__module__.startswith("convolab.")
    )


__all__ = [
    "CustomObjectScope",
    "custom_object_scope",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "get_by_suffix",
    "is_registered",
    "registered_name_of",
    "custom_layer_class",
    "is_custom_layer",
    "lookup",
    "register_keras_serializable",
]
