"""save_model / load_model / save_weights / load_weights: one safetensors file per model.

The saving package's front door: each function picks the format (this module's own for a
Sequential stack; :mod:`.graph_io`, :mod:`.weights_io`, :mod:`.keras_zip`, :mod:`.keras_h5` for the
others) and every format module builds on :mod:`._common`, never on this module, so the
dispatch here makes no import cycle.

File format (``format_version`` 1). A convolab file is a safetensors file:

* ``__metadata__`` holds one string, ``"convolab"``: a JSON document ``{"format_version": 1,
  "kind": "model" | "weights", "convolab_version": ...}`` plus, for ``kind == "model"``:
  ``"model"`` (the architecture: ``Sequential.get_config()`` and the model's ``dtype``, under
  ``{"class_name": "Sequential", "config": ...}``), ``"compile"`` (``null`` or the optimizer
  config, with a learning-rate schedule's config in place of the rate when it has one, loss
  config and metric names, a user's loss or metric as Keras writes it, by registered name
  (:mod:`.custom_compile`); for a model with several outputs, ``"outputs"``: one ``{name, loss,
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
:mod:`.keras_h5`; h5py is a dependency): architecture, weights and compile settings, no
optimizer state; ``.h5`` is Keras's legacy HDF5 model file (:mod:`.legacy_h5`), which Keras 3
still reads and writes. Loading decides by content, so a convolab file once saved under a ``.keras`` name
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

from .. import random as random_mod
from ..utils.file_names import DEFAULT_SUFFIX, MODEL_SUFFIXES
from . import schema
from ._common import (
    LAYER_CLASSES,
    SEEDED_LAYERS,
    check_saveable,
    checked_for_save,
    compare_tensors,
    compile_config,
    compile_objects,
    compile_or_warn,
    construct,
    convolab_version,
    plain,
    probe,
    read_document,
    restore_training_state,
    rng_json,
    tensor_infos,
)
from .container import ContainerReader, short_repr, write_container
from .errors import ModelFileError


# -- names ------------------------------------------------------------------------
def _check_suffix(filepath, what):
    path = os.fspath(filepath)
    if not isinstance(path, str):
        raise TypeError(f"{what}: the file path must be a str or path-like; got {filepath!r}")
    if path.lower().endswith(MODEL_SUFFIXES):
        return path
    hint = ""
    if path.lower().endswith((".h5", ".hdf5")):
        hint = (
            " For Keras 3's HDF5 weights name the file 'name.weights.h5' (save_weights); Keras 3's model "
            "files end in .keras (or .h5, Keras's legacy model file, with model.save)."
        )
    raise ValueError(
        f"{what}: unsupported file name {path!r}; use a name ending in {', '.join(MODEL_SUFFIXES)} "
        f"(e.g. 'model{DEFAULT_SUFFIX}').{hint}"
    )


def weight_name(layer_index, param):
    return f"layers.{layer_index}.{param}"


def slot_name(weight_index, slot):
    return f"optimizer.{weight_index}.{slot}"


# -- saving -------------------------------------------------------------------------
def _indexed_weights(model):
    """Whether ``model``'s weights are saved by layer index (a stack of built-in layers), not by path."""
    from ..models.sequential import Sequential

    if not isinstance(model, Sequential) or not model.built or not model.layers:
        return isinstance(model, Sequential)  # an unbuilt stack: refused with the stack's own message
    return all(LAYER_CLASSES.get(type(l).__name__) is type(l) for l in model.layers)


def _trainable_weights(model):
    # The optimizer's state list follows Sequential's trainable parameters, in model order.
    return [layer.params[key] for layer in model.layers for key in layer.trainable_keys()]


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
    global_state = rng_json(random_mod.get_state())
    if global_state is None:
        warnings.warn("convolab's random generator is not PCG64; its state is not saved", RuntimeWarning, stacklevel=3)
    layer_rngs = {}
    for i, layer in enumerate(model.layers):
        rng = getattr(layer, "_rng", None)  # Dropout(seed=...), RandomFlip(seed=...)... draw from their own
        if isinstance(layer, SEEDED_LAYERS) and rng is not None:
            state = rng_json(rng.bit_generator.state)
            if state is not None:
                layer_rngs[str(i)] = state
    out = {
        "iterations": int(opt.iterations),
        "optimizer_slots": len(states),
        "rng": {"global": global_state, "layers": layer_rngs},
    }
    if opt.get_global_state():  # absent for optimizers without any, so their files stay as they were
        out["optimizer_globals"] = dict(opt.get_global_state())
    return out


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
    if str(filepath).lower().endswith((".h5", ".hdf5")) and not str(filepath).lower().endswith(".weights.h5"):
        from .legacy_h5 import save_legacy_h5

        return save_legacy_h5(model, filepath, include_optimizer)  # Keras's legacy HDF5 model file
    path = _check_suffix(filepath, "save_model")
    if not isinstance(model, Sequential):
        from ..models.model import Model
        from .graph_io import save_graph_model

        if not isinstance(model, Model):
            raise TypeError(f"save_model saves convolab models (Sequential or functional); got {type(model).__name__}")

        return save_graph_model(model, path, include_optimizer)
    check_saveable(model, "save_model")
    tensors = {weight_name(i, key): arr for i, layer in enumerate(model.layers) for key, arr in layer.params.items()}
    doc = {
        "format_version": schema.FORMAT_VERSION,
        "kind": "model",
        "convolab_version": convolab_version(),
        # The model's dtype (what inputs are cast to) is part of the architecture.
        "model": {"class_name": "Sequential", "config": plain({**model._stack_config(), "dtype": model.dtype})},
        "compile": None,
        "training_state": None,
    }
    comp = compile_config(model) if model.compiled else None  # None for a lambda loss (with a warning)
    if comp is not None:
        doc["compile"] = plain(comp)
        if include_optimizer:
            doc["training_state"] = _training_state(model, tensors)
    checked_for_save(doc, tensors, "save_model", _plan_model)
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
    check_saveable(model, "save_weights")
    tensors = {weight_name(i, key): arr for i, layer in enumerate(model.layers) for key, arr in layer.params.items()}
    doc = {
        "format_version": schema.FORMAT_VERSION,
        "kind": "weights",
        "convolab_version": convolab_version(),
        "layers": [{"class_name": type(l).__name__, "name": l.name} for l in model.layers],
    }
    checked_for_save(doc, tensors, "save_weights")
    write_container(path, tensors, {"convolab": json.dumps(doc, allow_nan=False)})


# -- loading: plan (no arrays) -----------------------------------------------------


class _Plan:
    """What a checked model document builds: configs, expected tensors, compile objects."""

    def __init__(self):
        self.layer_specs = []  # (class, config)
        self.expected = {}  # tensor name -> (dtype, shape)
        self.optimizer = None
        self.compile_args = None  # loss, metrics... for model.compile(optimizer=self.optimizer, **compile_args)
        self.missing = []  # the user's losses/metrics the compile settings name that nothing provides
        self.training_state = None
        self.weight_slots = []  # per trainable weight: list of slot names


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
            raise ModelFileError(
                f"{where}: input_shape {lcfg['input_shape']} differs from the model's {list(shape[1:])}"
            )
        layer = construct(cls, lcfg, where)
        param_shapes, shape = probe(layer, shape, where)
        dtype = np.dtype(lcfg["dtype"])
        for key, pshape in param_shapes.items():
            plan.expected[weight_name(i, key)] = (dtype, pshape)
            if layer.weight_is_trainable(key):  # the config's `trainable`, and not a moving statistic
                trainable_shapes.append((dtype, pshape))
        plan.layer_specs.append((cls, lcfg))
    comp = doc["compile"]
    if comp is not None:
        plan.optimizer, plan.compile_args, plan.missing = compile_objects(comp, source)
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
            raise ModelFileError(
                f"{source}: the training state holds optimizer globals {sorted(got)}; "
                f"{type(plan.optimizer).__name__} keeps {sorted(want)}"
            )
        for i in state["rng"]["layers"]:
            if (
                i >= len(plan.layer_specs)
                or not issubclass(plan.layer_specs[i][0], SEEDED_LAYERS)
                or plan.layer_specs[i][1]["seed"] is None
            ):
                raise ModelFileError(
                    f"{source}: a generator state for layer {i}, which is not a seeded Dropout or augmentation layer"
                )
        plan.training_state = state
    compare_tensors(plan.expected, infos, source, dtype_exact=True)
    return plan


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
        compiled = compile_or_warn(model, plan.optimizer, plan.compile_args, plan.missing, compile, source)
    except (ValueError, TypeError, KeyError) as e:
        raise ModelFileError(f"{source}: the model could not be rebuilt: {e}") from None
    finally:
        # Building drew initial weights from the global generator; loading must not move it.
        random_mod.set_state(saved_rng)
    state = plan.training_state
    if state is not None:
        weights = _trainable_weights(model)
        restore_training_state(
            model,
            state,
            compiled,
            [(model.layers[i], s) for i, s in state["rng"]["layers"].items()],
            lambda: [
                (weights[j], {key: tensors[slot_name(j, key)] for key in keys})
                for j, keys in enumerate(plan.weight_slots)
            ],
        )
    return model


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved by :func:`save_model` (``model.save``), ready to predict or train on.

    With ``compile=True`` (default) the model is compiled as it was saved and, if the file holds
    a training state, the optimizer state, ``iterations`` and convolab's global random
    generator are restored too, so ``fit(..., initial_epoch=k)`` repeats bitwise what an
    uninterrupted run would have done. ``compile=False`` leaves the generator alone.

    Args:
        filepath: the file (any name; the content decides).
        custom_objects: ``{name: class or function}`` of user layers a Keras file (``.keras``, legacy
            ``.h5``) may name, and of user losses and metrics any model file's compile settings may
            name, besides those registered with ``keras.saving.register_keras_serializable``; the name
            is the class or function name or the registered ``"package>name"``. A loss or metric found
            nowhere leaves the model uncompiled, with a warning (as Keras).
        compile: compile the model with its saved settings.
        safe_mode: accepted for Keras compatibility; loading is always safe (no code from the file
            runs: a user layer is built by the class the user registered or passed, never imported).

    Returns:
        a built :class:`~convolab.models.Sequential`.

    Raises:
        ModelFileError: for every way the file can be wrong (missing, truncated, corrupted,
            oversized, crafted, weights-only, a newer format version).
    """
    from . import object_registry
    from .keras_h5 import is_hdf5
    from .keras_zip import is_zip, load_keras

    with object_registry.CustomObjectScope(custom_objects):  # checks custom_objects too
        if is_zip(filepath):
            return load_keras(filepath, compile=compile)
        if is_hdf5(filepath):
            from .legacy_h5 import load_legacy_h5

            return load_legacy_h5(filepath, compile=compile)
        # a convolab file too: a layer's config may name a function registered or passed here
        return _load_convolab(filepath, compile)


def _load_convolab(filepath, compile):
    with ContainerReader(filepath) as reader:
        source = reader.source
        doc = read_document(reader)
        if doc["kind"] != "model":
            raise ModelFileError(
                f"{source} holds weights only (written by save_weights); build the model and call "
                "model.load_weights(path)"
            )
        if doc["model"]["class_name"] == "Functional":
            from .graph_io import load_graph_model

            return load_graph_model(reader, doc, compile)
        plan = _plan_model(doc, tensor_infos(reader), source)
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
            return load_variables(model, reader, read_document(reader))
    if not getattr(model, "built", False):
        raise ModelFileError(
            f"load_weights: {model.describe()} is not built; give the first layer input_shape=(...) first"
        )
    expected = {
        weight_name(i, key): (p.dtype, p.shape)
        for i, layer in enumerate(model.layers)
        for key, p in layer.params.items()
    }
    with ContainerReader(filepath) as reader:
        source = reader.source
        doc = read_document(reader)
        if "variables" in doc or doc["kind"] == "model" and doc["model"]["class_name"] == "Functional":
            raise ModelFileError(
                f"{source} holds weights by path (written from a functional, subclassed or custom "
                f"model); {model.describe()} holds built-in layers by index: load the file into "
                "the model that wrote it"
            )
        if doc["kind"] == "model":
            _plan_model(doc, tensor_infos(reader), source)  # the whole file must be sound
        infos = {k: v for k, v in tensor_infos(reader).items() if k.startswith("layers.")}
        extra = sorted(set(tensor_infos(reader)) - set(infos))
        if doc["kind"] == "weights" and extra:
            raise ModelFileError(f"{source}: unexpected tensor(s) {short_repr(extra)}")
        try:
            compare_tensors(expected, infos, source, dtype_exact=False)
        except ModelFileError as e:
            raise ModelFileError(f"{e} (loading into {model.describe()})") from None
        tensors = reader.read_tensors()
    for i, layer in enumerate(model.layers):
        if layer.params:
            layer.set_weights([tensors[weight_name(i, key)] for key in layer.params])


__all__ = ["DEFAULT_SUFFIX", "MODEL_SUFFIXES", "load_model", "load_weights", "save_model", "save_weights"]
