"""save_model / load_model / save_weights / load_weights: one safetensors file per model.

File format (``format_version`` 1). A convolab file is a safetensors file:

* ``__metadata__`` holds one string, ``"convolab"``: a JSON document ``{"format_version": 1,
  "kind": "model" | "weights", "convolab_version": ...}`` plus, for ``kind == "model"``:
  ``"model"`` (the architecture: ``Sequential.get_config()`` and the model's ``dtype``, under
  ``{"class_name": "Sequential", "config": ...}``), ``"compile"`` (``null`` or the optimizer
  config, with a learning-rate schedule's config in place of the rate when it has one, loss
  config and metric names; for a model with several outputs, ``"outputs"``: one ``{name, loss,
  loss_weight, metrics, weighted_metrics}`` each) and ``"training_state"`` (``null`` or the optimizer's
  ``iterations``, the number of optimizer state slots, the optimizer's own scalars such as
  Nadam's ``u_product`` under ``"optimizer_globals"``, and the random generators' states); for
  ``kind == "weights"``: ``"layers"`` (class and name of each layer, for messages). One key
  only, so the bytes written never depend on the order safetensors gives its metadata map:
  saving a loaded model again gives the same file, byte for byte.
* tensors ``layers.<i>.<param>`` (``<i>`` indexes ``model.layers``; ``<param>`` is ``kernel``
  or ``bias``, or BatchNormalization's ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``)
  and, with the training state, ``optimizer.<j>.<slot>`` (``<j>`` indexes the trainable
  weights in model order, moving statistics excluded; ``<slot>`` is ``momentum``, ``velocity``...).

File names: ``.convolab`` is the default and recommended extension; ``.safetensors`` is
accepted too. For weights alone, ``name.weights.safetensors`` reads best. ``.keras`` and
``.weights.h5`` are Keras 3's own formats (a zip, HDF5 weights; :mod:`.keras_zip`,
:mod:`.keras_h5`, with the ``keras-files`` extra): architecture, weights and compile settings, no
optimizer state. Loading decides by content, so a convolab file once saved under a ``.keras`` name
still loads.

Loading never runs code from a file: no pickle, no eval; the JSON is checked against a strict
schema (:mod:`convolab.saving.schema`), layer classes come from an allow-list, and every
tensor's dtype, shape and byte range is checked against the file size and against the
architecture before any array is allocated. Every failure raises :class:`ModelFileError`.
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np

from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from .. import layers as layers_mod
from .. import random as random_mod
from ..layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Cropping2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    ReLU,
    Rescaling,
    Reshape,
    SeparableConv2D,
    Softmax,
    UpSampling2D,
    ZeroPadding2D,
)
from ..layers.augmentation import AugmentationLayer
from ..utils.file_names import DEFAULT_SUFFIX, MODEL_SUFFIXES
from . import schema
from .document import check_document
from .container import DTYPE_CODES, MAX_DOCUMENT_BYTES, ContainerReader, short_repr, strict_json_loads, write_container
from .errors import ModelFileError

#: the only classes a file may name (no import by name, ever)
LAYER_CLASSES = {cls.__name__: cls for cls in (Conv2D, Dense, Flatten, MaxPooling2D, AveragePooling2D,
                                               Dropout, Activation, ReLU, Softmax, GlobalAveragePooling2D,
                                               GlobalMaxPooling2D, Reshape, Rescaling, DepthwiseConv2D,
                                               SeparableConv2D, BatchNormalization, ZeroPadding2D, Cropping2D,
                                               UpSampling2D, RandomFlip, RandomTranslation, RandomRotation, RandomZoom,
                                               RandomCrop, RandomContrast, RandomBrightness)}
LAYER_CLASSES.update({cls.__name__: cls for cls in (  # issue 19's layers (schema.LAYER_SCHEMAS has each)
    layers_mod.LeakyReLU, layers_mod.ELU, layers_mod.PReLU, layers_mod.Resizing, layers_mod.Conv1D,
    layers_mod.MaxPooling1D, layers_mod.AveragePooling1D, layers_mod.GlobalAveragePooling1D,
    layers_mod.GlobalMaxPooling1D, layers_mod.Conv2DTranspose)})
#: layers that may draw from a private generator (``seed=...``): its state is training state
_SEEDED = (Dropout, AugmentationLayer)
OPTIMIZER_CLASSES = {cls.__name__: cls for cls in (optimizers_mod.SGD, optimizers_mod.RMSprop, optimizers_mod.Adam,
                                                   optimizers_mod.AdamW, optimizers_mod.Nadam, optimizers_mod.Adagrad,
                                                   optimizers_mod.Adadelta)}
SCHEDULE_CLASSES = optimizers_mod.schedules.SCHEDULE_CLASSES
LOSS_CLASSES = {cls.__name__: cls for cls in (losses_mod.SparseCategoricalCrossentropy,
                                              losses_mod.CategoricalCrossentropy, losses_mod.MeanSquaredError,
                                              losses_mod.BinaryCrossentropy, losses_mod.MeanAbsoluteError)}
METRIC_CLASSES = dict(metrics_mod.BUILTIN_CLASSES)
#: Keras's metric functions, saved under the name that compiles to the same metric
_METRIC_FUNCTION_NAMES = {fn: fn.__name__ for fn in (
    metrics_mod.sparse_categorical_accuracy, metrics_mod.categorical_accuracy, metrics_mod.binary_accuracy,
    metrics_mod.top_k_categorical_accuracy, metrics_mod.sparse_top_k_categorical_accuracy,
    metrics_mod.mean_squared_error, metrics_mod.mean_absolute_error)}


# -- names ------------------------------------------------------------------------
def _check_suffix(filepath, what):
    path = os.fspath(filepath)
    if not isinstance(path, str):
        raise TypeError(f"{what}: the file path must be a str or path-like; got {filepath!r}")
    if path.lower().endswith(MODEL_SUFFIXES):
        return path
    hint = ""
    if path.lower().endswith((".h5", ".hdf5")):
        hint = (" For Keras 3's HDF5 weights name the file 'name.weights.h5' (save_weights); Keras 3's model "
                "files end in .keras.")
    raise ValueError(
        f"{what}: unsupported file name {path!r}; use a name ending in {', '.join(MODEL_SUFFIXES)} "
        f"(e.g. 'model{DEFAULT_SUFFIX}').{hint}"
    )


def weight_name(layer_index, param):
    return f"layers.{layer_index}.{param}"


def slot_name(weight_index, slot):
    return f"optimizer.{weight_index}.{slot}"


# -- saving -------------------------------------------------------------------------
def _plain(value):
    """JSON-ready copy: tuples to lists, NumPy scalars to Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_saveable(model, what):
    from ..models.sequential import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"{what} saves convolab Sequential models; got {type(model).__name__}")
    if not model.built or not model.layers:
        raise ValueError(
            f"{what}: {model.describe()} has no weights yet; give the first layer input_shape=(...) "
            "or call fit/predict once before saving"
        )
    for layer in model.layers:
        if LAYER_CLASSES.get(type(layer).__name__) is not type(layer):
            raise ValueError(
                f"{what}: {layer.describe()} cannot be saved; convolab files hold only the built-in "
                f"layers {', '.join(LAYER_CLASSES)}"
            )


def _indexed_weights(model):
    """Whether ``model``'s weights are saved by layer index (a stack of built-in layers), not by path."""
    from ..models.sequential import Sequential

    if not isinstance(model, Sequential) or not model.built or not model.layers:
        return isinstance(model, Sequential)  # an unbuilt stack: refused with the stack's own message
    return all(LAYER_CLASSES.get(type(l).__name__) is type(l) for l in model.layers)


def _rng_json(state):
    state = _plain(state)
    return state if isinstance(state, dict) and state.get("bit_generator") == "PCG64" else None


def _trainable_weights(model):
    # The optimizer's state list follows Sequential's trainable parameters, in model order.
    return [layer.params[key] for layer in model.layers for key in layer.trainable_keys()]


def _check_optimizer_saveable(optimizer, what):
    for kind, obj, allowed in (("optimizer", optimizer, OPTIMIZER_CLASSES),
                               ("learning-rate schedule", optimizer.learning_rate_schedule, SCHEDULE_CLASSES)):
        if obj is not None and allowed.get(type(obj).__name__) is not type(obj):
            raise ValueError(f"{what}: the {kind} {type(obj).__name__} cannot be saved; convolab files hold only "
                             f"the built-in ones: {', '.join(allowed)}")


def _metric_entry(spec, left_out):
    """A compile(metrics=...) entry as JSON: a name, or a built-in Metric's class and config.

    A user's Metric subclass or function holds code, which a convolab file never does: it is
    left out (``left_out`` collects its name) and the file loads with the other metrics.
    """
    if isinstance(spec, str):
        return spec
    if isinstance(spec, type) and METRIC_CLASSES.get(spec.__name__) is spec:
        spec = spec()
    if isinstance(spec, metrics_mod.Metric) and METRIC_CLASSES.get(type(spec).__name__) is type(spec):
        return {"class_name": type(spec).__name__, "config": spec.get_config()}
    if spec in _METRIC_FUNCTION_NAMES:
        return _METRIC_FUNCTION_NAMES[spec]
    if spec is metrics_mod.accuracy:
        return {"class_name": "Accuracy", "config": metrics_mod.Accuracy().get_config()}
    left_out.append(metrics_mod.get_object_name(spec))
    return None


def _loss_entry(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def _metric_entries(specs, left_out):
    return [e for e in (_metric_entry(m, left_out) for m in specs) if e is not None]


def _compile_config(model):
    """The compile settings as JSON. One output: ``{optimizer, loss, metrics[, weighted_metrics]}``.
    Several: ``{optimizer, outputs: [{name, loss (null: not trained), loss_weight, metrics,
    weighted_metrics}]}``, each output's metrics spelled out whatever structure compile was given."""
    from ..models.multi_output import OutputLosses, metric_specs_by_output

    _check_optimizer_saveable(model.optimizer, "save_model")
    config = model.get_compile_config()
    loss = config["loss"]
    left_out = []
    out = {"optimizer": optimizers_mod.serialize(config["optimizer"])}
    if isinstance(loss, OutputLosses):
        owner = f"save_model: {model.describe()}"
        per_output = [metric_specs_by_output(config[key], loss.names, key, owner)
                      for key in ("metrics", "weighted_metrics")]
        out["outputs"] = [{"name": name, "loss": None if l is None else _loss_entry(l), "loss_weight": w,
                           "metrics": _metric_entries(m, left_out), "weighted_metrics": _metric_entries(wm, left_out)}
                          for name, l, w, m, wm in zip(loss.names, loss.losses, loss.weights, *per_output)]
    else:
        out["loss"] = _loss_entry(loss)
        for key in ("metrics", "weighted_metrics"):
            entries = _metric_entries(config[key], left_out)
            if key == "metrics" or entries:  # files without weighted metrics stay as before
                out[key] = entries
    if left_out:
        warnings.warn(
            f"save_model: {model.describe()} was compiled with custom metric(s) {', '.join(map(repr, left_out))}, "
            "which a convolab file cannot hold (it never stores code); the file has the built-in metrics only. "
            "After load_model, compile again with the custom metrics",
            UserWarning,
            stacklevel=3,
        )
    return out


def _metric_from_entry(entry):
    if isinstance(entry, str):
        return entry
    return METRIC_CLASSES[entry["class_name"]].from_config(dict(entry["config"]))


def _training_state(model, tensors):
    opt = model.optimizer
    weights = _trainable_weights(model)
    states = [opt.get_state(w) for w in weights]
    if all(s is None for s in states):
        states = []  # never stepped: nothing to keep
    for j, (w, slots) in enumerate(zip(weights, states)):
        # A weight the optimizer has not stepped yet (unfrozen since) starts from zeros, as in Keras.
        for key, arr in (slots if slots is not None else opt.build_state(w)).items():
            tensors[slot_name(j, key)] = arr
    global_state = _rng_json(random_mod.get_state())
    if global_state is None:
        warnings.warn("convolab's random generator is not PCG64; its state is not saved", RuntimeWarning, stacklevel=3)
    layer_rngs = {}
    for i, layer in enumerate(model.layers):
        rng = getattr(layer, "_rng", None)  # Dropout(seed=...), RandomFlip(seed=...)... draw from their own
        if isinstance(layer, _SEEDED) and rng is not None:
            state = _rng_json(rng.bit_generator.state)
            if state is not None:
                layer_rngs[str(i)] = state
    out = {"iterations": int(opt.iterations), "optimizer_slots": len(states),
           "rng": {"global": global_state, "layers": layer_rngs}}
    if opt.get_global_state():  # absent for optimizers without any, so their files stay as they were
        out["optimizer_globals"] = dict(opt.get_global_state())
    return out


def _version():
    from .. import __version__

    return __version__


def _checked_for_save(doc, tensors, what):
    """Run the loader's checks on what is about to be written; a file we'd refuse is never written."""
    infos = {name: (np.asarray(a).dtype, tuple(np.shape(a))) for name, a in tensors.items()}
    for name, (dtype, _) in infos.items():
        if dtype not in DTYPE_CODES:
            raise ValueError(f"{what}: weight {name!r} has dtype {dtype}; convolab saves float32/float64")
    try:
        checked = check_document(json.loads(json.dumps(doc, allow_nan=False)), "convolab")
        if checked["kind"] == "model" and checked["model"]["class_name"] == "Functional":
            from .graph_io import plan_document

            plan_document(checked, infos, "convolab")
        elif checked["kind"] == "model":
            _plan_model(checked, infos, "convolab")
    except (ValueError, TypeError) as e:  # ModelFileError included: what loading would refuse
        raise ValueError(f"{what}: cannot save this model: {e}") from None


def save_model(model, filepath, include_optimizer=True):
    """Save architecture, weights, compile settings and (optionally) training state to one file.

    The write is atomic (temporary file, fsync, ``os.replace``): a crash leaves the previous
    file or the new one, never a mix.

    Args:
        model: a built :class:`~convolab.models.Sequential`.
        filepath: ``*.convolab`` (default extension), ``*.keras`` or ``*.safetensors``.
        include_optimizer: when the model is compiled, also save the optimizer's state and
            ``iterations`` and convolab's random-generator state, so ``load_model`` +
            ``fit(initial_epoch=...)`` continues bitwise as if never interrupted.

    Raises:
        ValueError/TypeError: the name, the model or one of its settings cannot be saved.
    """
    from ..models.sequential import Sequential

    if str(filepath).lower().endswith(".keras"):
        from .keras_zip import save_keras

        return save_keras(model, filepath)  # Keras 3's own zip format
    path = _check_suffix(filepath, "save_model")
    if not isinstance(model, Sequential):
        from ..models.model import Model
        from .graph_io import save_graph_model

        if not isinstance(model, Model):
            raise TypeError(f"save_model saves convolab models (Sequential or functional); got {type(model).__name__}")

        return save_graph_model(model, path, include_optimizer)
    _check_saveable(model, "save_model")
    tensors = {weight_name(i, key): arr for i, layer in enumerate(model.layers) for key, arr in layer.params.items()}
    doc = {"format_version": schema.FORMAT_VERSION, "kind": "model", "convolab_version": _version(),
           # The model's dtype (what inputs are cast to) is part of the architecture.
           "model": {"class_name": "Sequential", "config": _plain({**model.get_config(), "dtype": model.dtype})},
           "compile": None, "training_state": None}
    if model.compiled:
        doc["compile"] = _plain(_compile_config(model))
        if include_optimizer:
            doc["training_state"] = _training_state(model, tensors)
    _checked_for_save(doc, tensors, "save_model")
    write_container(path, tensors, {"convolab": json.dumps(doc, allow_nan=False)})


def save_weights(model, filepath):
    """Save the weights alone (tensors ``layers.<i>.<param>``), atomically.

    Args:
        model: a built Sequential model.
        filepath: ``*.convolab``, ``*.keras`` or ``*.safetensors`` (``name.weights.safetensors`` reads best).
    """
    if str(filepath).lower().endswith(".weights.h5"):
        from .keras_h5 import save_weights_h5

        return save_weights_h5(model, filepath)  # Keras 3's .weights.h5 layout
    path = _check_suffix(filepath, "save_weights")
    if not _indexed_weights(model):
        from .weights_io import save_variables

        return save_variables(model, path)
    _check_saveable(model, "save_weights")
    tensors = {weight_name(i, key): arr for i, layer in enumerate(model.layers) for key, arr in layer.params.items()}
    doc = {"format_version": schema.FORMAT_VERSION, "kind": "weights", "convolab_version": _version(),
           "layers": [{"class_name": type(l).__name__, "name": l.name} for l in model.layers]}
    _checked_for_save(doc, tensors, "save_weights")
    write_container(path, tensors, {"convolab": json.dumps(doc, allow_nan=False)})


# -- loading: plan (no arrays) -----------------------------------------------------
def _construct(cls, config, where):
    try:
        return cls.from_config(dict(config))
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{where}: the layer arguments are refused: {e}") from None


def _probe(layer, input_shape, where):
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


class _Plan:
    """What a checked model document builds: configs, expected tensors, compile objects."""

    def __init__(self):
        self.layer_specs = []  # (class, config)
        self.expected = {}  # tensor name -> (dtype, shape)
        self.optimizer = None
        self.compile_args = None  # loss, metrics... for model.compile(optimizer=self.optimizer, **compile_args)
        self.training_state = None
        self.weight_slots = []  # per trainable weight: list of slot names


def _loss_from_entry(entry):
    return None if entry is None else LOSS_CLASSES[entry["class_name"]](**entry["config"])


def compile_objects(comp, source):
    """``(optimizer, compile_args)`` from checked compile settings: ``model.compile(optimizer, **compile_args)``.

    Several outputs give dicts keyed by output name (``loss``, ``loss_weights``, ``metrics``,
    ``weighted_metrics``), so compile checks the names against the model's outputs.
    """
    try:
        optimizer = OPTIMIZER_CLASSES[comp["optimizer"]["class_name"]].from_config(dict(comp["optimizer"]["config"]))
        if "outputs" in comp:
            outs = comp["outputs"]
            args = {"loss": {o["name"]: _loss_from_entry(o["loss"]) for o in outs},
                    "loss_weights": {o["name"]: o["loss_weight"] for o in outs},
                    "metrics": {o["name"]: [_metric_from_entry(e) for e in o["metrics"]] for o in outs},
                    "weighted_metrics": {o["name"]: [_metric_from_entry(e) for e in o["weighted_metrics"]]
                                         for o in outs}}
        else:
            args = {"loss": _loss_from_entry(comp["loss"]),
                    "metrics": [_metric_from_entry(e) for e in comp["metrics"]],
                    "weighted_metrics": [_metric_from_entry(e) for e in comp.get("weighted_metrics", [])]}
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{source}: the compile settings are refused: {e}") from None
    return optimizer, args


def _plan_model(doc, infos, source):
    """Check a model document against itself and against the tensors listed (name -> (dtype, shape)).

    Returns a :class:`_Plan`; raises :class:`ModelFileError` before anything is allocated.
    """
    plan = _Plan()
    cfg = doc["model"]["config"]
    shape = (None,) + tuple(cfg["input_shape"])
    trainable_shapes = []
    for i, entry in enumerate(cfg["layers"]):
        where = f"{source}: layer {i} ({entry['class_name']})"
        cls = LAYER_CLASSES[entry["class_name"]]
        lcfg = entry["config"]
        if i == 0 and "input_shape" in lcfg and tuple(lcfg["input_shape"]) != shape[1:]:
            raise ModelFileError(f"{where}: input_shape {lcfg['input_shape']} differs from the model's {list(shape[1:])}")
        layer = _construct(cls, lcfg, where)
        param_shapes, shape = _probe(layer, shape, where)
        dtype = np.dtype(lcfg["dtype"])
        for key, pshape in param_shapes.items():
            plan.expected[weight_name(i, key)] = (dtype, pshape)
            if layer.weight_is_trainable(key):  # the config's `trainable`, and not a moving statistic
                trainable_shapes.append((dtype, pshape))
        plan.layer_specs.append((cls, lcfg))
    comp = doc["compile"]
    if comp is not None:
        plan.optimizer, plan.compile_args = compile_objects(comp, source)
    state = doc["training_state"]
    if state is not None:
        if comp is None:
            raise ModelFileError(f"{source}: a training state without compile settings")
        slots = state["optimizer_slots"]
        if slots not in (0, len(trainable_shapes)):
            raise ModelFileError(
                f"{source}: {slots} optimizer state entries for {len(trainable_shapes)} trainable weights"
            )
        for j, (dtype, pshape) in enumerate(trainable_shapes[:slots]):
            keys = list(plan.optimizer.build_state(np.zeros((1,), dtype)))
            plan.weight_slots.append(keys)
            for key in keys:
                plan.expected[slot_name(j, key)] = (dtype, pshape)
        want, got = set(plan.optimizer.get_global_state()), set(state.get("optimizer_globals", {}))
        if want != got:
            raise ModelFileError(f"{source}: the training state holds optimizer globals {sorted(got)}; "
                                 f"{type(plan.optimizer).__name__} keeps {sorted(want)}")
        for i in state["rng"]["layers"]:
            if (i >= len(plan.layer_specs) or not issubclass(plan.layer_specs[i][0], _SEEDED)
                    or plan.layer_specs[i][1]["seed"] is None):
                raise ModelFileError(f"{source}: a generator state for layer {i}, which is not a seeded Dropout "
                                     "or augmentation layer")
        plan.training_state = state
    _compare_tensors(plan.expected, infos, source, dtype_exact=True)
    return plan


def _compare_tensors(expected, infos, source, dtype_exact):
    missing = sorted(set(expected) - set(infos))
    extra = sorted(set(infos) - set(expected))
    if missing:
        raise ModelFileError(f"{source}: missing tensor(s) {', '.join(missing[:10])} that the architecture needs")
    if extra:
        raise ModelFileError(f"{source}: unexpected tensor(s) {short_repr(extra)} that the architecture does not have")
    for name, (dtype, shape) in expected.items():
        got_dtype, got_shape = infos[name]
        if tuple(got_shape) != tuple(shape):
            raise ModelFileError(f"{source}: tensor {name!r} has shape {tuple(got_shape)}; the architecture needs {tuple(shape)}")
        if dtype_exact and got_dtype != dtype:
            raise ModelFileError(f"{source}: tensor {name!r} is {got_dtype}; the architecture says {dtype}")


def _read_document(reader):
    meta, source = reader.metadata, reader.source
    if set(meta) != {"convolab"}:
        raise ModelFileError(
            f"{source} is a safetensors file but not a convolab one (its metadata has keys "
            f"{short_repr(sorted(meta))}; convolab files have one, 'convolab')"
        )
    text = meta["convolab"]
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ModelFileError(f"{source}: the convolab metadata is {len(text):,} characters; at most {MAX_DOCUMENT_BYTES:,}")
    doc = strict_json_loads(text, "convolab metadata", source)
    try:
        return check_document(doc, "convolab")
    except ModelFileError as e:
        raise ModelFileError(f"{source}: {e}") from None


def _infos(reader):
    return {name: (t.dtype.newbyteorder("="), t.shape) for name, t in reader.tensors.items()}


# -- loading: build ------------------------------------------------------------------
def _build(plan, doc, tensors, compile, source):
    from ..models.sequential import Sequential

    cfg = doc["model"]["config"]
    saved_rng = random_mod.get_state()
    try:
        model = Sequential(name=cfg["name"])
        model.dtype = cfg["dtype"]
        for cls, lcfg in plan.layer_specs:
            model.add(cls.from_config(dict(lcfg)))
        if not model.built:
            model.build((None,) + tuple(cfg["input_shape"]))
        for i, layer in enumerate(model.layers):
            layer.set_weights([tensors[weight_name(i, key)] for key in layer.params])
        if compile and plan.optimizer is not None:
            model.compile(optimizer=plan.optimizer, **plan.compile_args)
    except (ValueError, TypeError, KeyError) as e:
        raise ModelFileError(f"{source}: the model could not be rebuilt: {e}") from None
    finally:
        # Building drew initial weights from the global generator; loading must not move it.
        random_mod.set_state(saved_rng)
    state = plan.training_state
    if state is not None:
        weights = _trainable_weights(model)
        restore_training_state(
            model, state, compile,
            [(model.layers[i], s) for i, s in state["rng"]["layers"].items()],
            lambda: [(weights[j], {key: tensors[slot_name(j, key)] for key in keys})
                     for j, keys in enumerate(plan.weight_slots)])
    return model


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


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved by :func:`save_model` (``model.save``), ready to predict or train on.

    With ``compile=True`` (default) the model is compiled as it was saved and, if the file holds
    a training state, the optimizer state, ``iterations`` and convolab's global random
    generator are restored too, so ``fit(..., initial_epoch=k)`` repeats bitwise what an
    uninterrupted run would have done. ``compile=False`` leaves the generator alone.

    Args:
        filepath: the file (any name; the content decides).
        custom_objects: not supported (convolab files hold only built-in layers); must be None.
        compile: compile the model with its saved settings.
        safe_mode: accepted for Keras compatibility; loading is always safe (no code runs).

    Returns:
        a built :class:`~convolab.models.Sequential`.

    Raises:
        ModelFileError: for every way the file can be wrong (missing, truncated, corrupted,
            oversized, crafted, weights-only, a newer format version).
    """
    if custom_objects:
        raise ValueError("load_model: custom_objects are not supported; convolab files hold only built-in layers")
    from .keras_zip import is_zip, load_keras

    if is_zip(filepath):
        return load_keras(filepath, compile=compile)
    with ContainerReader(filepath) as reader:
        source = reader.source
        doc = _read_document(reader)
        if doc["kind"] != "model":
            raise ModelFileError(
                f"{source} holds weights only (written by save_weights); build the model and call "
                "model.load_weights(path)"
            )
        if doc["model"]["class_name"] == "Functional":
            from .graph_io import load_graph_model

            return load_graph_model(reader, doc, compile)
        plan = _plan_model(doc, _infos(reader), source)
        tensors = reader.read_tensors()
    return _build(plan, doc, tensors, compile, source)


def load_weights(model, filepath):
    """Load the weights of a :func:`save_weights` (or :func:`save_model`) file into ``model``.

    Tensors are matched by layer index and parameter name; every shape must match the built
    model (values are cast to the model's dtype). Optimizer state in a model file is ignored.

    Raises:
        ModelFileError: the file is bad or does not fit ``model``.
    """
    from .keras_h5 import is_hdf5, load_weights_h5
    from .keras_zip import is_zip, load_weights_keras

    if is_hdf5(filepath):
        return load_weights_h5(model, filepath)
    if is_zip(filepath):
        return load_weights_keras(model, filepath)
    if not _indexed_weights(model):
        from .weights_io import load_variables

        with ContainerReader(filepath) as reader:
            return load_variables(model, reader, _read_document(reader))
    if not getattr(model, "built", False):
        raise ModelFileError(
            f"load_weights: {model.describe()} is not built; give the first layer input_shape=(...) first"
        )
    expected = {weight_name(i, key): (p.dtype, p.shape)
                for i, layer in enumerate(model.layers) for key, p in layer.params.items()}
    with ContainerReader(filepath) as reader:
        source = reader.source
        doc = _read_document(reader)
        if "variables" in doc or doc["kind"] == "model" and doc["model"]["class_name"] == "Functional":
            raise ModelFileError(f"{source} holds weights by path (written from a functional, subclassed or custom "
                                 f"model); {model.describe()} holds built-in layers by index: load the file into "
                                 "the model that wrote it")
        if doc["kind"] == "model":
            _plan_model(doc, _infos(reader), source)  # the whole file must be sound
        infos = {k: v for k, v in _infos(reader).items() if k.startswith("layers.")}
        extra = sorted(set(_infos(reader)) - set(infos))
        if doc["kind"] == "weights" and extra:
            raise ModelFileError(f"{source}: unexpected tensor(s) {short_repr(extra)}")
        try:
            _compare_tensors(expected, infos, source, dtype_exact=False)
        except ModelFileError as e:
            raise ModelFileError(f"{e} (loading into {model.describe()})") from None
        tensors = reader.read_tensors()
    for i, layer in enumerate(model.layers):
        if layer.params:
            layer.set_weights([tensors[weight_name(i, key)] for key in layer.params])


__all__ = ["DEFAULT_SUFFIX", "MODEL_SUFFIXES", "load_model", "load_weights", "save_model", "save_weights"]
