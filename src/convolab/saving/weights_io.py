"""Weights files of any model (functional, subclassed, stacks with a user's layer): by path.

A Sequential of built-in layers keeps its own weights format (tensors ``layers.<i>.<param>``,
see :mod:`convolab.saving.model_io`). Every other model writes ``kind: "weights"`` with
``"variables"``: each weight's path (:meth:`Model.named_weights`) and shape, in
``model.weights`` order; the tensors are ``weights/<path>``, as in a functional model file.
Loading checks the count, every path and every shape against the model before reading; paths
match up to the counters of default names (``dense_3`` saved loads into a rebuilt ``dense_8``).
"""

from __future__ import annotations

import json
import re

from . import _common, schema
from .container import short_repr, write_container
from .errors import ModelFileError
from .graph_io import named_weights_checked, plan_document, weight_tensor


_COUNTER = re.compile(r"_\d+(?=/|$)")


def _same_place(saved, mine):
    """Whether two weight paths name the same weight, up to the counters that make default
    layer names unique in a process (``dense_7/kernel`` saved, ``dense_9/kernel`` rebuilt)."""
    return _COUNTER.sub("", saved) == _COUNTER.sub("", mine)


def save_variables(model, path, what="save_weights"):
    named = named_weights_checked(model, what)
    tensors = {weight_tensor(p): w for p, w in named}
    doc = {
        "format_version": schema.FORMAT_VERSION,
        "kind": "weights",
        "convolab_version": _common.convolab_version(),
        "variables": [{"path": p, "shape": list(w.shape)} for p, w in named],
    }
    _common.checked_for_save(doc, tensors, what)
    write_container(path, tensors, {"convolab": json.dumps(doc, allow_nan=False)})


def _file_variables(reader, doc):
    """``[(path, shape)]`` the file holds, in its order; the tensors checked against that list."""
    source, infos = reader.source, _common.tensor_infos(reader)
    if doc["kind"] == "model":
        if doc["model"]["class_name"] != "Functional":
            raise ModelFileError(
                f"{source} holds a Sequential model, whose weights are named by layer index; "
                "load it with keras.models.load_model(path) instead"
            )
        plan = plan_document(doc, infos, source)  # the whole file must be sound
        # The plan meets the weights in the order the rebuilt model would hold them.
        listed = [
            (name[len("weights/") :], tuple(shape))
            for name, (_, shape) in plan.totals.expected.items()
            if name.startswith("weights/")
        ]
        return listed
    if "variables" not in doc:
        raise ModelFileError(
            f"{source} holds a Sequential's weights by layer index; load it into a Sequential model of the same layers"
        )
    listed = [(v["path"], tuple(v["shape"])) for v in doc["variables"]]
    names = [weight_tensor(p) for p, _ in listed]
    if len(set(names)) != len(names):
        raise ModelFileError(f"{source}: a weight path is listed twice")
    if set(names) != set(infos):
        raise ModelFileError(
            f"{source}: the tensors {short_repr(sorted(infos))} differ from the weights listed "
            f"{short_repr(sorted(names))}"
        )
    for (p, shape), name in zip(listed, names):
        if tuple(infos[name][1]) != shape:
            raise ModelFileError(
                f"{source}: weight {p!r} is listed with shape {shape}; its tensor has {infos[name][1]}"
            )
    return listed


def load_variables(model, reader, doc):
    """Load a by-path weights file (or a functional model file's weights) into ``model``."""
    source = reader.source
    named = model.named_weights()
    ordered = _file_variables(reader, doc)
    into = f"loading into {model.describe()}"
    if len(ordered) != len(named):
        hint = "" if named else " (is it built? call it on data once first)"
        raise ModelFileError(f"{source}: holds {len(ordered)} weights; {model.describe()} has {len(named)}{hint}")
    for i, ((path, w), (saved, shape)) in enumerate(zip(named, ordered)):
        if not _same_place(saved, path):
            raise ModelFileError(f"{source}: weight {i} is {saved!r}; {into} expects {path!r} there")
        if shape != w.shape:
            raise ModelFileError(f"{source}: weight {saved!r} has shape {shape}; {into} expects {w.shape}")
    tensors = reader.read_tensors()
    for (_, w), (saved, _) in zip(named, ordered):
        w[...] = tensors[weight_tensor(saved)]
