"""Keras 3's model configs: ``get_config``/``from_config`` of Sequential and functional models,
``model.to_json()`` and ``keras.models.model_from_json``.

The dicts are Keras 3's (``keras/src/models/sequential.py`` and ``functional.py``)::

    Sequential: {"name", "trainable", "dtype", "layers": [InputLayer entry, layer entries...],
                 "build_input_shape": [None, ...]}
    Functional: {"name", "trainable", "layers": [entry + "name" + "inbound_nodes"],
                 "input_layers": ref or [refs], "output_layers": ref or [refs]}

A layer entry is Keras's ``{module, class_name, config, registered_name}`` (``module``
``keras.layers`` and no registered name for convolab's layers), a nested model's entry holds
its own config. An inbound node is
``{"args": [tensor or [tensors], ...], "kwargs": {...}}``; a tensor is ``{"class_name":
"__keras_tensor__", "config": {"shape", "dtype", "keras_history": [layer, node, index]}}``
and a ref ``[layer, node, index]``; a node index counts a layer's calls in this model.

A layer's config is its own ``get_config()`` (tuples kept, as Keras keeps them). Classes are
found as ``keras.saving.deserialize_keras_object`` finds them: ``custom_objects``, the custom
object scope and the registry for user classes, convolab's own layers for Keras's names;
nothing is imported by module name.
"""

from __future__ import annotations

import json

from ..layers.input_layer import Input, InputLayer
from ..layers.keras_tensor import KerasTensor

_KERAS_TENSOR = "__keras_tensor__"
_MODEL_CLASSES = ("Sequential", "Functional", "Model")
#: "Sequential" and "Functional" -> convolab's class, filled by models/sequential.py and
#: models/model.py (they use this module, so it cannot import them)
MODEL_CLASSES: dict = {}


def _input_entry(name, batch_shape, dtype):
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "registered_name": None,
        "config": {"batch_shape": list(batch_shape), "dtype": dtype, "sparse": False, "name": name},
    }


def layer_entry(layer):
    """Keras's ``{module, class_name, config, registered_name}`` for a layer (its ``get_config()``,
    tuples kept as Keras keeps them) or for a Sequential/functional model (its model config)."""
    from ..saving.object_registry import get_registered_name

    kind = model_kind(layer)
    if kind is not None:
        return {"module": "keras", "class_name": kind, "config": layer.get_config(), "registered_name": None}
    cls = type(layer)
    own = cls.__module__.startswith("convolab.")
    return {
        "module": "keras.layers" if own else cls.__module__,
        "class_name": cls.__name__,
        "config": layer.get_config(),
        "registered_name": None if own else get_registered_name(cls),
    }


def model_kind(layer):
    """``"Sequential"`` or ``"Functional"`` for convolab's own model classes; ``None`` otherwise."""
    if type(layer) is MODEL_CLASSES.get("Sequential"):
        return "Sequential"
    if type(layer) is MODEL_CLASSES.get("Functional") and layer.graph() is not None:
        return "Functional"
    return None


def _user_class(entry, custom_objects):
    """The user's class an entry names (``custom_objects``, the custom object scope, the registry)."""
    from ..saving.object_registry import get_registered_object

    for key in (entry.get("registered_name"), entry.get("class_name")):
        if isinstance(key, str) and key:
            found = get_registered_object(key, custom_objects)
            if found is not None:
                return found
    return None


def _builtin_layer(class_name):
    from .. import layers
    from ..layers.base import Layer

    cls = getattr(layers, class_name, None)
    return cls if isinstance(cls, type) and issubclass(cls, Layer) else None


def layer_from_entry(entry, custom_objects=None, where="from_config"):
    """The layer (or model) an entry describes; a new object with new weights.

    The class is the user's (``custom_objects``, the scope, the registry) or, for Keras's
    modules, convolab's layer of that name; nothing is imported by module name.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise ValueError(f"{where}: a layer entry must be a dict with a 'class_name'; got {_short(entry)}")
    kind, module = entry["class_name"], entry.get("module") or "keras"
    keras_module = module == "keras" or module.startswith("keras.")
    label = entry.get("name") or _name_in(entry)
    cls = _user_class(entry, custom_objects)
    if cls is None and keras_module and kind in _MODEL_CLASSES:
        return model_from_config({"class_name": kind, "config": entry.get("config")}, custom_objects, where)
    if cls is None and keras_module:
        cls = _builtin_layer(kind)
    if cls is None:
        raise TypeError(
            f"{where}: layer {label!r}: unknown class {kind!r} (module {module!r}); pass "
            f"custom_objects={{{kind!r}: {kind}}} or decorate the class with "
            "@keras.saving.register_keras_serializable()"
        )
    config = dict(entry.get("config") or {})
    if kind == "Lambda" and keras_module and isinstance(config.get("function"), str):
        # a config names a Lambda's function: the function itself must be given, as for a class
        fn = get_function(config["function"], custom_objects)
        if fn is None:
            raise TypeError(
                f"{where}: Lambda layer {label!r} calls {config['function']!r}; pass "
                f"custom_objects={{{config['function']!r}: {config['function']}}} (a config holds no code)"
            )
        config["function"] = fn
    try:
        return cls.from_config(config)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{where}: layer {label!r} ({kind}): {e}") from None


def get_function(name, custom_objects):
    from ..saving.object_registry import get_registered_object

    found = get_registered_object(name, custom_objects)
    return found if callable(found) else None


def model_from_config(entry, custom_objects=None, where="from_config"):
    """A model from ``{"class_name", "config"}``: Sequential, Functional or a user's model class."""
    from ..saving.object_registry import CustomObjectScope

    kind, config = entry.get("class_name"), entry.get("config")
    with CustomObjectScope(custom_objects or {}):
        cls = _user_class(entry, custom_objects)
        if cls is None and kind == "Sequential":
            return MODEL_CLASSES["Sequential"].from_config(config, custom_objects)
        if cls is None and kind in ("Functional", "Model"):
            return MODEL_CLASSES["Functional"].from_config(config, custom_objects)
        if cls is None or not (isinstance(cls, type) and getattr(cls, "_keras_model", False)):
            raise TypeError(
                f"{where}: unknown model class {kind!r}; pass custom_objects={{{kind!r}: {kind}}} or "
                "decorate the class with @keras.saving.register_keras_serializable()"
            )
        return cls.from_config(config)


# -- Sequential ------------------------------------------------------------------------------
def sequential_config(model):
    layers = [layer_entry(l) for l in model.layers]
    shape = model.input_shape
    cfg = {"name": model.name, "trainable": model.trainable, "dtype": model.dtype}
    if shape is not None:
        layers.insert(0, _input_entry(f"{model.name}_input", shape, model.dtype))
    cfg["layers"] = layers
    if shape is not None:
        cfg["build_input_shape"] = list(shape)
    return cfg


def sequential_from_config(cls, config, custom_objects=None):
    from ..saving.object_registry import CustomObjectScope

    where = f"{cls.__name__}.from_config"
    config = _checked(config, where, ("layers",))
    model = cls(name=config.get("name"))
    with CustomObjectScope(custom_objects or {}):
        for i, entry in enumerate(config["layers"]):
            if isinstance(entry, dict) and entry.get("class_name") == "InputLayer":
                c = entry.get("config") or {}
                model.add(
                    Input(batch_shape=tuple(c["batch_shape"]), dtype=_dtype_name(c.get("dtype")), name=c.get("name"))
                )
            else:
                model.add(layer_from_entry(entry, custom_objects, f"{where}: layers[{i}]"))
    if not model.built and config.get("build_input_shape") and model.layers:
        model.build(tuple(config["build_input_shape"]))
    if config.get("trainable") is False:
        model.trainable = False
    return model


# -- Functional ------------------------------------------------------------------------------
def functional_config(model):
    nodes = model.graph()[0]
    index, calls = {}, {}
    for node in nodes:
        mine = calls.setdefault(id(node.layer), [])
        index[id(node)] = len(mine)
        mine.append(node)

    def ref(t):
        return [t.node.layer.name, index[id(t.node)], t.index]

    def tensor(t):
        return {
            "class_name": _KERAS_TENSOR,
            "config": {"shape": list(t.shape), "dtype": t.dtype, "keras_history": ref(t)},
        }

    entries = []
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            t = calls[id(layer)][0].outputs[0]
            entry = _input_entry(layer.name, t.shape, t.dtype)
            inbound = []
        else:
            entry = layer_entry(layer)
            inbound = []
            for node in calls[id(layer)]:
                first = [tensor(t) for t in node.inputs] if node.multi else tensor(node.inputs[0])
                inbound.append(
                    {
                        "args": [first, *_plain(list(node.args), model, layer)],
                        "kwargs": _plain(dict(node.kwargs), model, layer),
                    }
                )
        entries.append({**entry, "name": layer.name, "inbound_nodes": inbound})

    def refs(struct):  # as Keras maps its tensors: one ref, a list, or a dict keyed as given
        if isinstance(struct, dict):
            return {k: ref(t) for k, t in struct.items()}
        return [ref(t) for t in struct] if isinstance(struct, list) else ref(struct)

    return {
        "name": model.name,
        "trainable": model.trainable,
        "layers": entries,
        "input_layers": refs(model.input),
        "output_layers": refs(model.output),
    }


def functional_from_config(cls, config, custom_objects=None):
    from ..saving.object_registry import CustomObjectScope

    where = f"{cls.__name__}.from_config"
    config = _checked(config, where, ("layers", "input_layers", "output_layers"))
    made, values, pending = {}, {}, []
    with CustomObjectScope(custom_objects or {}):
        for i, entry in enumerate(config["layers"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ValueError(f"{where}: layers[{i}] must be a dict with a 'name'; got {_short(entry)}")
            name = entry["name"]
            if name in made:
                raise ValueError(f"{where}: two layers are named {name!r}")
            if entry.get("class_name") == "InputLayer":
                c = entry.get("config") or {}
                made[name] = None
                values[(name, 0)] = [
                    Input(batch_shape=tuple(c["batch_shape"]), name=name, dtype=_dtype_name(c.get("dtype")))
                ]
                continue
            made[name] = layer_from_entry(entry, custom_objects, f"{where}: layers[{i}]")
            pending.extend((name, k, node) for k, node in enumerate(entry.get("inbound_nodes") or []))
        # a node runs once the nodes it reads have run; the file's order need not be a run order
        while pending:
            ready = [p for p in pending if all(key in values for key in _keys(p[2]["args"]))]
            if not ready:
                missing = sorted({k for p in pending for k in _keys(p[2]["args"]) if k not in values})
                raise ValueError(f"{where}: layer calls read tensors that no call makes: {missing}")
            for name, k, node in ready:
                pending.remove((name, k, node))
                args = [_resolve(a, values, where) for a in node["args"]]
                out = made[name](*args, **(node.get("kwargs") or {}))
                values[(name, k)] = list(out) if isinstance(out, (list, tuple)) else [out]
    inputs = _resolve_refs(config["input_layers"], values, where)
    outputs = _resolve_refs(config["output_layers"], values, where)
    model = cls(inputs, outputs, name=config.get("name"))
    if config.get("trainable") is False:
        model.trainable = False
    return model


def _keys(struct):
    """The (layer, node) pairs the tensors in ``struct`` come from."""
    if isinstance(struct, dict) and struct.get("class_name") == _KERAS_TENSOR:
        history = struct["config"]["keras_history"]
        return [(history[0], history[1])]
    if isinstance(struct, (list, tuple)):
        return [k for s in struct for k in _keys(s)]
    return []


def _resolve(struct, values, where):
    if isinstance(struct, dict) and struct.get("class_name") == _KERAS_TENSOR:
        return _tensor(struct["config"]["keras_history"], values, where)
    if isinstance(struct, list):
        return [_resolve(s, values, where) for s in struct]
    return struct


def _tensor(history, values, where):
    name, node, index = history[:3]
    out = values.get((name, node))
    if out is None or not 0 <= index < len(out):
        raise ValueError(f"{where}: no tensor {index} of call {node} of layer {name!r}")
    return out[index]


def _resolve_refs(refs, values, where):
    if isinstance(refs, list) and refs and isinstance(refs[0], str):
        return _tensor(refs, values, where)
    if (
        isinstance(refs, dict)
        and refs
        and all(isinstance(r, list) and r and isinstance(r[0], str) for r in refs.values())
    ):
        return {k: _tensor(r, values, where) for k, r in refs.items()}  # Keras's dict inputs/outputs
    if not isinstance(refs, list) or not refs:
        raise ValueError(
            f"{where}: input_layers/output_layers must be [layer, node, index], a list of them or a "
            f"dict of them; got {_short(refs)}"
        )
    return [_tensor(r, values, where) for r in refs]


# -- JSON ----------------------------------------------------------------------------------
def to_json(model, **kwargs):
    """``model.to_json()``: the model's entry (``{module, class_name, config, registered_name}``) as JSON."""
    entry = layer_entry(model)
    try:
        return json.dumps(entry, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{model.describe()}.to_json: the config holds a value JSON cannot (a function, an "
            f"object without get_config?): {e}"
        ) from None


def model_from_json(json_string, custom_objects=None):
    """``keras.models.model_from_json``: a new model (new weights) from :func:`to_json`'s text."""
    if not isinstance(json_string, (str, bytes, bytearray)):
        raise TypeError(f"model_from_json: expected the JSON text of model.to_json(); got {type(json_string).__name__}")
    try:
        entry = json.loads(json_string)
    except ValueError as e:
        raise ValueError(f"model_from_json: not JSON: {e}") from None
    if not isinstance(entry, dict) or "class_name" not in entry or "config" not in entry:
        raise ValueError(
            f"model_from_json: expected an object with 'class_name' and 'config' (model.to_json()'s "
            f"text); got {_short(entry)}"
        )
    return model_from_config(entry, custom_objects, "model_from_json")


# -- helpers --------------------------------------------------------------------------------
def _checked(config, where, keys):
    if not isinstance(config, dict):
        raise TypeError(f"{where}: expected a config dict (model.get_config()); got {type(config).__name__}")
    missing = [k for k in keys if k not in config]
    if missing:
        raise ValueError(f"{where}: the config lacks {', '.join(map(repr, missing))}; keys given: {sorted(config)}")
    return config


def _dtype_name(dtype):
    """A dtype as written: a name, or Keras's DTypePolicy object."""
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name")
    return dtype


def _plain(value, model, layer):
    if isinstance(value, KerasTensor):
        raise ValueError(
            f"{model.describe()}.get_config: {layer.describe()} is called with a tensor among its extra "
            "arguments, which a config cannot hold"
        )
    return value


def _name_in(entry):
    config = entry.get("config")
    return config.get("name") if isinstance(config, dict) else entry.get("class_name")


def _short(value, n=120):
    text = repr(value)
    return text if len(text) <= n else text[:n] + "..."
