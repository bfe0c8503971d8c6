"""Keras 3's weights layout (``model.save_weights('m.weights.h5')``), read and written with h5py.

Layout (Keras 3 ``keras/src/saving/saving_lib.py``: ``_save_state``, ``_save_container_state``,
``H5IOStore``/``H5Entry``; ``Layer.save_own_variables``)::

    /vars                                   the model's own variables (none)
    /layers/<slot>/vars/<i>                 variable i of a layer, i = 0, 1, ...
    /layers/<slot>/layers/<slot>/vars/<i>   a layer of a nested model
    /optimizer/vars/<i>, ...                optimizer and metric state (ignored here)

``<slot>`` is not the layer's name: it is the snake-case class name (``conv2d``,
``batch_normalization``, ``sequential``, ``functional``) with ``_1``, ``_2``... for the second,
third... layer of that class in the same model, in ``model.layers`` order (a Sequential's
layers without its InputLayer; a functional model's with them). Variable ``i`` is the layer's
i-th variable: trainable ones first, in creation order (Conv2D/Dense: kernel, bias;
BatchNormalization: gamma, beta, moving_mean, moving_variance; SeparableConv2D:
depthwise_kernel, pointwise_kernel, bias); convolab's ``layer.params`` keeps that order.

Reading checks the whole file against the model before any weight changes: only hard links
(no soft or external links), only datasets with float dtypes and exactly the expected shapes
(so nothing larger than the model is ever read), no external or virtual storage, no compression
(HDF5 inflates a compressed chunk without bound; Keras never compresses weights), chunks about
the size of their data, member names that are text, and no layer group the model lacks. Whatever
h5py raises for a damaged file becomes ModelFileError; HDF5 reads the file as it goes (from an
open file, never a path: no file locks), so memory holds the weights and little more.
"""

from __future__ import annotations

import contextlib
import io
import os
import re

import numpy as np

from .container import MAX_FILE_BYTES
from .errors import ModelFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
INSTALL_HINT = 'reading and writing Keras files needs h5py: pip install "convolab[keras-files]"'


def require_h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return h5py


def is_hdf5(path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except (OSError, ValueError):  # the reader that follows names the problem
        return False


def snake_case(class_name: str) -> str:
    """Keras's ``naming.to_snake_case``: ``SeparableConv2D`` -> ``separable_conv2d``."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_class_name(layer) -> str:
    """The class Keras would save ``layer`` as (a functional ``Model`` is Keras's ``Functional``)."""
    from ..models.model import Model
    from ..models.sequential import Sequential

    if isinstance(layer, Model) and not isinstance(layer, Sequential):
        return "Functional"
    return type(layer).__name__


def _is_model(layer) -> bool:
    from ..models.model import Model

    return isinstance(layer, Model)


def keras_layer_order(model):
    """``model.layers`` in the order Keras 3 keeps them.

    A Sequential keeps the order of addition. A functional model orders its layers as Keras's
    ``map_graph`` does (``keras/src/ops/function.py``): by depth, inputs first (a node's depth is
    the longest path from it to an output, a layer's the largest of its nodes'), and within a
    depth by when a depth-first walk back from the outputs first meets the layer.
    """
    from ..models.sequential import Sequential

    if isinstance(model, Sequential) or model.graph() is None:
        return list(model.layers)
    _, inputs, outputs, _, _ = model.graph()
    first_seen, finished, post_order = {}, set(), []
    for out in outputs:
        if id(out.node) in finished:
            continue
        first_seen.setdefault(id(out.node.layer), len(first_seen))
        stack = [(out.node, iter(out.node.inputs))]
        while stack:
            node, rest = stack[-1]
            t = next(rest, None)
            if t is None:
                stack.pop()
                finished.add(id(node))
                post_order.append(node)
            elif id(t.node) not in finished and all(t.node is not n for n, _ in stack):
                first_seen.setdefault(id(t.node.layer), len(first_seen))
                stack.append((t.node, iter(t.node.inputs)))
    node_depth, layer_depth, layers = {}, {}, {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        layers[id(node.layer)] = node.layer
        for t in node.inputs:
            node_depth[id(t.node)] = max(depth + 1, node_depth.get(id(t.node), 0))
    for t in inputs:  # an input no output uses
        if id(t.node.layer) not in layer_depth:
            layer_depth[id(t.node.layer)], first_seen[id(t.node.layer)] = 0, -1
            layers[id(t.node.layer)] = t.node.layer
    keys = sorted(layers, key=lambda k: (-layer_depth[k], first_seen[k]))
    return [layers[k] for k in keys]


def layer_slots(model, prefix=""):
    """``[(group path, layer)]`` in Keras's order, nested models' layers after the model itself."""
    out, used = [], {}
    for layer in keras_layer_order(model):
        base = snake_case(keras_class_name(layer))
        n = used.get(base)
        used[base] = 0 if n is None else n + 1
        slot = base if n is None else f"{base}_{n + 1}"
        path = f"{prefix}layers/{slot}"
        out.append((path, layer))
        if _is_model(layer):
            out.extend(layer_slots(layer, path + "/"))
    return out


def _variables(layer):
    return [] if _is_model(layer) else list(layer.params.values())


# -- writing -------------------------------------------------------------------------
def weights_h5_bytes(model) -> bytes:
    """The ``.weights.h5`` file of ``model`` as bytes (also the ``model.weights.h5`` of a ``.keras``)."""
    h5py = require_h5py()
    if not getattr(model, "built", False):
        raise ValueError(f"save_weights: {model.describe()} is not built; call it on data or give it an input shape")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("vars")
        for path, layer in layer_slots(model):
            group = f.create_group(path).create_group("vars")
            for i, w in enumerate(_variables(layer)):
                group.create_dataset(str(i), data=np.asarray(w))
    return buf.getvalue()


def save_weights_h5(model, path):
    from .atomic import atomic_write_bytes

    atomic_write_bytes(path, weights_h5_bytes(model))


# -- reading -------------------------------------------------------------------------
#: what h5py raises for a damaged file: HDF5's own errors arrive as OSError, RuntimeError, KeyError or
#: ValueError, and a damaged header can make h5py itself fail with TypeError (a type NumPy lacks),
#: OverflowError or NotImplementedError
_DAMAGE = (OSError, RuntimeError, KeyError, ValueError, TypeError, OverflowError, NotImplementedError)
#: filters that never change a chunk's size (shuffle reorders bytes, fletcher32 appends a checksum); a
#: compressed chunk can inflate without bound (HDF5's deflate filter grows its buffer until the stream
#: ends: a 0.5 MB chunk inflated to 512 MiB in a test), and Keras never compresses weights
_SIZE_KEEPING_FILTERS = {2: "shuffle", 3: "fletcher32"}
#: a chunk may exceed its dataset by this much (a chunked dataset's last chunk is padded); HDF5
#: allocates a whole chunk to read any part of it
_CHUNK_SLACK_BYTES = 2**20


@contextlib.contextmanager
def _damage_refused(source):
    """Turn whatever h5py raises for a damaged file into ModelFileError naming ``source``."""
    try:
        yield
    except ModelFileError:
        raise
    except _DAMAGE as e:
        raise ModelFileError(f"{source}: a damaged HDF5 file ({type(e).__name__}: {e})") from None


def _child(h5py, group, name, kind, where, required=False):
    """``group[name]`` if it is a hard link to a ``kind`` (Group or Dataset); else refuse. A missing
    ``name`` gives None, or, if ``required`` (the group lists it), ModelFileError."""
    link = group.get(name, getlink=True)
    if link is None:
        if required:
            raise ModelFileError(f"{where}: {group.name} lists {name!r} but it cannot be opened (a damaged file)")
        return None
    if not isinstance(link, h5py.HardLink):
        raise ModelFileError(
            f"{where}: {group.name}/{name} is a {type(link).__name__}; expected a plain "
            "group or dataset (links to elsewhere are never followed)"
        )
    obj = group[name]
    if not isinstance(obj, kind):
        raise ModelFileError(f"{where}: {obj.name} is a {type(obj).__name__}; expected a {kind.__name__}")
    return obj


def _names(group, where):
    """The sorted member names of ``group``; h5py gives bytes for a name that is not UTF-8."""
    names = list(group)
    odd = [n for n in names if not isinstance(n, str)]
    if odd:
        raise ModelFileError(f"{where}: {group.name} holds member names that are not UTF-8 text: {odd[:4]}")
    return sorted(names)


def _check_dataset(ds, i, shape, where):
    """Refuse variable ``i`` unless it is a float array of ``shape`` kept in the file, read without inflating."""
    if ds.dtype.kind != "f":
        raise ModelFileError(f"{where}: variable {i} has dtype {ds.dtype}; expected a float dtype")
    if ds.shape is None:
        raise ModelFileError(
            f"{where}: variable {i} holds no array (an empty dataspace); expected shape {tuple(shape)}"
        )
    if tuple(ds.shape) != tuple(shape):
        raise ModelFileError(f"{where}: variable {i} has shape {tuple(ds.shape)}; expected {tuple(shape)}")
    if ds.external or ds.is_virtual:
        raise ModelFileError(f"{where}: variable {i} keeps its data outside the file; refused")
    dcpl = ds.id.get_create_plist()
    filters = [dcpl.get_filter(k) for k in range(dcpl.get_nfilters())]
    inflating = [
        f"{f[3].decode(errors='replace') or 'filter'} ({f[0]})" for f in filters if f[0] not in _SIZE_KEEPING_FILTERS
    ]
    if inflating:
        raise ModelFileError(
            f"{where}: variable {i} is stored compressed ({', '.join(inflating)}); convolab reads "
            "uncompressed weights only, as Keras writes them (rewrite the file with "
            "`h5repack -f NONE`)"
        )
    if ds.chunks is not None:
        chunk = int(np.prod(ds.chunks, dtype=object)) * ds.dtype.itemsize
        data = int(np.prod(shape, dtype=object)) * ds.dtype.itemsize
        if chunk > data + _CHUNK_SLACK_BYTES:
            raise ModelFileError(
                f"{where}: variable {i} is stored in chunks of {ds.chunks} ({chunk:,} bytes) for "
                f"{data:,} bytes of data; at most {_CHUNK_SLACK_BYTES:,} bytes more are allowed"
            )


def _read_layer(h5py, f, path, layer, source):
    want = [np.shape(w) for w in _variables(layer)]
    where = f"{source}: layer {layer.name!r} ({type(layer).__name__}, group /{path})"
    group = f
    for part in path.split("/"):
        group = _child(h5py, group, part, h5py.Group, source)
        if group is None:
            if want:
                raise ModelFileError(f"{where}: missing; the file has no group /{path} for its {len(want)} weights")
            return []
    allowed = {"vars", "layers"} if _is_model(layer) else {"vars"}
    extra = sorted(set(_names(group, where)) - allowed)
    if extra:
        raise ModelFileError(f"{where}: unexpected member(s) {extra}; expected only {sorted(allowed)}")
    vars_ = _child(h5py, group, "vars", h5py.Group, source)
    keys = _names(vars_, where) if vars_ is not None else []
    expected = [str(i) for i in range(len(want))]
    if keys != sorted(expected):
        raise ModelFileError(
            f"{where}: holds variables {keys}; expected {expected} (shapes {[tuple(s) for s in want]})"
        )
    datasets = []
    for i, shape in enumerate(want):
        ds = _child(h5py, vars_, str(i), h5py.Dataset, source, required=True)
        _check_dataset(ds, i, shape, where)
        datasets.append(ds)
    return datasets


def read_into(model, data, source):
    """Check ``data`` (a ``.weights.h5`` file: bytes or an open binary file) against ``model`` fully, then
    set its weights. Every failure is ModelFileError."""
    h5py = require_h5py()
    if not getattr(model, "built", False):
        raise ModelFileError(f"load_weights: {model.describe()} is not built; give it an input shape first")
    slots = layer_slots(model)
    fileobj = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    try:
        f = h5py.File(fileobj, "r")
    except _DAMAGE as e:
        raise ModelFileError(f"{source}: not a readable HDF5 file ({e})") from None
    with _damage_refused(source), f:
        arrays = _checked_arrays(h5py, f, slots, source, model)
    for layer, values in arrays:
        for w, v in zip(_variables(layer), values):
            w[...] = v


def _checked_arrays(h5py, f, slots, source, model):
    """``[(layer, [array])]`` from the open file ``f``, read only once the whole file fits ``model``."""
    if _child(h5py, f, "layers", h5py.Group, source) is None:
        hint = (
            " (this looks like a Keras 2 .h5 file; convolab reads Keras 3's .weights.h5 layout)"
            if "model_weights" in f or "layer_names" in f.attrs
            else ""
        )
        raise ModelFileError(f"{source}: no /layers group; expected Keras 3's .weights.h5 layout{hint}")
    root_vars = _child(h5py, f, "vars", h5py.Group, source)
    if root_vars is not None and len(root_vars):
        raise ModelFileError(
            f"{source}: /vars holds {len(root_vars)} variable(s); {model.describe()} has none of its own"
        )
    known = {p for p, _ in slots}
    _check_no_strangers(h5py, f["layers"], "layers", known, source, model)
    plan = [(layer, _read_layer(h5py, f, path, layer, source)) for path, layer in slots]
    return [(layer, [ds[()] for ds in dss]) for layer, dss in plan]


def _check_no_strangers(h5py, group, path, known, source, model):
    for name in _names(group, source):
        sub = f"{path}/{name}"
        if sub not in known:
            raise ModelFileError(
                f"{source}: group /{sub} names a layer {model.describe()} does not have; its "
                f"layers are stored as {sorted(known)[:12]}"
            )
        child = _child(h5py, group, name, h5py.Group, source, required=True)
        layers = _child(h5py, child, "layers", h5py.Group, source)
        if layers is not None:
            _check_no_strangers(h5py, layers, f"{sub}/layers", known, source, model)


def weights_member_cap(shapes) -> int:
    """The most bytes a ``.weights.h5`` for variables of ``shapes`` may take (never above MAX_FILE_BYTES).

    Besides the weights, a file Keras wrote holds the optimizer's state: at most five more arrays per
    weight (AMSGrad's three moments, an EMA copy, gradient accumulators); each element is counted at
    8 bytes (float64, the widest dtype read). HDF5's own structures (object headers, B-trees, heaps:
    about 2 KiB per group or dataset) get 1 MiB plus 64 KiB per weight.
    """
    elements = sum(int(np.prod(s, dtype=object)) for s in shapes)
    return min(MAX_FILE_BYTES, elements * 6 * 8 + 2**20 + 64 * 2**10 * len(shapes))


def open_capped(path, cap=MAX_FILE_BYTES):
    """``(open binary file, size)`` of ``path`` if it holds at most ``cap`` bytes; else ModelFileError."""
    source = os.fspath(path)
    try:
        f = open(source, "rb")  # noqa: SIM115 - handed to the caller, who closes it
    except FileNotFoundError:
        raise ModelFileError(f"{source}: no such file") from None
    except OSError as e:
        raise ModelFileError(f"{source}: cannot be read ({e})") from None
    size = os.fstat(f.fileno()).st_size
    if size > cap:
        f.close()
        raise ModelFileError(f"{source}: {size:,} bytes; at most {cap:,} are read")
    return f, size


def load_weights_h5(model, path):
    """``model.load_weights('m.weights.h5')``: HDF5 reads the file as it goes, never all of it at once."""
    require_h5py()
    f, _ = open_capped(path)
    with f:
        read_into(model, f, os.fspath(path))


#: the guards, for the other HDF5 reader (:mod:`.legacy_h5`)
damage_refused, child, member_names, check_dataset, DAMAGE = _damage_refused, _child, _names, _check_dataset, _DAMAGE

__all__ = [
    "DAMAGE",
    "INSTALL_HINT",
    "check_dataset",
    "child",
    "damage_refused",
    "member_names",
    "is_hdf5",
    "layer_slots",
    "load_weights_h5",
    "open_capped",
    "read_into",
    "require_h5py",
    "save_weights_h5",
    "snake_case",
    "weights_h5_bytes",
    "weights_member_cap",
]
