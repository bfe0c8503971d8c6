"""The strict schema of a functional model's architecture (``"class_name": "Functional"``).

Keras's layout: each layer entry has ``class_name``, ``name``, ``config`` and ``inbound_nodes``
(one list per call of the layer, each a list of ``[layer name, node index, tensor index]``);
the model lists its ``input_layers`` and ``output_layers`` the same way (one reference, or a
list of them when the model was given a list). Layers may be built-in layers, merge layers,
``InputLayer``, nested ``Sequential`` and ``Functional`` models (nesting capped at
:data:`MAX_DEPTH`), or a user's layer class registered as loadable (:mod:`.object_registry`). This module checks types and ranges only; references, cycles and shapes are
checked by :func:`convolab.saving.graph_io.plan_graph`.
"""

from __future__ import annotations

from collections.abc import Set

from . import object_registry
from ..utils.layer_schema import layer_schema as _layer
from .errors import ModelFileError
from .schema import (
    LAYER_SCHEMAS,
    MAX_INT,
    MAX_LAYERS,
    _fail,
    _header,
    boolean,
    compile_schema,
    integer,
    list_of,
    nullable,
    number,
    obj,
    rng_state_schema,
    shape,
    string,
)

#: models inside models, at most
MAX_DEPTH = 8
#: calls of one layer in one graph, at most
MAX_NODES = 1_000
#: tensors into one call, or into / out of one model, at most
MAX_TENSORS = 64
#: length of a weight path (names joined by '/')
MAX_PATH = 4096

MERGE_SCHEMAS = {name: _layer() for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")}
MERGE_SCHEMAS["Concatenate"] = _layer({"axis": integer(-8, 7)})
MODEL_CLASSES = ("Sequential", "Functional")


class _EntryClasses(Set):
    """The class names a graph entry may have: the registered layers (read at each use, so a layer
    class defined later is admitted), the merge layers, the models and InputLayer."""

    def _names(self):
        return {**LAYER_SCHEMAS, **MERGE_SCHEMAS, **dict.fromkeys(MODEL_CLASSES), "InputLayer": None}

    def __contains__(self, name):
        return name in self._names()

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())

    @classmethod
    def _from_iterable(cls, it):
        return frozenset(it)  # ENTRY_CLASSES - {...} and the like: a plain set


ENTRY_CLASSES = _EntryClasses()


def name(v, where):
    """A layer or model name; ``/`` is refused because it separates the parts of a weight path."""
    string()(v, where)
    if "/" in v:
        _fail(where, "a name without '/' (it separates the parts of a weight path)", v)
    return v


def ref(v, where):
    """``[layer name, node index, tensor index]``."""
    if not isinstance(v, list) or len(v) != 3:
        _fail(where, "[layer name, node index, tensor index]", v)
    return [
        name(v[0], f"{where}[0]"),
        integer(0, MAX_NODES - 1)(v[1], f"{where}[1]"),
        integer(0, MAX_TENSORS - 1)(v[2], f"{where}[2]"),
    ]


def refs(v, where):
    """One reference (the model was given one tensor) or a list of them (it was given a list)."""
    if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str):
        return ref(v, where)
    return list_of(ref, 1, MAX_TENSORS)(v, where)


def _batch_shape(v, where):
    return list_of(nullable(integer(1, MAX_INT)), 2, 7)(v, where)  # the batch axis and 1 to 6 more


#: an input's dtype: floats, or integers for a model whose first layer reads indices (Embedding)
INPUT_SCHEMA = obj(
    {"name": name, "dtype": string(16, {"float32", "float64", "int32", "int64"}), "batch_shape": _batch_shape}
)


def _check_depth(where, depth):
    if depth > MAX_DEPTH:
        raise ModelFileError(f"{where}: models nested more than {MAX_DEPTH} deep")


def _class_name(allowed):
    """A class name from ``allowed``, or the name of a user's layer class registered with
    ``keras.saving.register_keras_serializable`` (or in scope for this load)."""

    def check(v, where):
        if isinstance(v, str) and v not in allowed and object_registry.custom_layer_class(v) is not None:
            return string(MAX_PATH)(v, where)
        return string(64, allowed)(v, where)

    return check


def _custom_config(v, where):
    """A user's layer config: an object with its name, trainable flag and dtype checked; the rest is
    the layer's own (its ``from_config`` decides)."""
    if not isinstance(v, dict):
        _fail(where, "an object", v)
    name(v.get("name"), f"{where}.name")
    boolean(v.get("trainable", True), f"{where}.trainable")
    string(16, {"float32", "float64"})(v.get("dtype", "float32"), f"{where}.dtype")
    return v


def _entry_config(class_name, v, where, depth):
    if class_name not in ENTRY_CLASSES:  # checked by _class_name: a registered user layer
        return _custom_config(v, where)
    if class_name == "Functional":
        return functional_config(v, where, depth + 1)
    if class_name == "Sequential":
        return sequential_config(v, where, depth + 1)
    if class_name == "InputLayer":
        return INPUT_SCHEMA(v, where)
    if class_name in MERGE_SCHEMAS:
        return MERGE_SCHEMAS[class_name](v, where)
    return LAYER_SCHEMAS[class_name](v, where)


class _StackClasses(_EntryClasses):
    """The class names an entry of a nested Sequential may have: the registered layers and the models."""

    def _names(self):
        return {**LAYER_SCHEMAS, **dict.fromkeys(MODEL_CLASSES)}


_STACK_CLASSES = _StackClasses()


def _stack_layer(v, where, depth):
    """An entry of a nested Sequential: ``{"class_name", "config"}``, a layer or a model."""
    outer = obj({"class_name": _class_name(_STACK_CLASSES), "config": lambda c, w: c})(v, where)
    return {
        "class_name": outer["class_name"],
        "config": _entry_config(outer["class_name"], outer["config"], f"{where}.config", depth),
    }


def sequential_config(v, where, depth):
    _check_depth(where, depth)
    return obj(
        {
            "name": name,
            "dtype": string(16, {"float32", "float64"}),
            "input_shape": shape,
            "trainable": boolean,
            "layers": list_of(lambda e, w: _stack_layer(e, w, depth), 1, MAX_LAYERS),
        }
    )(v, where)


def _graph_layer(v, where, depth):
    outer = obj(
        {
            "class_name": _class_name(ENTRY_CLASSES),
            "name": name,
            "config": lambda c, w: c,
            "inbound_nodes": list_of(list_of(ref, 1, MAX_TENSORS), 0, MAX_NODES),
        }
    )(v, where)
    outer["config"] = _entry_config(outer["class_name"], outer["config"], f"{where}.config", depth)
    if outer["config"]["name"] != outer["name"]:
        _fail(f"{where}.config.name", f"the entry's name {outer['name']!r}", outer["config"]["name"])
    return outer


def functional_config(v, where, depth=0):
    _check_depth(where, depth)
    return obj(
        {
            "name": name,
            "trainable": boolean,
            "layers": list_of(lambda e, w: _graph_layer(e, w, depth), 1, MAX_LAYERS),
            "input_layers": refs,
            "output_layers": refs,
        }
    )(v, where)


def _layer_rngs(v, where):
    """Seeded Dropout layers' generator states, keyed by the layer's path."""
    if not isinstance(v, dict) or len(v) > MAX_LAYERS:
        _fail(where, f"an object of at most {MAX_LAYERS} layer path -> generator state", v)
    for key in v:
        string(MAX_PATH)(key, f"{where} key")
    return {key: rng_state_schema(state, f"{where}.{key}") for key, state in v.items()}


training_state_schema = obj(
    {
        "iterations": integer(0, 2**62),
        "optimizer_slots": integer(0, MAX_INT),
        "rng": obj({"global": nullable(rng_state_schema), "layers": _layer_rngs}),
    },
    {"optimizer_globals": obj({}, {"u_product": number(0, 1)})},
)

graph_document = obj(
    {
        **_header,
        "model": obj({"class_name": string(32, {"Functional"}), "config": lambda v, w: functional_config(v, w)}),
        "compile": nullable(compile_schema),
        "training_state": nullable(training_state_schema),
    }
)

_variable = obj({"path": string(MAX_PATH), "shape": list_of(integer(0, MAX_INT), 0, 8)})
#: a weights file of any model: each weight's path and shape, in ``model.weights`` order
variables_document = obj({**_header, "variables": list_of(_variable, 0, 1_000_000)})
