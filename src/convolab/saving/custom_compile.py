"""The user's own losses and metrics in compile settings: saved by name, rebuilt from the registry.

Keras 3 (``serialize_keras_object`` on what ``compile`` was given) writes a user's object as::

    a function:           {"module": "builtins", "class_name": "function",
                           "config": "Custom>my_mse", "registered_name": "function"}
    a Loss/Metric object: {"module": "my_module", "class_name": "MyLoss",
                           "config": <its get_config()>, "registered_name": "Custom>MyLoss"}

with the registered name (``"package>name"``, :mod:`.object_registry`) or, for an object nobody
registered, its ``__name__``; Keras 3.6 and older put a function's bare ``__name__`` in ``config``.
convolab's own files hold these same entries in their compile settings, and its Keras files
write and read them as Keras does.

Loading looks the name up where :mod:`.object_registry` looks (a ``CustomObjectScope``, the
registry, ``load_model(custom_objects=...)``): the allow-list, so nothing a file names is ever
imported. A name found nowhere is not an error, as in Keras: the model loads with its
architecture and weights, uncompiled, with a warning that names what is missing. Saving warns
about the same objects beforehand.

A lambda (or any callable without a name to look up) cannot be named; as a metric it is left out
of the file, as the loss the whole compile settings are (see :func:`unnamed_loss_warning`).
"""

from __future__ import annotations

import inspect
import json

from .. import losses as losses_mod
from .. import metrics as metrics_mod
from ..utils.config_schema import MAX_NAME, ModelFileError, fail, nullable, obj, string
from . import object_registry

FUNCTION = "function"
_KINDS = {"loss": losses_mod.Loss, "metric": metrics_mod.Metric}


# -- saving ----------------------------------------------------------------------
class SaveNotes:
    """What :func:`entry` met that loading may not get back: the warnings of one save."""

    def __init__(self):
        self.unregistered = []  # (kind, name) saved by a name nothing registered
        self.unnamed = []  # (kind, description) left out: no name to save


def _describe(obj):
    name = getattr(obj, "__name__", None) or type(obj).__name__
    return "a lambda" if name == "<lambda>" else repr(name)


def is_user_object(obj, kind) -> bool:
    """Whether ``obj`` is a user's loss or metric (a function or an instance of a user's subclass),
    as opposed to one of convolab's own, which the built-in allow-list covers."""
    if inspect.isfunction(obj):
        return not obj.__module__.startswith("convolab.")
    return isinstance(obj, _KINDS[kind]) and not type(obj).__module__.startswith("convolab.")


def entry(obj, kind, notes, what):
    """The file entry of a user's ``kind`` (``"loss"`` or ``"metric"``) ``obj``, as Keras writes it;
    None when ``obj`` has no name a file could give (a lambda, a callable object), noted in ``notes``.

    Raises:
        ValueError: a Loss/Metric object whose ``get_config()`` is not a dict of JSON values, or whose
            class cannot be rebuilt from it (``from_config(get_config())`` fails): the file would not load.
    """
    if inspect.isfunction(obj) and obj.__name__ != "<lambda>":
        name = object_registry.get_registered_name(obj)
        if obj.__module__.startswith("convolab.") and not object_registry.is_registered(obj):
            if _builtin_function(name, kind) is None:  # one of convolab's that no file names
                notes.unnamed.append((kind, _describe(obj)))
                return None
        elif not object_registry.is_registered(obj):
            notes.unregistered.append((kind, name))
        return {"module": "builtins", "class_name": FUNCTION, "config": name, "registered_name": FUNCTION}
    if not is_user_object(obj, kind) or inspect.isfunction(obj):
        notes.unnamed.append((kind, _describe(obj)))
        return None
    cls = type(obj)
    where = f"{what}: the {kind} {cls.__name__}"
    try:
        config = obj.get_config()
        text = json.dumps(config, allow_nan=False, default=_numpy_scalar)
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ValueError(
            f"{where}: get_config() must return a dict of JSON values (numbers, strings, lists, dicts) "
            f"to be saved; {type(e).__name__}: {e}"
        ) from None
    config = json.loads(text)
    if not isinstance(config, dict):
        raise ValueError(f"{where}: get_config() must return a dict; got {type(config).__name__}")
    try:
        cls.from_config(json.loads(text))  # what loading will do: a config that misses an argument fails now
    except Exception as e:  # noqa: BLE001 (the user's code: whatever it raises, the file would not load)
        raise ValueError(
            f"{where} cannot be rebuilt from its get_config() ({type(e).__name__}: {e}); give get_config() "
            "every constructor argument, as Keras requires of objects it saves"
        ) from None
    registered = object_registry.get_registered_name(cls)
    if not object_registry.is_registered(cls):
        notes.unregistered.append((kind, registered))
    return {"module": cls.__module__, "class_name": cls.__name__, "config": config, "registered_name": registered}


def _numpy_scalar(value):
    item = getattr(value, "item", None)
    if item is None:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return item()


def save_warning(notes, owner):
    """The warning text of one save (``owner`` names the model), or None when there is nothing to say."""
    parts = []
    if notes.unregistered:
        names = ", ".join(f"{kind} {name!r}" for kind, name in notes.unregistered)
        parts.append(
            f"the file names the {names}, which {'is' if len(notes.unregistered) == 1 else 'are'} not "
            "registered: load_model compiles the model only where it is registered "
            "(@keras.saving.register_keras_serializable()) or passed in custom_objects=; elsewhere it "
            "warns and returns the model uncompiled"
        )
    if notes.unnamed:
        names = ", ".join(f"{kind} {name}" for kind, name in notes.unnamed)
        parts.append(
            f"the {names} {'has' if len(notes.unnamed) == 1 else 'have'} no name a file can hold "
            "(a file never stores code): left out; after load_model, compile again with it"
        )
    return f"save_model: {owner}: " + "; ".join(parts) if parts else None


def unnamed_loss_warning(owner, description):
    """Why a model compiled with a lambda (or another callable without a name) as its loss is saved
    uncompiled: convolab never stores code, and Keras could load the lambda back only with
    ``safe_mode=False``, which convolab does not have."""
    return (
        f"save_model: {owner} was compiled with {description} as its loss, which has no name a file can "
        "hold (a file never stores code): the file holds the architecture and weights without the compile "
        "settings (and optimizer state), and loads uncompiled. Use a named function registered with "
        "@keras.saving.register_keras_serializable() to save them"
    )


# -- the schema ------------------------------------------------------------------
def is_custom_entry(v) -> bool:
    """Whether a compile entry names a user's object (only those carry ``registered_name``)."""
    return isinstance(v, dict) and "registered_name" in v


_entry_keys = obj(
    {"class_name": string(MAX_NAME), "config": lambda c, w: c, "registered_name": string(MAX_NAME)},
    {"module": nullable(string(1024))},
)


def check_entry(v, where):
    """A user's function ``{class_name: "function", config: <name>, ...}`` or object ``{class_name,
    config: {...}, registered_name, module}``; what the name means is the registry's to say."""
    v = _entry_keys(v, where)
    if v["class_name"] == FUNCTION:
        string(MAX_NAME)(v["config"], f"{where}.config")
    elif not isinstance(v["config"], dict):
        fail(f"{where}.config", "an object (the get_config() of the user's class)", v["config"])
    return v


# -- loading ---------------------------------------------------------------------
def resolve(v, kind, where):
    """What ``compile`` takes for the checked ``kind`` entry ``v`` (a user's Loss object or function, a
    Metric object or function, or a built-in's name); None when nothing registered or in scope has
    the name (the caller leaves the model uncompiled).

    Raises:
        ModelFileError: the name is registered as something else, or the class refuses the config.
    """
    if v["class_name"] == FUNCTION:
        # Keras's order: the name as registered (or in scope), a built-in, then a registered
        # "package>name" ending in the bare __name__ that Keras 3.6 and older wrote
        name = v["config"]
        fn = object_registry.get_registered_object(name)
        if fn is None:
            builtin = _builtin_function(name, kind)
            if builtin is not None:
                return builtin
            fn = object_registry.get_by_suffix(f">{name}") if ">" not in name else None
        if fn is None:
            return None
        if inspect.isclass(fn) or not callable(fn):
            fail(f"{where}.config", f"the name of a {kind} function", f"{v['config']!r}, registered as {fn!r}")
        return losses_mod.get(fn) if kind == "loss" else fn
    key, cls = object_registry.lookup(v["class_name"], v["registered_name"])
    if cls is None:
        return None
    if not (inspect.isclass(cls) and issubclass(cls, _KINDS[kind])):
        base = _KINDS[kind]
        fail(where, f"a {base.__module__.split('.')[1]}.{base.__name__} subclass", f"{key!r}, registered as {cls!r}")
    try:
        return cls.from_config(dict(v["config"]))
    except Exception as e:  # noqa: BLE001 (the user's code refused what the file holds)
        raise ModelFileError(f"{where}: {key}.from_config refused the saved config: {type(e).__name__}: {e}") from None


def _builtin_function(name, kind):
    """A built-in loss or metric that Keras writes as a function entry (``"mean_squared_error"``)."""
    if kind == "loss":
        try:
            return losses_mod.get(name)  # a name: the built-in classes only
        except ValueError:
            return None
    return name if name.lower() in metrics_mod.VALID else None


def missing_name(v):
    """The name a user entry gives, for the warning of a load that could not compile."""
    return v["config"] if v["class_name"] == FUNCTION else v["registered_name"]


def uncompiled_warning(source, missing):
    """Keras's warning of a load that returns the model uncompiled, naming what is missing."""
    names = ", ".join(map(repr, dict.fromkeys(missing)))
    return (
        f"{source}: the model could not be compiled: its compile settings name {names}, which "
        f"{'is' if len(set(missing)) == 1 else 'are'} neither registered nor in custom_objects (convolab "
        "never imports code a file names), so it is returned uncompiled with its weights. Register it "
        "with @keras.saving.register_keras_serializable(), pass custom_objects={name: object} to "
        "load_model, or call model.compile() yourself"
    )


__all__ = [
    "FUNCTION",
    "SaveNotes",
    "check_entry",
    "entry",
    "is_custom_entry",
    "is_user_object",
    "missing_name",
    "resolve",
    "save_warning",
    "uncompiled_warning",
    "unnamed_loss_warning",
]
