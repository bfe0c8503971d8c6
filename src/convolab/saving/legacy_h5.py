"""Keras's legacy HDF5 model file (``model.save('m.h5')``), which Keras 3 still reads and writes.

Layout (Keras 3 ``keras/src/legacy/saving/legacy_h5_format.py``: ``save_model_to_hdf5``,
``save_weights_to_hdf5_group``, ``load_weights_from_hdf5_group``)::

    attrs   keras_version, backend              strings
            model_config                        JSON {"class_name", "config"} of the model
            training_config (compiled models)   JSON: the compile config, the optimizer under
                                                "optimizer_config" {"class_name", "config"}
    /model_weights                              attrs layer_names (one per model.layers entry),
                                                backend, keras_version
    /model_weights/<layer>                      attrs weight_names ["<layer>/<weight>", ...]
    /model_weights/<layer>/<layer>/<weight>     one dataset per weight name (the name is a path)
    /model_weights/top_level_model_weights      the model's own weights (none)
    /optimizer_weights                          optimizer state (not written; ignored on reading)

Weights are matched by position, as Keras's loader does: the layers that have weights, in
``model.layers`` order, against the listed layer groups whose ``weight_names`` is not empty; each
layer's weights in Keras's legacy order (trainable ones, then the others). Older files name
weights ``<layer>/<weight>:0`` (Keras 2); the names are read from the file, so both load.

The architecture goes through the same converter and checks as a ``.keras`` file's config.json
(:mod:`.keras_config`, :func:`.keras_zip.plan_keras_config`); Keras 2's spellings (nodes as
``[[name, node, tensor, kwargs]]``, ``batch_input_shape``) are rewritten into Keras 3's first.
Reading takes the guards of :mod:`.keras_h5`: the file's size is capped, only hard links are
followed, every dataset must be an uncompressed float array of exactly the shape the built
model expects, and every check passes before any weight is set. Every failure is ModelFileError.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

from .. import random as random_mod
from . import graph_io, keras_h5, keras_zip
from .container import MAX_DOCUMENT_BYTES, strict_json_loads
from .errors import ModelFileError

#: what the attributes say; Keras reads neither back
KERAS_VERSION = keras_zip.KERAS_VERSION
BACKEND = "numpy"
#: layer and weight names listed in one attribute, at most
MAX_NAMES = 100_000


# -- writing -------------------------------------------------------------------------
def _legacy_weights(layer):
    """Keras's ``_legacy_weights``: trainable weights, then the others (the layer's own arrays)."""
    return [np.asarray(w) for w in list(layer.trainable_weights) + list(layer.non_trainable_weights)]


def _weight_names(layer):
    """``"<layer>/<weight>"`` for each of ``_legacy_weights(layer)`` (nested models: the path inside)."""
    paths = {id(w): p for p, w in layer.named_weights()}
    names = []
    for i, w in enumerate(_legacy_weights(layer)):
        path = paths.get(id(w), f"variable_{i}")
        names.append(path if path.startswith(f"{layer.name}/") else f"{layer.name}/{path}")
    return names


def _name_array(names):
    """Names as Keras stores them: a fixed-length bytes array (``np.asarray`` of UTF-8 bytes)."""
    return np.asarray([n.encode("utf8") for n in names]) if names else np.zeros((0,), "S1")


def _training_config(model):
    comp = keras_zip.keras_compile_config(model)
    if comp is None:  # a lambda loss: saved uncompiled, with a warning
        return None
    comp = dict(comp)
    optimizer = comp.pop("optimizer")
    comp["optimizer_config"] = {"class_name": optimizer["class_name"], "config": optimizer["config"]}
    return comp


def legacy_h5_bytes(model, include_optimizer=True) -> bytes:
    """The legacy ``.h5`` file of ``model`` as bytes (architecture, weights, compile settings)."""
    h5py = keras_h5.require_h5py()
    if not getattr(model, "built", False):
        raise ValueError(f"save_model: {model.describe()} is not built; call it on data or give it an input shape")
    config = keras_zip.keras_architecture(model, "legacy .h5 file")
    layers = list(model.layers)
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError(
            f"save_model: {model.describe()} has layers that share a name; a legacy .h5 file keeps "
            "each layer's weights under its name: give the layers distinct names"
        )
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["keras_version"] = KERAS_VERSION
        f.attrs["backend"] = BACKEND
        f.attrs["model_config"] = json.dumps(
            {"class_name": config["class_name"], "config": config["config"]}, allow_nan=False
        )
        training_config = _training_config(model) if include_optimizer and getattr(model, "compiled", False) else None
        if training_config is not None:
            f.attrs["training_config"] = json.dumps(training_config, allow_nan=False)
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = _name_array(names)
        group.attrs["backend"] = BACKEND.encode("utf8")
        group.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
        for layer in sorted(layers, key=lambda l: l.name):
            g = group.create_group(layer.name)
            wnames = _weight_names(layer)
            g.attrs["weight_names"] = _name_array(wnames)
            for name, w in zip(wnames, _legacy_weights(layer)):
                g.create_dataset(name, data=np.asarray(w))
        group.create_group("top_level_model_weights").attrs["weight_names"] = _name_array([])
    return buf.getvalue()


def save_legacy_h5(model, path, include_optimizer=True):
    """``model.save('m.h5')``: Keras's legacy HDF5 model file, written atomically."""
    from .atomic import atomic_write_bytes

    atomic_write_bytes(path, legacy_h5_bytes(model, include_optimizer))


# -- reading: the architecture ---------------------------------------------------------
def _text_attr(attrs, key, source, required=False):
    """A string attribute (bytes or str, as Keras 2 and 3 write it), capped; None if absent."""
    if key not in attrs:
        if required:
            raise ModelFileError(
                f"{source}: no {key!r} attribute; this is not a Keras model file (a weights-only "
                ".h5? build the model in code and call model.load_weights)"
            )
        return None
    value = attrs[key]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(f"{source}: attribute {key!r} is not UTF-8") from None
    if not isinstance(value, str):
        raise ModelFileError(f"{source}: attribute {key!r} must be a string; got {type(value).__name__}")
    if len(value) > MAX_DOCUMENT_BYTES:
        raise ModelFileError(
            f"{source}: attribute {key!r} is {len(value):,} characters; at most {MAX_DOCUMENT_BYTES:,}"
        )
    return value


def _names_attr(attrs, key, source):
    """A list-of-names attribute (Keras splits a long one into ``key0``, ``key1``...)."""
    if key in attrs:
        chunks = [attrs[key]]
    else:
        chunks, k = [], 0
        while f"{key}{k}" in attrs and k < MAX_NAMES:
            chunks.append(attrs[f"{key}{k}"])
            k += 1
    names = []
    for chunk in chunks:
        arr = np.asarray(chunk)
        if arr.ndim != 1 or arr.size > MAX_NAMES:
            raise ModelFileError(
                f"{source}: attribute {key!r} must be a list of at most {MAX_NAMES} names; got shape {arr.shape}"
            )
        if arr.size and arr.dtype.kind not in "SUO":
            raise ModelFileError(f"{source}: attribute {key!r} must list names; got dtype {arr.dtype}")
        for n in arr.tolist():
            if isinstance(n, bytes):
                try:
                    n = n.decode("utf-8")
                except UnicodeDecodeError:
                    raise ModelFileError(f"{source}: attribute {key!r} holds a name that is not UTF-8") from None
            if not isinstance(n, str) or not n:
                raise ModelFileError(f"{source}: attribute {key!r} holds {n!r}; expected a non-empty name")
            names.append(n)
    return names


def _legacy_node(node, where):
    """Keras 2's ``[[name, node, tensor, kwargs], ...]`` as Keras 3's ``{"args": [...], "kwargs": {}}``."""
    if isinstance(node, dict):
        return node
    if not isinstance(node, list) or not node:
        raise ModelFileError(f"{where}: expected a node (a list of [layer, node, tensor, kwargs]); got {node!r:.80}")
    tensors, kwargs = [], {}
    for ref in node:
        if not isinstance(ref, list) or len(ref) not in (3, 4):
            raise ModelFileError(f"{where}: expected [layer name, node index, tensor index, kwargs]; got {ref!r:.80}")
        if len(ref) == 4:
            if not isinstance(ref[3], dict):
                raise ModelFileError(f"{where}: a node's kwargs must be an object; got {ref[3]!r:.80}")
            kwargs.update(ref[3])
        tensors.append({"class_name": "__keras_tensor__", "config": {"keras_history": list(ref[:3])}})
    return {"args": [tensors if len(tensors) > 1 else tensors[0]], "kwargs": kwargs}


def keras3_config(doc, where):
    """``doc`` (a ``model_config``) with Keras 2's spellings rewritten as Keras 3 writes them."""
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise ModelFileError(f"{where}: expected {{class_name, config}} of a Sequential or functional model")
    cfg = dict(doc["config"])
    layers = cfg.get("layers")
    if not isinstance(layers, list):
        raise ModelFileError(f"{where}.config.layers: expected a list; got {type(layers).__name__}")
    out = []
    for i, e in enumerate(layers):
        at = f"{where}.config.layers[{i}]"
        if not isinstance(e, dict):
            raise ModelFileError(f"{at}: expected an object; got {type(e).__name__}")
        e = dict(e)
        lcfg = dict(e["config"]) if isinstance(e.get("config"), dict) else e.get("config")
        if isinstance(lcfg, dict) and "batch_input_shape" in lcfg:
            shape = lcfg.pop("batch_input_shape")
            if e.get("class_name") == "InputLayer":
                lcfg.setdefault("batch_shape", shape)
            elif i == 0 and doc.get("class_name") == "Sequential":
                cfg.setdefault("build_input_shape", shape)
        if e.get("class_name") in ("Sequential", "Functional", "Model"):
            nested = keras3_config({"class_name": e["class_name"], "config": lcfg}, at)
            lcfg = nested["config"]
        e["config"] = lcfg
        if isinstance(e.get("inbound_nodes"), list):
            e["inbound_nodes"] = [_legacy_node(n, f"{at}.inbound_nodes[{k}]") for k, n in enumerate(e["inbound_nodes"])]
        if e.get("class_name") == "Model":
            e["class_name"] = "Functional"
        out.append(e)
    cfg["layers"] = out
    return {
        **doc,
        "class_name": "Functional" if doc.get("class_name") == "Model" else doc.get("class_name"),
        "config": cfg,
    }


# -- reading: the weights --------------------------------------------------------------
def _dataset(h5py, group, name, where):
    """The dataset ``name`` (a path such as ``dense/kernel:0``) under ``group``, through hard links only."""
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ModelFileError(f"{where}: weight name {name!r} is not a plain path")
    for part in parts[:-1]:
        group = keras_h5.child(h5py, group, part, h5py.Group, where)
        if group is None:
            raise ModelFileError(f"{where}: the file lists weight {name!r} but holds no group for it")
    ds = keras_h5.child(h5py, group, parts[-1], h5py.Dataset, where)
    if ds is None:
        raise ModelFileError(f"{where}: the file lists weight {name!r} but holds no dataset for it")
    return ds


def _checked_weights(h5py, f, model, source):
    """``[(variable, array)]`` for every weight of ``model``, read once the whole file fits it."""
    group = keras_h5.child(h5py, f, "model_weights", h5py.Group, source)
    if group is None:
        raise ModelFileError(f"{source}: no /model_weights group; expected Keras's legacy .h5 model layout")
    layer_names = _names_attr(group.attrs, "layer_names", f"{source}: /model_weights")
    present = set(keras_h5.member_names(group, source))
    listed = []
    for name in layer_names:
        if name not in present:
            raise ModelFileError(f"{source}: /model_weights lists layer {name!r} but has no group for it")
        g = keras_h5.child(h5py, group, name, h5py.Group, source, required=True)
        wnames = _names_attr(g.attrs, "weight_names", f"{source}: /model_weights/{name}")
        if wnames:
            listed.append((name, g, wnames))
    layers = [layer for layer in model.layers if _legacy_weights(layer)]
    if len(listed) != len(layers):
        raise ModelFileError(
            f"{source}: the file holds weights for {len(listed)} layer(s) "
            f"({[n for n, _, _ in listed][:12]}); {model.describe()} has {len(layers)} with weights "
            f"({[l.name for l in layers][:12]})"
        )
    plan = []
    for (name, g, wnames), layer in zip(listed, layers):
        want = _legacy_weights(layer)
        where = f"{source}: layer group /model_weights/{name} (for {layer.describe()})"
        if len(wnames) != len(want):
            raise ModelFileError(f"{where}: {len(wnames)} weight(s) in the file; the layer has {len(want)}")
        for i, (wname, w) in enumerate(zip(wnames, want)):
            ds = _dataset(h5py, g, wname, where)
            keras_h5.check_dataset(ds, i, np.shape(w), where)
            plan.append((w, ds))
    top = keras_h5.child(h5py, group, "top_level_model_weights", h5py.Group, source)
    if top is not None and _names_attr(top.attrs, "weight_names", f"{source}: top_level_model_weights"):
        raise ModelFileError(f"{source}: top_level_model_weights lists weights; {model.describe()} has none of its own")
    return [(w, ds[()]) for w, ds in plan]


def _check_weight_bytes(plan, available, source):
    need = sum(
        int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize for dtype, shape in plan.totals_expected.values()
    )
    if need > available:
        raise ModelFileError(
            f"{source}: the architecture needs {need:,} bytes of weights; the file is "
            f"{available:,} bytes, so it cannot hold them"
        )


def load_legacy_h5(path, compile=True):
    """The model in a legacy Keras ``.h5`` file, with its weights (and compile settings)."""
    h5py = keras_h5.require_h5py()
    source = os.fspath(path)
    fileobj, size = keras_h5.open_capped(path)
    with fileobj:
        try:
            f = h5py.File(fileobj, "r")
        except keras_h5.DAMAGE as e:
            raise ModelFileError(f"{source}: not a readable HDF5 file ({e})") from None
        with keras_h5.damage_refused(source), f:
            config = strict_json_loads(
                _text_attr(f.attrs, "model_config", source, required=True), "model_config", source
            )
            training = _text_attr(f.attrs, "training_config", source)
            plan = keras_zip.plan_keras_config(keras3_config(config, f"{source}: model_config"), source)
            _check_weight_bytes(plan, size, source)
            saved_rng = random_mod.get_state()
            try:
                model = graph_io.build_model(plan)
            except (ValueError, TypeError, KeyError) as e:
                raise ModelFileError(f"{source}: the model could not be rebuilt: {e}") from None
            finally:
                random_mod.set_state(saved_rng)  # building drew initial weights; loading must not move it
            values = _checked_weights(h5py, f, model, source)
    for w, value in values:
        w[...] = value
    if compile and training is not None:
        comp = strict_json_loads(training, "training_config", source)
        if not isinstance(comp, dict) or not isinstance(comp.get("optimizer_config"), dict):
            raise ModelFileError(f"{source}: training_config must be an object with an optimizer_config")
        comp = dict(comp)
        opt = comp.pop("optimizer_config")
        comp["optimizer"] = {"module": "keras.optimizers", "registered_name": None, **opt}
        keras_zip.compile_from_keras_config(model, comp, source)
    return model


__all__ = ["keras3_config", "legacy_h5_bytes", "load_legacy_h5", "save_legacy_h5"]
