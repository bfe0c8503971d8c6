"""Keras 3's ``.keras`` files: a zip of ``metadata.json``, ``config.json`` and ``model.weights.h5``.

Writing (:func:`save_keras`): the architecture as Keras's JSON (:mod:`.keras_config`) with, for a
compiled model, Keras's ``compile_config`` (:mod:`.keras_compile`), the weights in Keras's H5 layout
(:mod:`.keras_h5`), ``metadata.json`` with a Keras version; the zip is written atomically. The
optimizer's state (its moments and step count) is not written: Keras starts it afresh on load.

Reading (:func:`load_keras`) never extracts anything by name and never runs code: the file's size
is capped, the zip may hold only those three names (anything else, ``../`` included, is
refused), members must be stored or deflated and not encrypted, each member's declared size is
checked against its cap before it is read, and the read itself stops at the cap. The JSON is
parsed strictly, converted to convolab's architecture and checked by convolab's schema and
planner (shapes, references, cycles, size caps) before anything is built. The weights member's
cap comes from that architecture (its weights, room for Keras's optimizer state and HDF5's
structures: :func:`.keras_h5.weights_member_cap`), and it is inflated in 1 MiB pieces into an
anonymous temporary file that HDF5 reads from, so a small file cannot make the loader inflate
gigabytes into memory; the weights are checked against the built model before any is set.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tempfile
import zipfile
import zlib

from .. import random as random_mod
from . import graph_io, graph_schema
from .container import MAX_DOCUMENT_BYTES, MAX_FILE_BYTES, strict_json_loads
from .errors import ModelFileError
from .keras_config import from_keras, to_keras, unique_layer_names
from .keras_h5 import open_capped, read_into, require_h5py, weights_h5_bytes, weights_member_cap

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

    require_h5py()
    config = keras_architecture(model, ".keras file")
    compile_config = keras_compile_config(model) if getattr(model, "compiled", False) else None
    if compile_config is not None:
        config["compile_config"] = compile_config
    metadata = {
        "keras_version": KERAS_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "written_by": "convolab",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(METADATA, json.dumps(metadata))
        zf.writestr(CONFIG, json.dumps(config, allow_nan=False))
        zf.writestr(WEIGHTS, weights_h5_bytes(model))
    atomic_write_bytes(path, buf.getvalue())


def keras_architecture(model, kind):
    """Keras's serialized form of ``model`` (``config.json``; a legacy ``.h5``'s ``model_config``), the
    layers of each Sequential given distinct names as Keras requires (with a warning naming them)."""
    entry = _KerasDescriber("save_model").model_entry(model)
    config = to_keras(entry, model)
    renamed = unique_layer_names(config)
    if renamed:
        import warnings

        warnings.warn(
            f"save_model: Keras requires distinct layer names within a model, so the {kind} renames "
            + ", ".join(f"layer {old!r} of {m!r} to {new!r}" for m, old, new in renamed)
            + " (the model itself keeps its names)",
            UserWarning,
            stacklevel=6,
        )
    return config


class _KerasDescriber(graph_io._Describer):
    """The architecture for a ``.keras`` file. The layers of a Sequential may share a name here: convolab
    builds such a model and its own files keep a Sequential's layers by position, but Keras refuses it
    (``Sequential.add``), so the file gets distinct names (:func:`.keras_config.unique_layer_names`). A
    functional model's config refers to its layers by name, so there they stay refused. A user's layer is
    written as Keras writes it (module, class, ``registered_name``, ``get_config``); loading it needs the
    class registered (``keras.saving.register_keras_serializable``) or passed in ``custom_objects``."""

    allow_custom = True

    def _unique_names(self, model, layers):
        from ..models.sequential import Sequential

        if type(model) is not Sequential:
            super()._unique_names(model, layers)


def keras_compile_config(model):
    """Keras's ``compile_config`` of a compiled ``model``, checked by convolab's schema first; None
    when the model's loss has no name a file can hold (a lambda: :func:`._common.compile_config`)."""
    from . import _common, keras_compile, schema

    comp = _common.compile_config(model)
    if comp is None:
        return None
    comp = _common.plain(comp)
    try:
        schema.compile_schema(comp, "compile")  # never write what convolab would refuse to read
    except ModelFileError as e:
        raise ValueError(f"save_model: cannot save the compile settings of {model.describe()}: {e}") from None
    if model.optimizer.iterations:
        import warnings

        warnings.warn(
            "save_model: a Keras file (.keras, legacy .h5) written by convolab holds the compile settings but not the "
            "optimizer's state (moments, step count), which restarts on load; save to a .convolab file "
            "to resume training exactly",
            UserWarning,
            stacklevel=5,
        )
    return keras_compile.to_keras(comp)


#: what zipfile raises for a damaged archive or member, besides BadZipFile: a bad deflate stream
#: (zlib.error), a member method it lacks (NotImplementedError), an encrypted one (RuntimeError),
#: offsets past the end (OSError, EOFError, ValueError)
_ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError)
_COPY_BYTES = 2**20


class _KerasZip:
    """An open ``.keras`` file: its names checked, each member read on demand under a cap."""

    def __init__(self, path, need=(CONFIG, WEIGHTS)):
        self.source = os.fspath(path)
        self.file, _ = open_capped(path)
        try:
            self.zf = zipfile.ZipFile(self.file)
        except _ZIP_DAMAGE as e:
            self.file.close()
            raise ModelFileError(f"{self.source}: not a readable zip file ({e})") from None
        try:
            self._check_names(need)
        except ModelFileError:
            self.close()
            raise

    def _check_names(self, need):
        infos = self.zf.infolist()
        names = [i.filename for i in infos]
        strange = sorted(set(names) - set(_CAPS))
        if strange or len(set(names)) != len(names):
            raise ModelFileError(
                f"{self.source}: the zip holds {names[:12]}; a .keras file of convolab's layers "
                f"holds only {sorted(_CAPS)}, each once (unexpected: {strange[:12]})"
            )
        missing = [n for n in need if n not in names]
        if missing:
            raise ModelFileError(f"{self.source}: the zip lacks {missing}; it holds {names}")
        self.infos = {i.filename: i for i in infos}

    def close(self):
        self.zf.close()
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def copy(self, name, out, cap):
        """Inflate member ``name`` into the binary file ``out``, refusing it once past ``cap`` bytes."""
        info = self.infos[name]
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{self.source}: {name} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"{self.source}: {name} uses compression method {info.compress_type}; "
                "expected stored (0) or deflated (8)"
            )
        if info.file_size > cap:
            raise ModelFileError(f"{self.source}: {name} is {info.file_size:,} bytes; at most {cap:,}{self.why(name)}")
        written = 0
        try:
            with self.zf.open(info) as f:
                while chunk := f.read(min(_COPY_BYTES, cap + 1 - written)):
                    written += len(chunk)
                    if written > cap:
                        raise ModelFileError(f"{self.source}: {name} inflates past {cap:,} bytes{self.why(name)}")
                    out.write(chunk)
        except _ZIP_DAMAGE as e:
            raise ModelFileError(f"{self.source}: {name} cannot be read ({e})") from None
        return written

    def why(self, name):
        return " (what the model's weights and Keras's optimizer state can take)" if name == WEIGHTS else ""

    def read(self, name):
        """The bytes of a small member (config.json, metadata.json), under its cap."""
        buf = io.BytesIO()
        self.copy(name, buf, _CAPS[name])
        return buf.getvalue()

    def weights_file(self, shapes):
        """model.weights.h5 inflated into an anonymous temporary file (gone once closed), its size capped by
        what variables of ``shapes`` need (:func:`.keras_h5.weights_member_cap`); returns ``(file, size)``."""
        out = tempfile.TemporaryFile(prefix="convolab-keras-")  # noqa: SIM115 - handed to the caller
        try:
            size = self.copy(WEIGHTS, out, min(_CAPS[WEIGHTS], weights_member_cap(shapes)))
            out.seek(0)
        except BaseException:
            out.close()
            raise
        return out, size


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
        cfg = (graph_schema.sequential_config if kind == "Sequential" else graph_schema.functional_config)(
            cfg, where, 0
        )
        totals = graph_io._Totals()
        plan = graph_io._plan_model(kind, cfg, "", True, where, totals)
    except RecursionError:
        raise ModelFileError(f"{source}: the model is nested too deeply") from None
    plan.totals_expected = totals.expected
    return plan


def _expected_shapes(plan):
    return [shape for _, shape in plan.totals_expected.values()]


def _check_weight_bytes(plan, available, source):
    """Refuse an architecture whose weights could not be in the file, before allocating them."""
    import numpy as np

    need = 0
    for dtype, shape in plan.totals_expected.values():
        need += int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    if need > available:
        raise ModelFileError(
            f"{source}: the architecture needs {need:,} bytes of weights; {WEIGHTS} is "
            f"{available:,} bytes, so it cannot hold them"
        )


def load_keras(path, compile=True):
    """The model in a Keras 3 ``.keras`` file, with its weights.

    The architecture is read and checked first; the weights member is then inflated into a temporary
    file, stopping once past what that architecture's weights (and Keras's optimizer state) can take,
    and HDF5 reads the arrays from there, so memory holds the model and little more.
    """
    require_h5py()
    source = os.fspath(path)
    with _KerasZip(path) as kz:
        config = _json(kz.read(CONFIG), "config.json", source)
        plan = plan_keras_config(config, source)
        if METADATA in kz.infos:
            meta = _json(kz.read(METADATA), "metadata.json", source)
            if not isinstance(meta, dict):
                raise ModelFileError(f"{source}: metadata.json must be a JSON object; got {type(meta).__name__}")
        weights, size = kz.weights_file(_expected_shapes(plan))
    with weights:
        _check_weight_bytes(plan, size, source)
        saved_rng = random_mod.get_state()
        try:
            model = graph_io._build_model(plan)
        except (ValueError, TypeError, KeyError) as e:
            raise ModelFileError(f"{source}: the model could not be rebuilt: {e}") from None
        finally:
            random_mod.set_state(saved_rng)  # building drew initial weights; loading must not move the generator
        read_into(model, weights, f"{source}: {WEIGHTS}")
    compile_config = config.get("compile_config") if isinstance(config, dict) else None
    if compile and compile_config is not None:
        compile_from_keras_config(model, compile_config, source)
    return model


def compile_from_keras_config(model, compile_config, source):
    """``model.compile`` with Keras's ``compile_config``, checked by convolab's schema first."""
    from . import _common, keras_compile, schema

    where = f"{source}: config.json.compile_config"
    try:
        comp = keras_compile.from_keras(compile_config, list(model.output_names), where)
        optimizer, args, missing = _common.compile_objects(schema.compile_schema(comp, where), source)
        _common.compile_or_warn(model, optimizer, args, missing, True, source)
    except (ValueError, TypeError) as e:  # ModelFileError included
        raise ModelFileError(
            f"{e}; load with compile=False to skip the compile settings"
            if isinstance(e, ModelFileError)
            else f"{where}: the compile settings are refused: {e}"
        ) from None


def load_weights_keras(model, path):
    """``model.load_weights('m.keras')``: the weights of a ``.keras`` file, as Keras allows."""
    require_h5py()
    if not getattr(model, "built", False):
        raise ModelFileError(f"load_weights: {model.describe()} is not built; give it an input shape first")
    with _KerasZip(path, need=(WEIGHTS,)) as kz:
        weights, _ = kz.weights_file([w.shape for w in model.weights])
    with weights:
        read_into(model, weights, f"{os.fspath(path)}: {WEIGHTS}")


__all__ = [
    "compile_from_keras_config",
    "is_zip",
    "keras_architecture",
    "keras_compile_config",
    "load_keras",
    "load_weights_keras",
    "plan_keras_config",
    "save_keras",
]
