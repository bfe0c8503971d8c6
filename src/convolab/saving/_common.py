"""What the saving modules share: the allow-lists, compile settings as JSON and back, the checks.

:mod:`.model_io` is the front door (``save_model``, ``load_model``, ``save_weights``,
``load_weights``) and the Sequential layout; :mod:`.graph_io` (functional models),
:mod:`.weights_io` (weights by path), :mod:`.keras_zip` / :mod:`.keras_compile` (Keras 3's files)
and :mod:`.onnx_export` build on the helpers here. This module imports none of them, so the
front door can dispatch to each without an import cycle.
"""

from __future__ import annotations

import json
import warnings

import numpy as np

from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from .. import random as random_mod
from .._version import __version__
from ..layers import registry
from ..layers.augmentation import AugmentationLayer
from ..layers.dropout import Dropout
from . import custom_compile
from .container import DTYPE_CODES, MAX_DOCUMENT_BYTES, short_repr, strict_json_loads
from .document import check_document
from .errors import ModelFileError

#: the only classes a file may name (no import by name, ever): every layer class that declares its
#: own ``config_schema`` (:mod:`convolab.layers.registry`), a live read-only view
LAYER_CLASSES = registry.CLASSES
#: layers that may draw from a private generator (``seed=...``): its state is training state
SEEDED_LAYERS = (Dropout, AugmentationLayer)
OPTIMIZER_CLASSES = {
    cls.__name__: cls
    for cls in (
        optimizers_mod.SGD,
        optimizers_mod.RMSprop,
        optimizers_mod.Adam,
        optimizers_mod.AdamW,
        optimizers_mod.Nadam,
        optimizers_mod.Adagrad,
        optimizers_mod.Adadelta,
    )
}
SCHEDULE_CLASSES = optimizers_mod.schedules.SCHEDULE_CLASSES
LOSS_CLASSES = {
    cls.__name__: cls
    for cls in (
        losses_mod.SparseCategoricalCrossentropy,
        losses_mod.CategoricalCrossentropy,
        losses_mod.MeanSquaredError,
        losses_mod.BinaryCrossentropy,
        losses_mod.MeanAbsoluteError,
        losses_mod.KLDivergence,
    )
}
METRIC_CLASSES = dict(metrics_mod.BUILTIN_CLASSES)
#: Keras's metric functions, saved under the name that compiles to the same metric
_METRIC_FUNCTION_NAMES = {
    fn: fn.__name__
    for fn in (
        metrics_mod.sparse_categorical_accuracy,
        metrics_mod.categorical_accuracy,
        metrics_mod.binary_accuracy,
        metrics_mod.top_k_categorical_accuracy,
        metrics_mod.sparse_top_k_categorical_accuracy,
        metrics_mod.mean_squared_error,
        metrics_mod.mean_absolute_error,
    )
}


def plain(value):
    """JSON-ready copy: tuples to lists, NumPy scalars to Python numbers."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_activation_saveable(layer, what):
    """Refuse a layer whose activation a file cannot name (a lambda, an unregistered function: its
    ``get_config`` then holds the callable itself), naming the layer."""
    from ..activations import unsaveable

    act = getattr(layer, "activation", None)
    if callable(act) and not isinstance(layer.get_config().get("activation"), str):
        raise ValueError(unsaveable(act, layer.describe(), what))


def check_saveable(model, what):
    """Refuse, before anything is written, a model that is not a built stack of built-in layers."""
    from ..models.sequential import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"{what} saves convolab Sequential models; got {type(model).__name__}")
    if not model.built or not model.layers:
        raise ValueError(
            f"{what}: {model.describe()} has no weights yet; give the first layer input_shape=(...) "
            "or call fit/predict once before saving"
        )
    for layer in model.layers:
        check_activation_saveable(layer, what)
        if LAYER_CLASSES.get(type(layer).__name__) is not type(layer):
            raise ValueError(
                f"{what}: {layer.describe()} cannot be saved; convolab files hold only the built-in "
                f"layers {', '.join(LAYER_CLASSES)}"
            )


def rng_json(state):
    """A generator's state as JSON, or None when it is not PCG64 (the only one a file holds)."""
    state = plain(state)
    return state if isinstance(state, dict) and state.get("bit_generator") == "PCG64" else None


def _check_optimizer_saveable(optimizer, what):
    for kind, obj, allowed in (
        ("optimizer", optimizer, OPTIMIZER_CLASSES),
        ("learning-rate schedule", optimizer.learning_rate_schedule, SCHEDULE_CLASSES),
    ):
        if obj is not None and allowed.get(type(obj).__name__) is not type(obj):
            raise ValueError(
                f"{what}: the {kind} {type(obj).__name__} cannot be saved; convolab files hold only "
                f"the built-in ones: {', '.join(allowed)}"
            )


def _metric_entry(spec, notes):
    """A compile(metrics=...) entry as JSON: a name, a built-in Metric's class and config, or a user's
    function or Metric object by its registered name (:mod:`.custom_compile`); None for what has no
    name (a lambda), which ``notes`` records."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, type) and METRIC_CLASSES.get(spec.__name__) is spec:
        spec = spec()
    if isinstance(spec, metrics_mod.Metric) and METRIC_CLASSES.get(type(spec).__name__) is type(spec):
        return {"class_name": type(spec).__name__, "config": spec.get_config()}
    if _hashable(spec) and spec in _METRIC_FUNCTION_NAMES:
        return _METRIC_FUNCTION_NAMES[spec]
    if spec is metrics_mod.accuracy:
        return {"class_name": "Accuracy", "config": metrics_mod.Accuracy().get_config()}
    if isinstance(spec, type) and issubclass(spec, metrics_mod.Metric):
        spec = spec()  # compile makes one instance of a class: the file holds that instance
    return custom_compile.entry(spec, "metric", notes, "save_model")


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _loss_entry(loss, notes):
    """A loss as JSON: a built-in class and config, or a user's function (compile wrapped it in a
    LossFunctionWrapper) or Loss object by its registered name; None for what has no name, and for
    no loss at all (``compile(optimizer)``: the model's own ``add_loss``/``compute_loss``)."""
    if loss is None:
        return None
    if LOSS_CLASSES.get(type(loss).__name__) is type(loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    if type(loss) is losses_mod.LossFunctionWrapper:
        return custom_compile.entry(loss.fn, "loss", notes, "save_model")
    return custom_compile.entry(loss, "loss", notes, "save_model")


def _metric_entries(specs, notes):
    return [e for e in (_metric_entry(m, notes) for m in specs) if e is not None]


def compile_config(model):
    """The compile settings as JSON. One output: ``{optimizer, loss, metrics[, weighted_metrics]}``.
    Several: ``{optimizer, outputs: [{name, loss (null: not trained), loss_weight, metrics,
    weighted_metrics}]}``, each output's metrics spelled out whatever structure compile was given.

    A user's loss or metric is saved by its registered name (:mod:`.custom_compile`), with a
    warning when it is not registered (loading without it gives an uncompiled model). None, with
    a warning, when the loss is a lambda or another callable without a name: the file then holds
    no compile settings (see :func:`.custom_compile.unnamed_loss_warning` for why).
    """
    from ..models.multi_output import OutputLosses, metric_specs_by_output

    _check_optimizer_saveable(model.optimizer, "save_model")
    config = model.get_compile_config()
    loss = config["loss"]
    notes = custom_compile.SaveNotes()
    out = {"optimizer": optimizers_mod.serialize(config["optimizer"])}
    if isinstance(loss, OutputLosses):
        owner = f"save_model: {model.describe()}"
        per_output = [
            metric_specs_by_output(config[key], loss.names, key, owner) for key in ("metrics", "weighted_metrics")
        ]
        out["outputs"] = [
            {
                "name": name,
                "loss": None if l is None else _loss_entry(l, notes),
                "loss_weight": w,
                "metrics": _metric_entries(m, notes),
                "weighted_metrics": _metric_entries(wm, notes),
            }
            for name, l, w, m, wm in zip(loss.names, loss.losses, loss.weights, *per_output)
        ]
    else:
        out["loss"] = _loss_entry(loss, notes)
        for key in ("metrics", "weighted_metrics"):
            entries = _metric_entries(config[key], notes)
            if key == "metrics" or entries:  # files without weighted metrics stay as before
                out[key] = entries
    unnamed_losses = [name for kind, name in notes.unnamed if kind == "loss"]
    if unnamed_losses:
        warnings.warn(
            custom_compile.unnamed_loss_warning(model.describe(), unnamed_losses[0]), UserWarning, stacklevel=3
        )
        return None
    message = custom_compile.save_warning(notes, model.describe())
    if message:
        warnings.warn(message, UserWarning, stacklevel=3)
    return out


def _metric_from_entry(entry):
    if isinstance(entry, str):
        return entry
    return METRIC_CLASSES[entry["class_name"]].from_config(dict(entry["config"]))


def convolab_version():
    """The version written into every file's document."""
    return __version__


def checked_for_save(doc, tensors, what, plan=None):
    """Run the loader's checks on what is about to be written; a file we'd refuse is never written.

    ``plan(checked_doc, infos, source)`` is the loader's planner for a model document (the
    Sequential or the functional one), which checks the architecture against the tensors;
    a weights document needs none.
    """
    if doc.get("kind") == "model" and plan is None:
        raise TypeError(f"{what}: checked_for_save needs the planner of a model document")
    infos = {name: (np.asarray(a).dtype, tuple(np.shape(a))) for name, a in tensors.items()}
    for name, (dtype, _) in infos.items():
        if dtype not in DTYPE_CODES:
            raise ValueError(f"{what}: weight {name!r} has dtype {dtype}; convolab saves float32/float64")
    try:
        checked = check_document(json.loads(json.dumps(doc, allow_nan=False)), "convolab")
        if checked["kind"] == "model":
            plan(checked, infos, "convolab")
    except (ValueError, TypeError) as e:  # ModelFileError included: what loading would refuse
        raise ValueError(f"{what}: cannot save this model: {e}") from None


def construct(cls, config, where):
    """``cls.from_config(config)``; a refused argument is the file's fault (:class:`ModelFileError`)."""
    try:
        return cls.from_config(dict(config))
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{where}: the layer arguments are refused: {e}") from None


def probe(layer, input_shape, where):
    """Weight shapes and output shape of ``layer`` for ``input_shape``, allocating nothing.

    The layer's own ``build`` is run on a throw-away instance whose ``_add_param`` only records
    the shapes asked for, so the shape rules live in the layers alone.
    """
    shapes = {}

    def record(key, shape, initializer, regularizer=None, constraint=None):
        shapes[key] = tuple(int(d) for d in shape)

    layer._add_param = record  # instance attribute: the probe is discarded afterwards
    try:
        layer.build(input_shape)
    except (ValueError, TypeError, OverflowError) as e:
        raise ModelFileError(f"{where} does not fit its input {input_shape}: {e}") from None
    return shapes, layer.output_shape


def _loss_from_entry(entry):
    return None if entry is None else LOSS_CLASSES[entry["class_name"]](**entry["config"])


def compile_objects(comp, source):
    """``(optimizer, compile_args, missing)`` from checked compile settings:
    ``model.compile(optimizer, **compile_args)``.

    Several outputs give dicts keyed by output name (``loss``, ``loss_weights``, ``metrics``,
    ``weighted_metrics``), so compile checks the names against the model's outputs. ``missing``
    names the user's objects (:mod:`.custom_compile`) that nothing registered or in scope
    provides; ``compile_args`` is then None, and the loader returns the model uncompiled with
    :func:`.custom_compile.uncompiled_warning`, as Keras does.
    """
    missing = []

    def user_or_builtin(entry, kind, where):
        if custom_compile.is_custom_entry(entry):
            obj = custom_compile.resolve(entry, kind, f"{source}: {where}")
            if obj is None:
                missing.append(custom_compile.missing_name(entry))
            return obj
        return _loss_from_entry(entry) if kind == "loss" else _metric_from_entry(entry)

    def metric_list(entries, where):
        return [user_or_builtin(e, "metric", f"{where}[{i}]") for i, e in enumerate(entries)]

    try:
        optimizer = OPTIMIZER_CLASSES[comp["optimizer"]["class_name"]].from_config(dict(comp["optimizer"]["config"]))
        if "outputs" in comp:
            outs = comp["outputs"]
            at = [f"compile.outputs[{i}]" for i in range(len(outs))]
            args = {
                "loss": {o["name"]: user_or_builtin(o["loss"], "loss", f"{w}.loss") for o, w in zip(outs, at)},
                "loss_weights": {o["name"]: o["loss_weight"] for o in outs},
                "metrics": {o["name"]: metric_list(o["metrics"], f"{w}.metrics") for o, w in zip(outs, at)},
                "weighted_metrics": {
                    o["name"]: metric_list(o["weighted_metrics"], f"{w}.weighted_metrics") for o, w in zip(outs, at)
                },
            }
        else:
            args = {
                "loss": None if comp["loss"] is None else user_or_builtin(comp["loss"], "loss", "compile.loss"),
                "metrics": metric_list(comp["metrics"], "compile.metrics"),
                "weighted_metrics": metric_list(comp.get("weighted_metrics", []), "compile.weighted_metrics"),
            }
    except ModelFileError:
        raise
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{source}: the compile settings are refused: {e}") from None
    return optimizer, (None if missing else args), missing


def compile_or_warn(model, optimizer, args, missing, compile, source):
    """Compile a loaded ``model`` with what :func:`compile_objects` gave (when ``compile`` and the file
    has compile settings); return whether it did. When the settings name user objects nothing
    provides (``missing``), warn as Keras does and leave the model uncompiled."""
    if not compile or optimizer is None:
        return False
    if args is None:
        warnings.warn(custom_compile.uncompiled_warning(source, missing), UserWarning, stacklevel=4)
        return False
    model.compile(optimizer=optimizer, **args)
    return True


def compare_tensors(expected, infos, source, dtype_exact):
    """Check the tensors a file lists (``name -> (dtype, shape)``) against those the architecture needs."""
    missing = sorted(set(expected) - set(infos))
    extra = sorted(set(infos) - set(expected))
    if missing:
        raise ModelFileError(f"{source}: missing tensor(s) {', '.join(missing[:10])} that the architecture needs")
    if extra:
        raise ModelFileError(f"{source}: unexpected tensor(s) {short_repr(extra)} that the architecture does not have")
    for name, (dtype, shape) in expected.items():
        got_dtype, got_shape = infos[name]
        if tuple(got_shape) != tuple(shape):
            raise ModelFileError(
                f"{source}: tensor {name!r} has shape {tuple(got_shape)}; the architecture needs {tuple(shape)}"
            )
        if dtype_exact and got_dtype != dtype:
            raise ModelFileError(f"{source}: tensor {name!r} is {got_dtype}; the architecture says {dtype}")


def read_document(reader):
    """The checked JSON document of an open convolab file (:class:`~.container.ContainerReader`)."""
    meta, source = reader.metadata, reader.source
    if set(meta) != {"convolab"}:
        raise ModelFileError(
            f"{source} is a safetensors file but not a convolab one (its metadata has keys "
            f"{short_repr(sorted(meta))}; convolab files have one, 'convolab')"
        )
    text = meta["convolab"]
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ModelFileError(
            f"{source}: the convolab metadata is {len(text):,} characters; at most {MAX_DOCUMENT_BYTES:,}"
        )
    doc = strict_json_loads(text, "convolab metadata", source)
    try:
        return check_document(doc, "convolab")
    except ModelFileError as e:
        raise ModelFileError(f"{source}: {e}") from None


def tensor_infos(reader):
    """``name -> (dtype, shape)`` of every tensor in an open file, read from its header alone."""
    return {name: (t.dtype.newbyteorder("="), t.shape) for name, t in reader.tensors.items()}


def restore_training_state(model, state, compile, layer_rngs, slot_states):
    """Put a checked training state back: seeded layers' generators, and with ``compile`` the
    optimizer's iterations, global and per-weight state and convolab's global generator.

    ``layer_rngs``: ``[(layer, generator state)]``; ``slot_states()``: ``[(weight, {slot: array})]``.
    Shared by Sequential and functional model files, which name their tensors differently.
    """
    for layer, layer_state in layer_rngs:
        layer._rng.bit_generator.state = layer_state
    if not compile:
        return
    opt = model.optimizer
    opt.iterations = state["iterations"]
    if "optimizer_globals" in state:
        opt.set_global_state(state["optimizer_globals"])
    for weight, slots in slot_states():
        opt.set_state(weight, slots)
    if state["rng"]["global"] is not None:
        random_mod.set_state(state["rng"]["global"])
