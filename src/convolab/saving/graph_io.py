"""Functional models in convolab files: the graph as Keras-like JSON, the weights by path.

Format (``format_version`` 1, ``kind: "model"``, ``model.class_name: "Functional"``): the
architecture's layout is in :mod:`convolab.saving.graph_schema`. Tensors are ``weights/<path>``
(``<path>``: the layer names from the model down to the weight, then its key, joined by ``/``,
as :meth:`Model.named_weights` gives them, e.g. ``block/conv2d/kernel``) and, with the
training state, ``optimizer/<path>/<slot>``: optimizer state is keyed by the variable, never
by its position. Node indices count a layer's calls in this model, in run order.

Loading plans the whole graph before allocating anything (:func:`plan_document`): unknown
layer names, node or tensor indices out of range, cycles, nodes that lead to no output, a
layer called with shapes it cannot take and every weight's shape are refused with a
:class:`ModelFileError`; only when the file's tensors match the plan is the model built.
"""

from __future__ import annotations

import json
import warnings
from collections import ChainMap

import numpy as np

from .. import random as random_mod
from ..layers.input_layer import InputLayer
from ..layers.input_layer import Input
from ..layers.merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from . import _common, graph_schema, object_registry, schema
from .container import short_repr, write_container
from .errors import ModelFileError

MERGE_CLASSES = {cls.__name__: cls for cls in (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate)}
#: every layer class a functional file may name (models and InputLayer apart): the registered layers,
#: then the merge layers (a live view: a layer class registered later is in it)
GRAPH_LAYER_CLASSES = ChainMap(MERGE_CLASSES, _common.LAYER_CLASSES)


def weight_tensor(path):
    return f"weights/{path}"


def slot_tensor(path, slot):
    return f"optimizer/{path}/{slot}"


def refuse_layer(layer, what):
    raise ValueError(
        f"{what}: {layer.describe()} is a {type(layer).__name__}, which a convolab file cannot hold as "
        f"architecture (it holds the built-in layers {', '.join(GRAPH_LAYER_CLASSES)}, InputLayer, Sequential "
        "and functional models, never code); save the weights with model.save_weights(path), rebuild the "
        "model in code and call model.load_weights(path)"
    )


def takes_list(layer):
    """Whether a graph calls ``layer`` with a list of tensors (merges; models with several inputs)."""
    from ..models.model import Model

    if type(layer).__name__ in MERGE_CLASSES:
        return True
    graph = layer.graph() if isinstance(layer, Model) else None
    return bool(graph and graph[3])


def layers_by_path(model, prefix=""):
    """``path -> layer`` for every layer of ``model`` and of the models nested in it."""
    from ..models.model import Model

    out = {}
    for layer in model.layers:
        out[prefix + layer.name] = layer
        if isinstance(layer, Model):
            out.update(layers_by_path(layer, f"{prefix}{layer.name}/"))
    return out


# -- saving: the architecture ---------------------------------------------------
class _Describer:
    """Writes a model's architecture as JSON, refusing what a file cannot hold."""

    #: whether a user's layer may be written (by its class's registered name and ``get_config``)
    allow_custom = False

    def __init__(self, what):
        self.what = what
        self.owner = {}  # id(layer) -> the model holding it

    def _custom_entry(self, layer):
        """A user's layer: its registered name, module and ``get_config`` (JSON values only)."""
        cls = type(layer)
        try:
            config = _common.plain(layer.get_config())
            json.dumps(config, allow_nan=False)
        except (TypeError, ValueError, NotImplementedError) as e:
            raise ValueError(
                f"{self.what}: {layer.describe()}: get_config() must return JSON values (numbers, "
                f"strings, lists, dicts) for the layer to be saved; {type(e).__name__}: {e}"
            ) from None
        if not isinstance(config, dict):
            raise ValueError(
                f"{self.what}: {layer.describe()}: get_config() must return a dict; got {type(config).__name__}"
            )
        return {
            "class_name": object_registry.get_registered_name(cls),
            "config": config,
            "module": cls.__module__,
            "registered_name": object_registry.get_registered_name(cls),
            "python_class": cls.__name__,
        }

    def _claim(self, layer, model):
        other = self.owner.setdefault(id(layer), model)
        if other is not model:
            raise ValueError(
                f"{self.what}: {layer.describe()} is used both in {other.describe()} and in "
                f"{model.describe()}; a convolab file holds each layer in one model only"
            )
        if not isinstance(layer.name, str) or not layer.name or "/" in layer.name:
            raise ValueError(
                f"{self.what}: {layer.describe()}: a saved layer's name must be a non-empty string "
                "without '/' (it separates the parts of a weight path)"
            )

    def _unique_names(self, model, layers):
        seen = set()
        for layer in layers:
            if layer.name in seen:
                raise ValueError(
                    f"{self.what}: {model.describe()} has two layers named {layer.name!r}; a file "
                    "refers to layers by name: give them distinct names"
                )
            seen.add(layer.name)

    def model_entry(self, model):
        from ..models.model import Model
        from ..models.sequential import Sequential

        if type(model) is Sequential:
            return {"class_name": "Sequential", "config": self.sequential(model)}
        if type(model) is Model and model.graph() is not None:
            return {"class_name": "Functional", "config": self.functional(model)}
        raise ValueError(
            f"{self.what}: {model.describe()} is a subclassed model ({type(model).__name__}): its "
            "architecture is Python code, which a convolab file never holds; save the weights with "
            "model.save_weights(path), rebuild the model in code and call model.load_weights(path)"
        )

    def _stack_entry(self, layer):
        from ..models.model import Model

        if isinstance(layer, Model):
            return self.model_entry(layer)
        if self.allow_custom and object_registry.is_custom_layer(layer):
            return self._custom_entry(layer)
        if _common.LAYER_CLASSES.get(type(layer).__name__) is not type(layer):
            refuse_layer(layer, self.what)
        return {"class_name": type(layer).__name__, "config": self._builtin_config(layer)}

    def _builtin_config(self, layer):
        """A convolab layer's ``get_config``; an activation a file cannot name (a lambda, an
        unregistered function: the config holds the callable itself) is refused by layer."""
        _common.check_activation_saveable(layer, self.what)
        return layer.get_config()

    def sequential(self, model):
        if not model.built or not model.layers:
            raise ValueError(
                f"{self.what}: {model.describe()} has no input shape yet; give it keras.Input(shape=...) "
                "or input_shape=(...) on its first layer"
            )
        self._unique_names(model, model.layers)
        for layer in model.layers:
            self._claim(layer, model)
        return {
            "name": model.name,
            "dtype": model.dtype,
            "input_shape": list(model.input_shape[1:]),
            "trainable": model.trainable,
            "layers": [self._stack_entry(l) for l in model.layers],
        }

    def functional(self, model):
        given = [what for what, s in (("inputs", model.input), ("outputs", model.output)) if isinstance(s, dict)]
        if given:
            raise ValueError(
                f"{self.what}: {model.describe()} has its {' and '.join(given)} given as a dict, which "
                "convolab's model files (.convolab, .keras, .h5) cannot hold yet; get_config()/"
                "keras.Model.from_config() and to_json()/model_from_json() keep it, and "
                "save_weights()/load_weights() keep the weights"
            )
        nodes, inputs, outputs, multi_in, multi_out = model.graph()
        layers = model.layers
        self._unique_names(model, layers)
        index, calls = {}, {}
        for node in nodes:
            mine = calls.setdefault(id(node.layer), [])
            index[id(node)] = len(mine)
            mine.append(node)

        def ref(t):
            if t.node is None or id(t.node) not in index:
                raise ValueError(
                    f"{self.what}: {model.describe()}: tensor {t} is not computed in this model "
                    "(an input the outputs do not use?)"
                )
            return [t.node.layer.name, index[id(t.node)], t.index]

        entries = []
        for layer in layers:
            self._claim(layer, model)
            if isinstance(layer, InputLayer):
                t = calls[id(layer)][0].outputs[0]
                entry = {
                    "class_name": "InputLayer",
                    "config": {"name": layer.name, "dtype": t.dtype, "batch_shape": list(t.shape)},
                }
            elif type(layer).__name__ in GRAPH_LAYER_CLASSES and GRAPH_LAYER_CLASSES[type(layer).__name__] is type(
                layer
            ):
                entry = {"class_name": type(layer).__name__, "config": self._builtin_config(layer)}
            elif hasattr(layer, "graph"):
                entry = self.model_entry(layer)
            elif self.allow_custom and object_registry.is_custom_layer(layer):
                entry = self._custom_entry(layer)
            else:
                refuse_layer(layer, self.what)
            inbound = []
            for node in calls[id(layer)]:
                if not node.inputs:
                    continue  # the InputLayer's own node
                if node.args or node.kwargs:
                    raise ValueError(
                        f"{self.what}: {layer.describe()} is called with arguments besides its inputs "
                        f"({short_repr(list(node.args) + sorted(node.kwargs))}); a file holds tensors only"
                    )
                if node.multi != takes_list(layer):
                    raise ValueError(
                        f"{self.what}: {layer.describe()} is called with "
                        f"{'a list' if node.multi else 'one tensor'}; a file rebuilds it called with "
                        f"{'a list' if takes_list(layer) else 'one tensor'}"
                    )
                inbound.append([ref(t) for t in node.inputs])
            entries.append({**entry, "name": layer.name, "inbound_nodes": inbound})
        ins, outs = [ref(t) for t in inputs], [ref(t) for t in outputs]
        return {
            "name": model.name,
            "trainable": model.trainable,
            "layers": entries,
            "input_layers": ins if multi_in else ins[0],
            "output_layers": outs if multi_out else outs[0],
        }


def named_weights_checked(model, what):
    """``model.named_weights()``, refusing two weights with one path."""
    named = model.named_weights()
    seen = set()
    for path, _ in named:
        if path in seen:
            raise ValueError(
                f"{what}: two weights of {model.describe()} have the path {path!r}; give the layers "
                "holding them distinct names"
            )
        seen.add(path)
    return named


def _training_state(model, tensors, named):
    opt = model.optimizer
    path_of = {id(w): path for path, w in named}
    weights = [v.value for v in model.trainable_weights]  # the arrays the optimizer keys its state by
    states = [opt.get_state(w) for w in weights]
    if all(s is None for s in states):
        states = []  # never stepped: nothing to keep
    for w, slots in zip(weights, states):
        # A weight not stepped yet (unfrozen since) starts from zeros, as in Keras.
        for key, arr in (slots if slots is not None else opt.build_state(w)).items():
            tensors[slot_tensor(path_of[id(w)], key)] = arr
    global_state = _common.rng_json(random_mod.get_state())
    if global_state is None:
        warnings.warn("convolab's random generator is not PCG64; its state is not saved", RuntimeWarning, stacklevel=4)
    layer_rngs = {}
    for path, layer in layers_by_path(model).items():
        rng = getattr(layer, "_rng", None)  # Dropout(seed=...), RandomFlip(seed=...)... draw from their own
        if isinstance(layer, _common.SEEDED_LAYERS) and rng is not None:
            state = _common.rng_json(rng.bit_generator.state)
            if state is not None:
                layer_rngs[path] = state
    out = {
        "iterations": int(opt.iterations),
        "optimizer_slots": len(states),
        "rng": {"global": global_state, "layers": layer_rngs},
    }
    if opt.get_global_state():
        out["optimizer_globals"] = dict(opt.get_global_state())
    return out


def save_graph_model(model, path, include_optimizer=True):
    """:func:`convolab.saving.save_model` for a functional model (see the module docstring)."""
    what = "save_model"
    entry = _Describer(what).model_entry(model)
    if entry["class_name"] != "Functional":
        raise TypeError(f"{what}: expected a functional model; got {model.describe()}")
    named = named_weights_checked(model, what)
    tensors = {weight_tensor(p): w for p, w in named}
    doc = {
        "format_version": schema.FORMAT_VERSION,
        "kind": "model",
        "convolab_version": _common.convolab_version(),
        "model": _common.plain(entry),
        "compile": None,
        "training_state": None,
    }
    comp = _common.compile_config(model) if model.compiled else None  # None for a lambda loss (with a warning)
    if comp is not None:
        doc["compile"] = _common.plain(comp)
        if include_optimizer:
            doc["training_state"] = _training_state(model, tensors, named)
    _common.checked_for_save(doc, tensors, what, plan_document)
    write_container(path, tensors, {"convolab": json.dumps(doc, allow_nan=False)})


# -- loading: plan (no arrays) ---------------------------------------------------
class _Totals:
    """What the whole file's architecture needs, gathered while planning."""

    def __init__(self):
        self.expected = {}  # tensor name -> (dtype, shape)
        self.trainable = []  # (path, dtype, shape) of each trainable weight
        self.seeded = set()  # paths of seeded Dropout and augmentation layers
        self.layers = 0

    def count(self, n, where):
        self.layers += n
        if self.layers > schema.MAX_LAYERS:
            raise ModelFileError(f"{where}: more than {schema.MAX_LAYERS} layers in all")

    def add_params(self, params, path, cfg, trainable, layer):
        dtype = np.dtype(cfg["dtype"])
        for key, shape in params.items():
            name = weight_tensor(f"{path}/{key}")
            if name in self.expected:
                raise ModelFileError(f"weight path {path}/{key} appears twice")
            self.expected[name] = (dtype, shape)
            if trainable and layer.weight_is_trainable(key):  # cfg's `trainable`; not a moving statistic
                self.trainable.append((f"{path}/{key}", dtype, shape))


class ModelPlan:
    """One model of the file, checked: what building it needs."""

    def __init__(
        self, kind, cfg, in_shapes, out_shapes, multi_in=False, multi_out=False, order=(), nodes=None, children=None
    ):
        self.kind, self.cfg = kind, cfg
        self.in_shapes, self.out_shapes = in_shapes, out_shapes
        self.multi_in, self.multi_out = multi_in, multi_out
        self.order = list(order)  # (layer name, node index) in run order (Functional)
        self.nodes = nodes or {}  # (layer name, node index) -> its input references
        self.children = children or {}  # name (Functional) or index (Sequential) -> ModelPlan


def _fits(got, want, at):
    if len(got) != len(want) or any(g is not None and w is not None and g != w for g, w in zip(got[1:], want[1:])):
        raise ModelFileError(f"{at}: gets shape {_shape(got)}; it takes {_shape(want)}")


def _shape(s):
    return "(" + ", ".join("None" if d is None else str(d) for d in s) + ")"


def layer_class(cls_name):
    """The class a checked entry names: a built-in layer, or a user's registered layer."""
    cls = GRAPH_LAYER_CLASSES.get(cls_name)
    return cls if cls is not None else object_registry.custom_layer_class(cls_name)


def _probe_custom(layer, in_shape, at):
    """Weight shapes and output shape of a user's layer: it is built and traced as in a graph (its
    ``build`` and ``call`` are its own code, registered as loadable; the probe is then dropped)."""
    from ..layers.keras_tensor import KerasTensor

    try:
        out = layer(KerasTensor(tuple(in_shape), dtype=layer.dtype))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError, OverflowError) as e:
        raise ModelFileError(f"{at} does not fit its input {in_shape}: {type(e).__name__}: {e}") from None
    if isinstance(out, (list, tuple)):
        raise ModelFileError(f"{at}: gives {len(out)} tensors; a saved user layer gives one")
    return {key: tuple(np.shape(w)) for key, w in layer.params.items()}, tuple(out.shape)


def _plan_layer(cls_name, cfg, in_shape, path, trainable, at, totals):
    cls = layer_class(cls_name)
    layer = _common.construct(cls, cfg, at)
    if cls_name in GRAPH_LAYER_CLASSES:
        params, out = _common.probe(layer, in_shape, at)
    else:
        params, out = _probe_custom(layer, in_shape, at)
    totals.add_params(params, path, cfg, trainable, layer)
    if issubclass(cls, _common.SEEDED_LAYERS) and cfg["seed"] is not None:
        totals.seeded.add(path)
    return layer, out


def _plan_model(kind, cfg, prefix, trainable, where, totals):
    trainable = trainable and cfg["trainable"]
    if kind == "Sequential":
        return _plan_sequential(cfg, prefix, trainable, where, totals)
    return _plan_functional(cfg, prefix, trainable, where, totals)


def _plan_sequential(cfg, prefix, trainable, where, totals):
    totals.count(len(cfg["layers"]), where)
    shape = in_shape = (None,) + tuple(cfg["input_shape"])
    names, children = set(), {}
    for i, entry in enumerate(cfg["layers"]):
        kind, lcfg = entry["class_name"], entry["config"]
        at = f"{where}.layers[{i}] ({kind})"
        lname = graph_schema.name(lcfg["name"], f"{at}.config.name")
        if lname in names:
            raise ModelFileError(f"{where}: two layers are named {lname!r}")
        names.add(lname)
        if kind in graph_schema.MODEL_CLASSES:
            child = children[i] = _plan_model(kind, lcfg, f"{prefix}{lname}/", trainable, at, totals)
            if len(child.in_shapes) != 1 or len(child.out_shapes) != 1 or child.multi_in or child.multi_out:
                raise ModelFileError(f"{at}: a model inside a Sequential must take and give one tensor")
            _fits(shape, child.in_shapes[0], at)
            shape = child.out_shapes[0]
        else:
            _, shape = _plan_layer(kind, lcfg, shape, prefix + lname, trainable, at, totals)
    return ModelPlan("Sequential", cfg, [in_shape], [shape], children=children)


def _run_order(nodes, starts, where):
    """The nodes in an order that runs each after its inputs; refuses cycles and dead nodes."""
    state, order = {}, []
    for start in starts:
        if state.get(start) == 2:
            continue
        state[start] = 1
        stack = [(start, iter(nodes[start]))]
        while stack:
            key, rest = stack[-1]
            r = next(rest, None)
            if r is None:
                stack.pop()
                state[key] = 2
                order.append(key)
                continue
            dep = (r[0], r[1])
            if state.get(dep) == 1:
                raise ModelFileError(f"{where}: the graph has a cycle through layer {dep[0]!r} node {dep[1]}")
            if dep not in state:
                state[dep] = 1
                stack.append((dep, iter(nodes[dep])))
    dead = [key for key in nodes if key not in state]
    if dead:
        raise ModelFileError(f"{where}: layer {dead[0][0]!r} node {dead[0][1]} does not lead to any output")
    return order


def _plan_functional(cfg, prefix, trainable, where, totals):
    entries = cfg["layers"]
    totals.count(len(entries), where)
    by_name, nodes = {}, {}
    for e in entries:
        name = e["name"]
        if name in by_name:
            raise ModelFileError(f"{where}: two layers are named {name!r}")
        by_name[name] = e
        if e["class_name"] == "InputLayer":
            if e["inbound_nodes"]:
                raise ModelFileError(f"{where}: InputLayer {name!r} has inbound nodes; an input takes none")
            nodes[(name, 0)] = []
        elif not e["inbound_nodes"]:
            raise ModelFileError(f"{where}: layer {name!r} is never called (no inbound nodes)")
        for k, node in enumerate(e["inbound_nodes"]):
            nodes[(name, k)] = node

    def check_ref(r, at):
        if r[0] not in by_name:
            raise ModelFileError(f"{at}: unknown layer {r[0]!r}; the layers are {short_repr(sorted(by_name))}")
        if (r[0], r[1]) not in nodes:
            count = max(1, len(by_name[r[0]]["inbound_nodes"]))
            raise ModelFileError(f"{at}: node index {r[1]} of layer {r[0]!r}, which has {count} node(s)")

    for (name, k), node in nodes.items():
        for j, r in enumerate(node):
            check_ref(r, f"{where}: layer {name!r} node {k} input {j}")
    multi_in, multi_out = isinstance(cfg["input_layers"][0], list), isinstance(cfg["output_layers"][0], list)
    ins = cfg["input_layers"] if multi_in else [cfg["input_layers"]]
    outs = cfg["output_layers"] if multi_out else [cfg["output_layers"]]
    for j, r in enumerate(ins):
        check_ref(r, f"{where}.input_layers[{j}]")
        if by_name[r[0]]["class_name"] != "InputLayer" or r[1:] != [0, 0]:
            raise ModelFileError(f"{where}.input_layers[{j}]: expected an InputLayer's tensor [name, 0, 0]; got {r}")
    inputs_named = [r[0] for r in ins]
    declared = [e["name"] for e in entries if e["class_name"] == "InputLayer"]
    if sorted(inputs_named) != sorted(declared):
        raise ModelFileError(f"{where}: the model's inputs are {inputs_named}; its InputLayers are {declared}")
    for j, r in enumerate(outs):
        check_ref(r, f"{where}.output_layers[{j}]")
    order = _run_order(nodes, [(r[0], r[1]) for r in outs], where)

    shapes, probes, children = {}, {}, {}

    def tensor_shape(r, at):
        given = shapes[(r[0], r[1])]
        if r[2] >= len(given):
            raise ModelFileError(f"{at}: tensor index {r[2]} of layer {r[0]!r}, which gives {len(given)} tensor(s)")
        return given[r[2]]

    for key in order:
        name, k = key
        e = by_name[name]
        kind, lcfg = e["class_name"], e["config"]
        at = f"{where}: layer {name!r} ({kind}) node {k}"
        got = [tensor_shape(r, at) for r in nodes[key]]
        if kind == "InputLayer":
            shapes[key] = [tuple(lcfg["batch_shape"])]
        elif kind in graph_schema.MODEL_CLASSES:
            child = children.get(name)
            if child is None:
                child = children[name] = _plan_model(
                    kind, lcfg, f"{prefix}{name}/", trainable, f"{where}.{name}", totals
                )
            if len(got) != len(child.in_shapes):
                raise ModelFileError(f"{at}: {len(got)} input(s); the model takes {len(child.in_shapes)}")
            for g, w in zip(got, child.in_shapes):
                _fits(g, w, at)
            shapes[key] = list(child.out_shapes)
        elif kind in MERGE_CLASSES:
            layer = _common.construct(MERGE_CLASSES[kind], lcfg, at)
            try:
                shapes[key] = [layer.compute_output_shape(list(got))]
            except (ValueError, TypeError) as err:
                raise ModelFileError(f"{at}: the inputs do not fit: {err}") from None
        else:
            if len(got) != 1:
                raise ModelFileError(f"{at}: {len(got)} inputs; a {kind} takes one")
            probe = probes.get(name)
            if probe is None:
                probe, out = _plan_layer(kind, lcfg, got[0], prefix + name, trainable, at, totals)
                probes[name] = probe
            else:  # a shared layer: every call must fit the weights of the first
                try:
                    probe.check_call_shape(got[0])
                except (ValueError, TypeError) as err:
                    raise ModelFileError(f"{at}: {err}") from None
                out = probe.output_shape
            shapes[key] = [out]
    in_shapes = [shapes[(r[0], 0)][0] for r in ins]
    out_shapes = [tensor_shape(r, f"{where}.output_layers") for r in outs]
    return ModelPlan("Functional", cfg, in_shapes, out_shapes, multi_in, multi_out, order, nodes, children)


class FilePlan:
    """A checked functional model file: the model plan, compile objects, expected tensors."""

    def __init__(self, model, totals):
        self.model, self.totals = model, totals
        self.optimizer = self.compile_args = None
        self.missing = []  # the user's losses/metrics the compile settings name that nothing provides
        self.training_state = None
        self.slot_keys = []  # (path, [slot names]) per trainable weight with saved state


def plan_document(doc, infos, source):
    """Check a functional model document against itself and the tensors listed; allocates nothing."""
    totals = _Totals()
    try:
        mplan = _plan_functional(doc["model"]["config"], "", True, f"{source}: model", totals)
    except RecursionError:
        raise ModelFileError(f"{source}: the model is nested too deeply") from None
    plan = FilePlan(mplan, totals)
    comp = doc["compile"]
    if comp is not None:
        plan.optimizer, plan.compile_args, plan.missing = _common.compile_objects(comp, source)
    state = doc["training_state"]
    if state is not None:
        if comp is None:
            raise ModelFileError(f"{source}: a training state without compile settings")
        slots = state["optimizer_slots"]
        if slots not in (0, len(totals.trainable)):
            raise ModelFileError(
                f"{source}: {slots} optimizer state entries for {len(totals.trainable)} trainable weights"
            )
        if slots:
            for path, dtype, shape in totals.trainable:
                keys = list(plan.optimizer.build_state(np.zeros((1,), dtype)))
                plan.slot_keys.append((path, keys))
                for key in keys:
                    totals.expected[slot_tensor(path, key)] = (dtype, shape)
        want, got = set(plan.optimizer.get_global_state()), set(state.get("optimizer_globals", {}))
        if want != got:
            raise ModelFileError(
                f"{source}: the training state holds optimizer globals {sorted(got)}; "
                f"{type(plan.optimizer).__name__} keeps {sorted(want)}"
            )
        for path in state["rng"]["layers"]:
            if path not in totals.seeded:
                raise ModelFileError(f"{source}: a generator state for {path!r}, which is not a seeded Dropout")
        plan.training_state = state
    _common.compare_tensors(totals.expected, infos, source, dtype_exact=True)
    return plan


# -- loading: build ----------------------------------------------------------------
def _build_model(mplan):
    from ..models.model import Model
    from ..models.sequential import Sequential

    cfg = mplan.cfg
    if mplan.kind == "Sequential":
        model = Sequential(name=cfg["name"])
        model.add(InputLayer(shape=tuple(cfg["input_shape"])))
        for i, entry in enumerate(cfg["layers"]):
            child = mplan.children.get(i)
            model.add(
                _build_model(child)
                if child is not None
                else layer_class(entry["class_name"]).from_config(dict(entry["config"]))
            )
        model.dtype = cfg["dtype"]
    else:
        entries = {e["name"]: e for e in cfg["layers"]}
        made, values = {}, {}
        for key in mplan.order:
            e = entries[key[0]]
            kind, lcfg = e["class_name"], e["config"]
            if kind == "InputLayer":
                batch_shape = lcfg["batch_shape"]
                values[key] = [
                    Input(
                        shape=tuple(batch_shape[1:]), batch_size=batch_shape[0], name=lcfg["name"], dtype=lcfg["dtype"]
                    )
                ]
                continue
            layer = made.get(key[0])
            if layer is None:
                child = mplan.children.get(key[0])
                layer = made[key[0]] = (
                    _build_model(child) if child is not None else layer_class(kind).from_config(dict(lcfg))
                )
            args = [values[(r[0], r[1])][r[2]] for r in mplan.nodes[key]]
            out = layer(args if takes_list(layer) else args[0])
            values[key] = list(out) if isinstance(out, (list, tuple)) else [out]
        refs = (cfg["input_layers"], cfg["output_layers"])
        ins, outs = [
            [values[(r[0], r[1])][r[2]] for r in (rs if multi else [rs])]
            for rs, multi in zip(refs, (mplan.multi_in, mplan.multi_out))
        ]
        model = Model(ins if mplan.multi_in else ins[0], outs if mplan.multi_out else outs[0], name=cfg["name"])
    if not cfg["trainable"]:
        model.trainable = False
    return model


def build(plan, tensors, compile, source):
    """The model a :class:`FilePlan` describes, with the file's weights (and training state)."""
    saved_rng = random_mod.get_state()
    try:
        model = _build_model(plan.model)
        named = model.named_weights()
        names = {weight_tensor(p) for p, _ in named}
        if names != {n for n in plan.totals.expected if n.startswith("weights/")}:
            raise ValueError("its weights differ from the file's")
        for path, w in named:
            w[...] = tensors[weight_tensor(path)]
        compiled = _common.compile_or_warn(model, plan.optimizer, plan.compile_args, plan.missing, compile, source)
    except (ValueError, TypeError, KeyError) as e:
        raise ModelFileError(f"{source}: the model could not be rebuilt: {e}") from None
    finally:
        # Building drew initial weights from the global generator; loading must not move it.
        random_mod.set_state(saved_rng)
    state = plan.training_state
    if state is not None:
        by_path = layers_by_path(model)
        weight_of = dict(named)
        _common.restore_training_state(
            model,
            state,
            compiled,
            [(by_path[path], s) for path, s in state["rng"]["layers"].items()],
            lambda: [
                (weight_of[path], {key: tensors[slot_tensor(path, key)] for key in keys})
                for path, keys in plan.slot_keys
            ],
        )
    return model


def load_graph_model(reader, doc, compile):
    plan = plan_document(doc, _common.tensor_infos(reader), reader.source)
    tensors = reader.read_tensors()
    return build(plan, tensors, compile, reader.source)


#: the model a checked plan describes (the Keras file readers build through it)
build_model = _build_model

__all__ = ["build_model", "layer_class", "load_graph_model", "plan_document", "save_graph_model"]
