"""Keras 3's architecture JSON (``config.json`` of a ``.keras`` file) to convolab's and back.

Keras 3 writes each object as ``{"module", "class_name", "config", "registered_name"}`` (plus
``build_config``/``compile_config`` on models; ``name`` and ``inbound_nodes`` on the layers
of a functional model, each node ``{"args": [tensor or [tensors]], "kwargs": {}}`` with tensors
``{"class_name": "__keras_tensor__", "config": {"shape", "dtype", "keras_history": [layer,
node, index]}}``); dtypes are ``DTypePolicy`` objects and initializers are objects too.

:func:`from_keras` turns such a document into convolab's own architecture description
(:mod:`convolab.saving.graph_schema`), which is then checked by the same strict schema and
planner as convolab's files. It names classes only from an allow-list, never imports or runs
anything, and refuses what it does not know: a Lambda layer, a class convolab lacks, a custom
object (layer, initializer, regularizer or constraint), a key with an unexpected value. The one
way in for user code is a layer class the user registered (:mod:`.object_registry`:
``keras.saving.register_keras_serializable``, a custom object scope, ``custom_objects=``): an
entry naming it (by ``registered_name`` ``"package>name"``, or by class name) is built by that
class's ``from_config``; its module is never imported.
"""

from __future__ import annotations

from ..initializers import canonical_name
from .container import short_repr
from . import object_registry
from .errors import ModelFileError
from .graph_schema import ENTRY_CLASSES, MODEL_CLASSES
from .keras_h5 import snake_case

# shared_object_id: Keras marks an object several layers share (one DTypePolicy) and still writes it whole
_OBJECT_KEYS = {"module", "class_name", "config", "registered_name", "shared_object_id"}
_ENTRY_KEYS = _OBJECT_KEYS | {"build_config", "compile_config", "name", "inbound_nodes"}
_DTYPE_POLICIES = {"DTypePolicy", "FloatDTypePolicy"}
#: keys Keras writes that convolab has no use for, accepted only with these values
_NEUTRAL = {
    "data_format": ("channels_last", None),
    "noise_shape": (None,),
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "quantization_config": (None,),
    "sparse": (False,),
    "ragged": (False,),
    "optional": (False,),
    "axis@Softmax": (-1,),
    # Keras 3.15's BatchNormalization: batch renormalization, off
    "renorm@BatchNormalization": (False,),
    "renorm_clipping@BatchNormalization": (None,),
}
#: keys Keras writes that mean nothing with the values above (renorm off): any number in their range
_IGNORED_NUMBERS = {"renorm_momentum@BatchNormalization": (0.0, 1.0)}
#: classes whose convolab config keeps ``data_format``
#: initializer arguments of Keras 3.10+ that convolab accepts only as null
_FAN_AXES = ("input_axes", "output_axes")
#: the arguments Keras writes for these initializers, at convolab's fixed values (Keras's defaults):
#: read when they hold exactly these, written out in full
_DEFAULT_ARGS = {
    "RandomUniform": {"minval": -0.05, "maxval": 0.05},
    "RandomNormal": {"mean": 0.0, "stddev": 0.05},
    "TruncatedNormal": {"mean": 0.0, "stddev": 0.05},
}
_KEEPS_DATA_FORMAT = {"ZeroPadding2D", "Cropping2D", "UpSampling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D"}


def _fail(where, expected, got):
    raise ModelFileError(f"{where}: expected {expected}; got {short_repr(got)}")


def _check_object(v, where, keys=_OBJECT_KEYS):
    if not isinstance(v, dict):
        _fail(where, "an object {module, class_name, config, registered_name}", v)
    extra = sorted(set(v) - keys)
    if extra:
        _fail(where, f"only the keys {sorted(keys)}", extra)
    if not isinstance(v.get("class_name"), str):
        _fail(f"{where}.class_name", "a string", v.get("class_name"))
    return v["class_name"]


def _check_class(v, where, allowed, custom=False):
    """The class an entry names: a built-in one of ``allowed`` or, if ``custom``, the key under which
    the user registered a layer class (``keras.saving.register_keras_serializable``, a
    ``custom_object_scope`` or ``load_model(custom_objects=...)``); anything else is refused."""
    cls = _check_object(v, where, _ENTRY_KEYS)
    if cls == "Lambda":
        raise ModelFileError(
            f"{where}: a Lambda layer holds Python code, which convolab never runs from a file; "
            "rebuild that part of the model in code"
        )
    module, registered = v.get("module"), v.get("registered_name")
    keras_module = module is None or (isinstance(module, str) and (module == "keras" or module.startswith("keras.")))
    if cls in allowed and keras_module and registered in (None, cls):
        return cls
    if custom:
        key, _ = object_registry.lookup(cls, registered)
        if key is not None and object_registry.custom_layer_class(key) is not None:
            return key
        if not keras_module or registered not in (None, cls):
            raise ModelFileError(
                f"{where}: the custom class {registered or cls!r} (module {module!r}) is not registered; decorate it "
                "with @keras.saving.register_keras_serializable() or pass custom_objects={" + repr(cls) + ": "
                f"{cls}}} to load_model (convolab never imports code a file names)"
            )
    if cls not in allowed:
        raise ModelFileError(
            f"{where}: convolab has no layer class {cls!r}; it reads {', '.join(sorted(allowed))} "
            "and the custom layers registered with keras.saving.register_keras_serializable"
        )
    if not keras_module:
        _fail(f"{where}.module", "a Keras module ('keras', 'keras.layers'...)", module)
    _fail(f"{where}.registered_name", f"null or {cls!r} (a built-in class, never a custom object)", registered)


def _dtype(v, where):
    if isinstance(v, str):
        return v
    cls = _check_object(v, where)
    cfg = v.get("config")
    if cls not in _DTYPE_POLICIES or not isinstance(cfg, dict) or set(cfg) != {"name"}:
        _fail(where, "a dtype name or a DTypePolicy {config: {name}}", v)
    return cfg["name"]


def _initializer(v, where):
    if isinstance(v, str):
        return v
    cls = _check_object(v, where)
    cfg = v.get("config", {})
    fixed = _DEFAULT_ARGS.get(cls, {})
    # Keras 3.10+ writes input_axes/output_axes (None: the usual fan-in and fan-out) for Glorot and He;
    # RandomUniform and the normal ones their ranges, which convolab takes at Keras's defaults only
    if (
        v.get("registered_name") is not None
        or not isinstance(cfg, dict)
        or set(cfg) - {"seed", *_FAN_AXES, *fixed}
        or any(cfg.get(key) is not None for key in _FAN_AXES)
        or any(key in cfg and _not_number(cfg[key], value) for key, value in fixed.items())
    ):
        _fail(
            where,
            "a built-in initializer without arguments other than seed (input_axes and output_axes null; "
            "RandomUniform's minval -0.05 and maxval 0.05, RandomNormal's and TruncatedNormal's mean 0 and "
            "stddev 0.05)",
            v,
        )
    return snake_case(cls)  # the schema checks that convolab knows it


def _not_number(v, value) -> bool:
    return isinstance(v, bool) or not isinstance(v, (int, float)) or v != value


def _penalty(v, where):
    """A regularizer or constraint object as convolab writes it: ``{class_name, config}``; the
    schema then checks the class (L1, L2, L1L2, MaxNorm...) and its arguments."""
    cls = _check_object(v, where)
    if v.get("registered_name") is not None:
        _fail(
            f"{where}.registered_name",
            "null (a built-in regularizer or constraint, never a custom one)",
            v["registered_name"],
        )
    return {"class_name": cls, "config": v.get("config", {})}


def _custom_activation(v, where):
    """A registered function as Keras 3 writes it (``keras.activations.serialize``): ``{module:
    "builtins", class_name: "function", config: "package>name", registered_name: "function"}``,
    to its name; the layer schema then admits it only if it is registered at load time."""
    cls = _check_object(v, where)
    if cls != "function" or not isinstance(v.get("config"), str):
        _fail(where, "an activation name or a registered function {class_name: 'function', config: name}", v)
    return v["config"]


def layer_config(cls, cfg, where):
    """convolab's config for a layer of class ``cls`` from Keras's ``cfg``."""
    if not isinstance(cfg, dict):
        _fail(where, "an object", cfg)
    out = {}
    for key, value in cfg.items():
        at = f"{where}.{key}"
        if key == "dtype":
            out[key] = _dtype(value, at)
        elif key.endswith("_initializer"):
            out[key] = _initializer(value, at)
        elif key.endswith(("_regularizer", "_constraint")):
            if value is not None:  # None: Keras writes every such key; convolab only those set
                out[key] = _penalty(value, at)
        elif key == "data_format" and cls in _KEEPS_DATA_FORMAT:
            out[key] = value
        elif key == "activation" and isinstance(value, dict):
            out[key] = _custom_activation(value, at)
        elif f"{key}@{cls}" in _IGNORED_NUMBERS:
            lo, hi = _IGNORED_NUMBERS[f"{key}@{cls}"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                _fail(at, f"a number in [{lo}, {hi}]", value)
        elif key in _NEUTRAL or f"{key}@{cls}" in _NEUTRAL:
            allowed = _NEUTRAL.get(key) or _NEUTRAL[f"{key}@{cls}"]
            if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
                _fail(at, f"one of {list(allowed)} (convolab supports no other)", value)
        elif isinstance(value, dict):
            _fail(at, "a number, string, list or null", value)
        else:
            out[key] = value
    if cls != "InputLayer":
        out.setdefault("trainable", True)
        out.setdefault("dtype", "float32")
    return out


# -- Keras -> convolab ---------------------------------------------------------------
def from_keras(doc, where):
    """``(class_name, convolab config)`` of the model a Keras ``config.json`` describes."""
    cls = _check_class(doc, where, set(MODEL_CLASSES))
    return cls, _model_config(cls, doc.get("config"), f"{where}.config")


def _model_config(cls, cfg, where):
    if not isinstance(cfg, dict):
        _fail(where, "an object", cfg)
    return _sequential(cfg, where) if cls == "Sequential" else _functional(cfg, where)


def _entry(e, where, allowed):
    cls = _check_class(e, where, allowed, custom=True)
    if cls in MODEL_CLASSES:
        return cls, _model_config(cls, e.get("config"), f"{where}.config")
    if cls not in allowed:  # a registered user layer: its own config, the dtype policy as a name
        return cls, custom_layer_config(e.get("config"), f"{where}.config")
    return cls, layer_config(cls, e.get("config"), f"{where}.config")


def custom_layer_config(cfg, where):
    """The config of a user's layer from Keras's: its own keys as written, the dtype as a name.

    The layer's ``from_config`` (the user's code, registered as loadable) interprets the rest.
    """
    if not isinstance(cfg, dict):
        _fail(where, "an object", cfg)
    out = dict(cfg)
    if "dtype" in out:
        out["dtype"] = _dtype(out["dtype"], f"{where}.dtype")
    out.setdefault("trainable", True)
    out.setdefault("dtype", "float32")
    return out


def _sequential(cfg, where):
    extra = sorted(set(cfg) - {"name", "trainable", "dtype", "layers", "build_input_shape"})
    if extra:
        _fail(where, "the keys name, trainable, dtype, layers, build_input_shape", extra)
    layers = cfg.get("layers")
    if not isinstance(layers, list) or not layers:
        _fail(f"{where}.layers", "a non-empty list", layers)
    entries, input_shape = [], None
    for i, e in enumerate(layers):
        cls, lcfg = _entry(
            e, f"{where}.layers[{i}]", ENTRY_CLASSES - {"InputLayer"} | ({"InputLayer"} if i == 0 else set())
        )
        if cls == "InputLayer":
            input_shape = lcfg.get("batch_shape")
            if not isinstance(input_shape, list) or len(input_shape) < 2:
                _fail(f"{where}.layers[0].config.batch_shape", "a list [batch, ...]", input_shape)
            input_shape = input_shape[1:]
        else:
            entries.append({"class_name": cls, "config": lcfg})
    if input_shape is None:
        built = cfg.get("build_input_shape")
        if not isinstance(built, list) or len(built) < 2:
            raise ModelFileError(
                f"{where}: no input shape (no InputLayer and no build_input_shape); convolab "
                "builds a model only with a known input shape"
            )
        input_shape = built[1:]
    dtype = _dtype(cfg["dtype"], f"{where}.dtype") if "dtype" in cfg else "float32"
    return {
        "name": cfg.get("name"),
        "dtype": dtype,
        "input_shape": input_shape,
        "trainable": cfg.get("trainable", True),
        "layers": entries,
    }


def _tensor_ref(t, where):
    if not isinstance(t, dict) or t.get("class_name") != "__keras_tensor__" or not isinstance(t.get("config"), dict):
        _fail(where, "a {class_name: '__keras_tensor__', config: {...}} tensor (convolab takes tensors only)", t)
    extra = sorted(set(t) - {"class_name", "config"}) + sorted(set(t["config"]) - {"shape", "dtype", "keras_history"})
    if extra:
        _fail(where, "a tensor with shape, dtype and keras_history only", extra)
    history = t["config"].get("keras_history")
    if not isinstance(history, list) or len(history) != 3:
        _fail(f"{where}.config.keras_history", "[layer name, node index, tensor index]", history)
    return list(history)


def _node(node, where):
    if not isinstance(node, dict) or set(node) - {"args", "kwargs"}:
        _fail(where, "a node {args, kwargs}", node)
    args, kwargs = node.get("args"), node.get("kwargs", {})
    # Keras 3 writes ``mask: null`` and, for a layer built while the graph was traced in inference,
    # ``training: false``; both are what convolab does anyway (a model's own training flag wins in Keras
    # too: ``Functional._run_through_graph`` passes it to every layer that takes one)
    if not (isinstance(kwargs, dict) and all(v is None or (k == "training" and v is False) for k, v in kwargs.items())):
        _fail(f"{where}.kwargs", "no arguments besides the input tensors (mask null, training false or null)", kwargs)
    if not isinstance(args, list) or len(args) != 1:
        _fail(f"{where}.args", "one argument: a tensor or a list of tensors", args)
    arg = args[0]
    if isinstance(arg, list):
        if not arg:
            _fail(f"{where}.args[0]", "a non-empty list of tensors", arg)
        return [_tensor_ref(t, f"{where}.args[0][{j}]") for j, t in enumerate(arg)]
    return [_tensor_ref(arg, f"{where}.args[0]")]


def _refs(v, where):
    if isinstance(v, list) and len(v) == 1 and isinstance(v[0], list):
        return v[0]  # one input or output, written as a list of one
    return v


def _functional(cfg, where):
    extra = sorted(set(cfg) - {"name", "trainable", "layers", "input_layers", "output_layers", "dtype"})
    if extra:
        _fail(where, "the keys name, trainable, layers, input_layers, output_layers", extra)
    layers = cfg.get("layers")
    if not isinstance(layers, list) or not layers:
        _fail(f"{where}.layers", "a non-empty list", layers)
    entries = []
    for i, e in enumerate(layers):
        at = f"{where}.layers[{i}]"
        cls, lcfg = _entry(e, at, ENTRY_CLASSES)
        nodes = e.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            _fail(f"{at}.inbound_nodes", "a list", nodes)
        name = e.get("name", lcfg.get("name") if isinstance(lcfg, dict) else None)
        entries.append(
            {
                "class_name": cls,
                "name": name,
                "config": lcfg,
                "inbound_nodes": [_node(n, f"{at}.inbound_nodes[{k}]") for k, n in enumerate(nodes)],
            }
        )
    functional = {e["name"] for e in entries if e["class_name"] == "Functional"}
    return {
        "name": cfg.get("name"),
        "trainable": cfg.get("trainable", True),
        "layers": entries,
        "input_layers": _model_refs(cfg.get("input_layers"), functional, -1, f"{where}.input_layers"),
        "output_layers": _model_refs(cfg.get("output_layers"), functional, -1, f"{where}.output_layers"),
    }


def _model_refs(v, functional, shift, where):
    """A model's input/output references. Keras counts a nested functional model's built-in node in
    these (``Functional.get_config``: ``kept_nodes = 1``) but not in inbound nodes; convolab counts
    calls only, so the node index of such a reference moves by ``shift``."""
    v = _refs(v, where)
    if not isinstance(v, list) or not v:
        return v
    one = not isinstance(v[0], list)
    out = []
    for r in [v] if one else v:
        if isinstance(r, list) and len(r) == 3 and r[0] in functional and isinstance(r[1], int):
            if r[1] + shift < 0:
                _fail(where, f"a node index of at least 1 for the nested functional model {r[0]!r}", r)
            r = [r[0], r[1] + shift, r[2]]
        out.append(r)
    return out[0] if one else out


# -- convolab -> Keras ---------------------------------------------------------------
def _policy(dtype):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}


def _keras_initializer(name):
    name = canonical_name(name)  # "uniform", "GlorotUniform": Keras's class is named after the registry's name
    cls = "".join(part.capitalize() for part in name.split("_"))
    return {
        "module": "keras.initializers",
        "class_name": cls,
        "config": {} if name in ("zeros", "ones") else {**_DEFAULT_ARGS.get(cls, {}), "seed": None},
        "registered_name": None,
    }


def keras_layer_config(cls, cfg):
    out = {}
    for key, value in cfg.items():
        if key == "input_shape":
            continue  # Keras 3 keeps the input shape in an InputLayer
        if key == "dtype":
            value = _policy(value)
        elif key.endswith("_initializer"):
            value = _keras_initializer(value)
        elif key.endswith(("_regularizer", "_constraint")) and value is not None:
            module = "keras.regularizers" if key.endswith("_regularizer") else "keras.constraints"
            value = {"module": module, **value, "registered_name": None}
        elif key == "activation" and isinstance(value, str) and ">" in value:
            # a registered function, as keras.activations.serialize writes one
            value = {"module": "builtins", "class_name": "function", "config": value, "registered_name": "function"}
        out[key] = value
    if cls == "Softmax":
        out["axis"] = -1
    return out


def _layer_object(cls, config):
    return {"module": "keras.layers", "class_name": cls, "config": config, "registered_name": None}


def _custom_layer_object(entry):
    """A user's layer as Keras writes it: its module and class, ``registered_name`` ``"package>name"``
    when registered (else the class name), the dtype as a policy, its other keys as they are."""
    cfg = {k: (_policy(v) if k == "dtype" else v) for k, v in entry["config"].items() if k != "input_shape"}
    return {
        "module": entry["module"],
        "class_name": entry["python_class"],
        "config": cfg,
        "registered_name": entry["registered_name"],
    }


def _object(e, model):
    if "module" in e:
        return _custom_layer_object(e)
    if e["class_name"] in MODEL_CLASSES:
        return to_keras(e, model)
    return _layer_object(e["class_name"], keras_layer_config(e["class_name"], e["config"]))


def _input_layer(name, dtype, batch_shape):
    return _layer_object(
        "InputLayer", {"batch_shape": list(batch_shape), "dtype": dtype, "sparse": False, "name": name}
    )


def to_keras(entry, model):
    """Keras's serialized form of a model described by convolab's ``entry`` (``_Describer``)."""
    cls, cfg = entry["class_name"], entry["config"]
    if cls == "Sequential":
        shape = [None] + list(cfg["input_shape"])
        layers = [_input_layer(f"{cfg['name']}_input", cfg["dtype"], shape)]
        for e, layer in zip(cfg["layers"], model.layers):
            layers.append(_object(e, layer))
        return {
            "module": "keras",
            "class_name": "Sequential",
            "registered_name": None,
            "config": {
                "name": cfg["name"],
                "trainable": cfg["trainable"],
                "dtype": _policy(cfg["dtype"]),
                "layers": layers,
                "build_input_shape": shape,
            },
            "build_config": {"input_shape": shape},
        }
    shapes = _tensor_shapes(model)
    functional = {e["name"] for e in cfg["layers"] if e["class_name"] == "Functional"}
    layers = []
    for e in cfg["layers"]:
        kind, name = e["class_name"], e["name"]
        if kind == "InputLayer":
            obj = _input_layer(name, e["config"]["dtype"], e["config"]["batch_shape"])
        else:
            obj = _object(e, model.get_layer(name))
        nodes = []
        for node in e["inbound_nodes"]:
            tensors = [_keras_tensor(r, shapes) for r in node]
            nodes.append(
                {
                    "args": [tensors if len(tensors) > 1 or _takes_list(model.get_layer(name)) else tensors[0]],
                    "kwargs": {},
                }
            )
        layers.append({**obj, "name": name, "inbound_nodes": nodes})
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "registered_name": "Functional",
        "config": {
            "name": cfg["name"],
            "trainable": cfg["trainable"],
            "layers": layers,
            "input_layers": _listed(_model_refs(cfg["input_layers"], functional, 1, "")),
            "output_layers": _listed(_model_refs(cfg["output_layers"], functional, 1, "")),
        },
        "build_config": {"input_shape": None},
    }


def unique_layer_names(doc):
    """Give the layers of each Sequential in ``doc`` (a model's Keras config, changed in place) distinct
    names, as Keras requires: ``Sequential.add`` refuses a name already used, the InputLayer's included.
    A later layer named like an earlier one becomes ``name_1`` (``_2``... if taken); the InputLayer
    (convolab names it after the model and does not keep it) yields to a layer of its name.

    Returns:
        ``[(model name, old name, new name)]`` for the layers renamed (the InputLayer's not counted).
    """
    renamed = []
    layers = doc["config"]["layers"]
    if doc["class_name"] == "Sequential":
        taken = {obj["config"]["name"] for obj in layers}
        seen = set()
        for obj in sorted(layers, key=lambda o: o["class_name"] == "InputLayer"):
            name = obj["config"]["name"]
            if name in seen:
                k = 1
                while f"{name}_{k}" in taken:
                    k += 1
                obj["config"]["name"] = f"{name}_{k}"
                taken.add(obj["config"]["name"])
                if obj["class_name"] != "InputLayer":
                    renamed.append((doc["config"]["name"], name, obj["config"]["name"]))
            seen.add(obj["config"]["name"])
    for obj in layers:
        if obj["class_name"] in MODEL_CLASSES:
            renamed += unique_layer_names(obj)
    return renamed


def _listed(refs):
    return refs if isinstance(refs[0], list) else [refs]


def _takes_list(layer):
    from .graph_io import takes_list

    return takes_list(layer)


def _keras_tensor(r, shapes):
    shape, dtype = shapes[tuple(r)]
    return {"class_name": "__keras_tensor__", "config": {"shape": list(shape), "dtype": dtype, "keras_history": r}}


def _tensor_shapes(model):
    """``(layer name, node index, tensor index) -> (shape, dtype)`` for the tensors of ``model``'s graph."""
    nodes = model.graph()[0]
    calls, out = {}, {}
    for node in nodes:
        k = calls.get(id(node.layer), 0)
        calls[id(node.layer)] = k + 1
        for j, t in enumerate(node.outputs):
            out[(node.layer.name, k, j)] = (tuple(t.shape), t.dtype)
    return out


__all__ = ["from_keras", "layer_config", "to_keras", "unique_layer_names"]
