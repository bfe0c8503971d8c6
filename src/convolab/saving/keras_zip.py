"""Keras 3's ``.keras`` files: a zip of ``metadata.json``, ``config.json`` and ``model.weights.h5``.

Writing (:func:`save_keras`): the architecture as Keras's JSON (:mod:`.keras_config`) with, for a
compiled model, Keras's ``compile_config`` (:mod:`.keras_compile`), the weights in Keras's H5 layout
(:mod:`.keras_h5`), ``metadata.json`` with a Keras version; the zip is written atomically. The
optimizer's state (its moments and step count) is not written: Keras starts it afresh on load.

Reading (:func:`load_keras`) never extracts anything and never runs code: the file's size is
capped, the zip may hold only those three names (anything else, ``../`` included, is
refused), members must be stored or deflated and not encrypted, each member's declared size is
checked against its cap before it is read, and the read itself stops at the cap. The JSON is
parsed strictly, converted to convolab's architecture and checked by convolab's schema and
planner (shapes, references, cycles, size caps) before anything is built; the weights are
checked against the built model before any is set.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import zipfile

from .. import random as random_mod
from . import graph_io, graph_schema
from .container import MAX_DOCUMENT_BYTES, MAX_FILE_BYTES, strict_json_loads
from .errors import ModelFileError
from .keras_config import from_keras, to_keras
from .keras_h5 import read_file_bytes, read_into, require_h5py, weights_h5_bytes

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
#: what the metadata says; Keras 3 does not read it back
KERAS_VERSION = "3.0.0"
_CAPS = {CONFIG: MAX_DOCUMENT_BYTES, METADATA: 64 * 1024, WEIGHTS: MAX_FILE_BYTES}
ZIP_SIGNATURE = b"PK\x03\x04"


def is_zip(path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == ZIP_SIGNATURE
    except (OSError, ValueError):  # the reader that follows names the problem
        return False


def save_keras(model, path):
    """Write ``model`` (Sequential or functional, built-in layers) as a Keras 3 ``.keras`` file."""
    from .atomic import atomic_write_bytes
    from .graph_io import _Describer

    require_h5py()
    entry = _Describer("save_model").model_entry(model)
    config = to_keras(entry, model)
    if getattr(model, "compiled", False):
        config["compile_config"] = _keras_compile_config(model)
    metadata = {"keras_version": KERAS_VERSION, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "written_by": "convolab"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(METADATA, json.dumps(metadata))
        zf.writestr(CONFIG, json.dumps(config, allow_nan=False))
        zf.writestr(WEIGHTS, weights_h5_bytes(model))
    atomic_write_bytes(path, buf.getvalue())


def _keras_compile_config(model):
    from . import _common, keras_compile, schema

    comp = _common.plain(_common.compile_config(model))
    try:
        schema.compile_schema(comp, "compile")  # never write what convolab would refuse to read
    except ModelFileError as e:
        raise ValueError(f"save_model: cannot save the compile settings of {model.describe()}: {e}") from None
    if model.optimizer.iterations:
        import warnings

        warnings.warn("save_model: a .keras file written by convolab holds the compile settings but not the "
                      "optimizer's state (moments, step count), which restarts on load; save to a .convolab file "
                      "to resume training exactly", UserWarning, stacklevel=5)
    return keras_compile.to_keras(comp)


def read_members(path, need=(CONFIG, WEIGHTS)):
    """``{name: bytes}`` of a ``.keras`` file's expected members, checked before reading."""
    source = os.fspath(path)
    data = read_file_bytes(path)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise ModelFileError(f"{source}: not a readable zip file ({e})") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        strange = sorted(set(names) - set(_CAPS))
        if strange or len(set(names)) != len(names):
            raise ModelFileError(f"{source}: the zip holds {names[:12]}; a .keras file of convolab's layers holds "
                                 f"only {sorted(_CAPS)}, each once (unexpected: {strange[:12]})")
        missing = [n for n in need if n not in names]
        if missing:
            raise ModelFileError(f"{source}: the zip lacks {missing}; it holds {names}")
        out = {}
        for info in infos:
            cap = _CAPS[info.filename]
            if info.flag_bits & 0x1:
                raise ModelFileError(f"{source}: {info.filename} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ModelFileError(f"{source}: {info.filename} uses compression method {info.compress_type}; "
                                     "expected stored (0) or deflated (8)")
            if info.file_size > cap:
                raise ModelFileError(f"{source}: {info.filename} is {info.file_size:,} bytes; at most {cap:,}")
            try:
                with zf.open(info) as f:
                    body = f.read(cap + 1)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ModelFileError(f"{source}: {info.filename} cannot be read ({e})") from None
            if len(body) > cap:
                raise ModelFileError(f"{source}: {info.filename} inflates past {cap:,} bytes")
            out[info.filename] = body
    return out


def _json(body, what, source):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"{source}: {what} is not UTF-8") from None
    return strict_json_loads(text, what, source)


def plan_keras_config(doc, source):
    """The checked plan of a Keras ``config.json`` document (nothing built)."""
    kind, cfg = from_keras(doc, f"{source}: config.json")
    where = f"{source}: model"
    try:
        cfg = (graph_schema.sequential_config if kind == "Sequential" else graph_schema.functional_config)(cfg, where, 0)
        totals = graph_io._Totals()
        plan = graph_io._plan_model(kind, cfg, "", True, where, totals)
    except RecursionError:
        raise ModelFileError(f"{source}: the model is nested too deeply") from None
    plan.totals_expected = totals.expected
    return plan


def _check_weight_bytes(plan, available, source):
    """Refuse an architecture whose weights could not be in the file, before allocating them."""
    import numpy as np

    need = 0
    for dtype, shape in plan.totals_expected.values():
        need += int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    if need > available:
        raise ModelFileError(f"{source}: the architecture needs {need:,} bytes of weights; {WEIGHTS} is "
                             f"{available:,} bytes, so it cannot hold them")


def load_keras(path, compile=True):
    """The model in a Keras 3 ``.keras`` file, with its weights."""
    require_h5py()
    source = os.fspath(path)
    members = read_members(path)
    config = _json(members[CONFIG], "config.json", source)
    plan = plan_keras_config(config, source)
    if METADATA in members:
        meta = _json(members[METADATA], "metadata.json", source)
        if not isinstance(meta, dict):
            raise ModelFileError(f"{source}: metadata.json must be a JSON object; got {type(meta).__name__}")
    _check_weight_bytes(plan, len(members[WEIGHTS]), source)
    saved_rng = random_mod.get_state()
    try:
        model = graph_io._build_model(plan)
    except (ValueError, TypeError, KeyError) as e:
        raise ModelFileError(f"{source}: the model could not be rebuilt: {e}") from None
    finally:
        random_mod.set_state(saved_rng)  # building drew initial weights; loading must not move the generator
    read_into(model, members[WEIGHTS], f"{source}: {WEIGHTS}")
    compile_config = config.get("compile_config") if isinstance(config, dict) else None
    if compile and compile_config is not None:
        _compile_from_config(model, compile_config, source)
    return model


def _compile_from_config(model, compile_config, source):
    """``model.compile`` with Keras's ``compile_config``, checked by convolab's schema first."""
    from . import _common, keras_compile, schema

    where = f"{source}: config.json.compile_config"
    try:
        comp = keras_compile.from_keras(compile_config, list(model.output_names), where)
        optimizer, args = _common.compile_objects(schema.compile_schema(comp, where), source)
        model.compile(optimizer=optimizer, **args)
    except (ValueError, TypeError) as e:  # ModelFileError included
        raise ModelFileError(f"{e}; load with compile=False to skip the compile settings"
                             if isinstance(e, ModelFileError) else
                             f"{where}: the compile settings are refused: {e}") from None


def load_weights_keras(model, path):
    """``model.load_weights('m.keras')``: the weights of a ``.keras`` file, as Keras allows."""
    require_h5py()
    members = read_members(path, need=(WEIGHTS,))
    read_into(model, members[WEIGHTS], f"{os.fspath(path)}: {WEIGHTS}")


__all__ = ["is_zip", "load_keras", "load_weights_keras", "read_members", "save_keras"]
