"""The safetensors container: writing it, and reading it without trusting a byte of it.

Layout (the safetensors format, https://github.com/huggingface/safetensors)::

    8 bytes   N, the header length, unsigned little-endian
    N bytes   JSON header: {"__metadata__": {str: str}, "<tensor name>": {"dtype": "F32",
              "shape": [...], "data_offsets": [begin, end]}, ...}
    rest      the tensors' bytes, little-endian, C order; offsets are relative to here

convolab adds one metadata key of its own, ``"convolab.crc32"``: a JSON object giving each
tensor's CRC-32 (``zlib.crc32`` of its bytes as stored, 8 hex digits), so a flipped bit in the
weights is refused instead of loaded (a file is not signed by it: whoever can edit the
weights can edit the sums). Files written before the checksums existed have no such key and
load unchecked. Readers of the metadata (:attr:`ContainerReader.metadata`) never see the key.
The file is written here rather than by ``safetensors.numpy.save``, whose metadata map comes
out in a different order in each process: with the metadata keys sorted, saving the same
model twice gives the same bytes. The layout is otherwise exactly what ``save`` writes.

Reading is done in two steps so nothing is allocated for a tensor before its size is known
to be right: :func:`read_header` checks the length prefix against caps and the file size,
parses the JSON strictly and checks every dtype, shape and offset (the tensors must tile the
data section exactly); the caller then compares the tensors with what the architecture
needs; only then :meth:`ContainerReader.read_tensors` reads the data through
``safetensors.numpy``.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import zlib

import numpy as np

from .atomic import atomic_write_bytes
from ..utils.config_schema import short_repr
from .errors import ModelFileError

#: the largest header accepted (the JSON with the architecture is a few kB; safetensors caps at 100 MB)
MAX_HEADER_BYTES = 16 * 2**20
#: the largest file accepted, 2 GiB: far above any model a NumPy toolkit trains
MAX_FILE_BYTES = 2 * 2**30
#: the largest JSON document inside the metadata
MAX_DOCUMENT_BYTES = 4 * 2**20
MAX_TENSORS = 100_000
MAX_RANK = 8

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
DTYPE_CODES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64"}

#: every format load_model / load_weights reads, for messages about a file that is none of them
ACCEPTED_FORMATS = (
    "convolab reads .convolab / .safetensors files written by convolab, Keras 3 .keras "
    "files (a zip of config.json, metadata.json and model.weights.h5) and Keras .weights.h5 files"
)

_MAGIC_HINTS = (
    (
        b"PK\x05\x06",
        "an empty zip archive, not a Keras 3 .keras file (those hold config.json, metadata.json and model.weights.h5)",
    ),
    (b"PK\x03\x04", "a zip archive (a Keras 3 .keras file or a PyTorch checkpoint?)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 file?)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
)


def _hint(first: bytes) -> str:
    for magic, what in _MAGIC_HINTS:
        if first.startswith(magic):
            return f"; it looks like {what}, which convolab does not read"
    if first[:1] == b"\x80" and first[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "; it looks like a Python pickle, which convolab never loads (unpickling runs code)"
    return ""


# -- strict JSON ---------------------------------------------------------------
def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name):
    raise ValueError(f"{name} is not valid JSON")


def strict_json_loads(text: str, what: str, source: str):
    """Parse JSON, refusing duplicate keys, NaN/Infinity and absurd nesting.

    Raises:
        ModelFileError: naming ``source`` (the file) and ``what`` (which part of it).
    """
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except RecursionError:
        raise ModelFileError(f"{source}: the {what} is nested too deeply to be a convolab file") from None
    except ValueError as e:
        raise ModelFileError(f"{source}: the {what} is not valid JSON ({e})") from None


# -- writing -------------------------------------------------------------------
def _safetensors_numpy():
    try:
        import safetensors.numpy as st
    except ImportError:
        raise ImportError(
            "convolab saves and loads models with the `safetensors` package (a dependency of "
            "convolab): pip install safetensors"
        ) from None
    return st


#: the metadata key holding each tensor's CRC-32 (see the module docstring)
CHECKSUM_KEY = "convolab.crc32"
_CRC = re.compile(r"[0-9a-f]{8}")


def _crc32(data) -> str:
    return format(zlib.crc32(data), "08x")


def encode_container(tensors: dict, metadata: dict) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` and string ``metadata``, plus the checksums.

    Args:
        tensors: name -> float32/float64 array (any byte order and layout).
        metadata: str -> str; must not use :data:`CHECKSUM_KEY`.

    Returns:
        the file: ``safetensors.numpy.save``'s layout (tensors by falling dtype size, then name;
        the header padded with spaces to a multiple of 8 bytes), the metadata keys sorted.
    """
    if CHECKSUM_KEY in metadata:
        raise ValueError(f"metadata key {CHECKSUM_KEY!r} is reserved for the container's checksums")
    arrays = []
    for name, value in tensors.items():
        arr = np.asarray(value)
        code = DTYPE_CODES.get(arr.dtype.newbyteorder("="))
        if code is None:
            raise TypeError(f"cannot save tensor {name!r} of dtype {arr.dtype}; convolab saves float32/float64")
        arrays.append((name, code, np.ascontiguousarray(arr, dtype=DTYPES[code])))
    arrays.sort(key=lambda a: (-DTYPES[a[1]].itemsize, a[0]))
    header, blobs, offset = {}, [], 0
    for name, code, arr in arrays:
        data = arr.reshape(-1).view(np.uint8)
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + data.size]}
        blobs.append(data)
        offset += data.size
    sums = {name: _crc32(data) for (name, _, _), data in zip(arrays, blobs)}
    meta = dict(metadata, **{CHECKSUM_KEY: json.dumps(sums, sort_keys=True, separators=(",", ":"))})
    header = {"__metadata__": dict(sorted(meta.items())), **header}
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors pads it
    return b"".join([len(text).to_bytes(8, "little"), text, *blobs])


def write_container(path, tensors: dict, metadata: dict) -> None:
    """Write ``tensors`` (name -> float32/float64 array) and string ``metadata`` atomically,
    with each tensor's checksum (:func:`encode_container`)."""
    atomic_write_bytes(path, encode_container(tensors, metadata))


# -- reading -------------------------------------------------------------------
class TensorInfo:
    """One header entry, checked: ``dtype`` (NumPy), ``shape`` (tuple), ``begin``/``end`` offsets."""

    __slots__ = ("name", "dtype", "shape", "begin", "end")

    def __init__(self, name, dtype, shape, begin, end):
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_entry(name, entry, source) -> TensorInfo:
    where = f"{source}: tensor {short_repr(name)}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ModelFileError(
            f"{where}: a header entry must have exactly dtype, shape and data_offsets; got {short_repr(entry)}"
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ModelFileError(f"{where}: dtype must be one of {', '.join(DTYPES)}; got {short_repr(dtype)}")
    if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(_is_int(d) and 0 <= d < 2**40 for d in shape):
        raise ModelFileError(
            f"{where}: shape must be a list of at most {MAX_RANK} non-negative ints; got {short_repr(shape)}"
        )
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) and o >= 0 for o in offsets):
        raise ModelFileError(f"{where}: data_offsets must be two non-negative ints; got {short_repr(offsets)}")
    begin, end = offsets
    nbytes = math.prod(shape) * DTYPES[dtype].itemsize
    if end < begin or end - begin != nbytes:
        raise ModelFileError(
            f"{where}: data_offsets {offsets} span {end - begin} bytes; shape {shape} of {dtype} needs {nbytes}"
        )
    return TensorInfo(name, DTYPES[dtype], tuple(shape), begin, end)


class ContainerReader:
    """An open container whose header has been read and checked (use as a context manager).

    Attributes:
        metadata: the ``__metadata__`` dict (str -> str), without the container's :data:`CHECKSUM_KEY`.
        tensors: name -> :class:`TensorInfo`, every entry checked against the file size.
    """

    def __init__(self, path):
        self.source = f"model file {os.fspath(path)!r}"
        try:
            mode = os.stat(path).st_mode
            # A FIFO or device would block or never end: only regular files are read.
            self._f = open(path, "rb") if stat.S_ISREG(mode) else None
        except (OSError, ValueError) as e:  # ValueError: a NUL byte in the name
            raise ModelFileError(f"cannot open {self.source}: {getattr(e, 'strerror', None) or e}") from None
        if self._f is None:
            raise ModelFileError(f"cannot open {self.source}: not a regular file")
        try:
            self._read_header()
        except BaseException:
            self._f.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._f.close()

    def _read_exact(self, n: int) -> bytes:
        try:
            data = self._f.read(n)
        except OSError as e:
            raise ModelFileError(f"{self.source}: read failed: {e.strerror or e}") from None
        if len(data) != n:
            raise ModelFileError(f"{self.source} is truncated (changed while being read?)")
        return data

    def _read_header(self):
        src = self.source
        try:
            size = os.fstat(self._f.fileno()).st_size
        except OSError as e:
            raise ModelFileError(f"{src}: cannot stat: {e.strerror or e}") from None
        if size > MAX_FILE_BYTES:
            raise ModelFileError(f"{src} is {size:,} bytes; convolab reads files up to {MAX_FILE_BYTES:,} bytes")
        if size < 8:
            raise ModelFileError(f"{src} is {size} bytes long: too short to be a convolab file (truncated?)")
        prefix = self._read_exact(8)
        n = int.from_bytes(prefix, "little")
        hint = _hint(prefix)
        if prefix.startswith(b"PK\x05\x06"):
            raise ModelFileError(
                f"{src} is an empty zip archive (it holds no files), not a model file; {ACCEPTED_FORMATS}"
            )
        if n > MAX_HEADER_BYTES:
            raise ModelFileError(
                f"{src} is not a convolab file: its header length field says {n:,} bytes "
                f"(at most {MAX_HEADER_BYTES:,} allowed){hint}"
            )
        if n > size - 8:
            raise ModelFileError(
                f"{src} is truncated or not a convolab file: its header needs {n:,} bytes but only "
                f"{size - 8:,} follow{hint}"
            )
        if n < 2:
            raise ModelFileError(f"{src} is not a convolab file: header length {n}{hint}")
        raw = self._read_exact(n)
        if raw[:1] != b"{":
            raise ModelFileError(f"{src} is not a convolab file: the header is not a JSON object{hint or _hint(raw)}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(f"{src}: the header is not valid UTF-8 (corrupted?)") from None
        header = strict_json_loads(text, "header", src)
        if not isinstance(header, dict):
            raise ModelFileError(f"{src}: the header must be a JSON object")
        meta = header.pop("__metadata__", None)
        if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
            raise ModelFileError(
                f"{src} is not a convolab file: its safetensors header has no __metadata__ of strings "
                "(convolab writes its architecture there; a plain safetensors file cannot be loaded)"
            )
        sums = meta.pop(CHECKSUM_KEY, None)  # the container's own key: callers see only theirs
        if len(header) > MAX_TENSORS:
            raise ModelFileError(f"{src}: {len(header):,} tensors; at most {MAX_TENSORS:,} allowed")
        tensors = {name: _check_entry(name, entry, src) for name, entry in header.items()}
        data_len = size - 8 - n
        pos = 0
        for t in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
            if t.begin != pos:
                raise ModelFileError(
                    f"{src}: tensor {short_repr(t.name)} starts at byte {t.begin} of the data; expected {pos} "
                    "(tensors must tile the data section without gaps or overlaps)"
                )
            pos = t.end
        if pos != data_len:
            raise ModelFileError(
                f"{src}: the tensors cover {pos:,} bytes of data but the file holds {data_len:,} "
                "(truncated, padded or corrupted)"
            )
        self._checksums = None if sums is None else self._checked_sums(sums)
        self._header_bytes = prefix + raw
        self._size = size
        self.metadata = meta
        self.tensors = tensors

    def _checked_sums(self, text):
        # Only the form here: which tensors it lists is compared when they are read, after the
        # caller has compared the tensors with the architecture (whose messages say more).
        sums = strict_json_loads(text, f"checksum table ({CHECKSUM_KEY})", self.source)
        if not isinstance(sums, dict) or not all(isinstance(v, str) and _CRC.fullmatch(v) for v in sums.values()):
            raise ModelFileError(
                f"{self.source}: its checksum table ({CHECKSUM_KEY}) must map tensor names to "
                f"8 hex digits; got {short_repr(sums)} (corrupted?)"
            )
        return sums

    def _verify(self, blob):
        """Refuse the first tensor (in file order) whose bytes differ from its checksum."""
        if self._checksums is None:  # written before convolab stored checksums: nothing to check
            return
        if set(self._checksums) != set(self.tensors):
            raise ModelFileError(
                f"{self.source}: its checksum table ({CHECKSUM_KEY}) lists {short_repr(sorted(self._checksums))}; "
                f"the tensors are {short_repr(sorted(self.tensors))} (corrupted?)"
            )
        base = len(self._header_bytes)
        with memoryview(blob) as view:
            for t in sorted(self.tensors.values(), key=lambda t: t.begin):
                got, want = _crc32(view[base + t.begin : base + t.end]), self._checksums[t.name]
                if got != want:
                    raise ModelFileError(
                        f"{self.source}: tensor {short_repr(t.name)} fails its checksum (CRC-32 of its bytes is "
                        f"{got}; the file's header says {want}): the file is corrupted"
                    )

    def read_tensors(self) -> dict:
        """Read every tensor (call only once the header has been checked against the architecture).

        Returns:
            name -> writable NumPy array of the header's dtype and shape.
        """
        st = _safetensors_numpy()
        try:
            self._f.seek(0)
        except OSError as e:
            raise ModelFileError(f"{self.source}: seek failed: {e.strerror or e}") from None
        blob = self._read_exact(self._size)
        try:
            grew = self._f.read(1)
        except OSError as e:
            raise ModelFileError(f"{self.source}: read failed: {e.strerror or e}") from None
        if grew:
            raise ModelFileError(f"{self.source} grew while being read")
        # The bytes about to be decoded must be the header that was checked.
        if blob[: len(self._header_bytes)] != self._header_bytes:
            raise ModelFileError(f"{self.source} changed while being read")
        self._verify(blob)
        try:
            loaded = st.load(blob)
        except Exception as e:  # safetensors raises its own error types; all mean a bad file
            raise ModelFileError(f"{self.source}: safetensors could not decode it: {e}") from None
        del blob
        if set(loaded) != set(self.tensors):
            raise ModelFileError(f"{self.source}: safetensors decoded tensors the header does not list")
        out = {}
        for name, info in self.tensors.items():
            arr = loaded.pop(name)
            if arr.dtype != info.dtype or arr.shape != info.shape:
                raise ModelFileError(f"{self.source}: tensor {short_repr(name)} decoded differently from its header")
            # An owned, aligned, native-order copy: optimizer state is updated in place later.
            out[name] = np.array(arr, dtype=info.dtype.newbyteorder("="), copy=True)
        return out
