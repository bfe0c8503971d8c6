"""Readers for the two official CIFAR-10 distributions (https://www.cs.toronto.edu/~kriz/cifar.html).

* python version (``cifar-10-python.tar.gz`` -> ``cifar-10-batches-py/data_batch_1`` ...): each
  batch is a Python 2 pickle of a dict ``{b'data': uint8 ndarray (N, 3072), b'labels': [int] * N,
  b'batch_label': ..., b'filenames': ...}``. Unpickling can run arbitrary code, so the batches are
  read with ``RestrictedUnpickler``, which can build only NumPy arrays and refuses every other
  global before anything is called.
* binary version (``cifar-10-binary.tar.gz`` -> ``cifar-10-batches-bin/data_batch_1.bin`` ...):
  records of 1 label byte + 3072 pixel bytes.

In both, a row of 3072 bytes is channel-major: 1024 red, then 1024 green, then 1024 blue values,
each a 32x32 image in row-major order. The readers return NHWC.

Tarballs are read member by member in one pass, never extracted, so a crafted archive cannot
write outside any folder.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

SIDE = 32
PIXELS = 3 * SIDE * SIDE  # 3072
RECORD = 1 + PIXELS  # 3073 bytes per image in the binary version
NUM_CLASSES = 10

PY_FOLDER = "cifar-10-batches-py"
PY_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
PY_TEST = "test_batch"
BIN_FOLDER = "cifar-10-batches-bin"
BIN_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
BIN_TEST = "test_batch.bin"


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for a global (function or class) that is not on the allow-list."""


# ndarray.__reduce__ names numpy.core.multiarray._reconstruct (numpy 1.x, which wrote the
# original batches) or numpy._core.multiarray._reconstruct (numpy 2.x). Take the function from an
# array rather than importing either module path: numpy.core is deprecated in numpy 2.
_RECONSTRUCT = np.empty(0, dtype=np.uint8).__reduce__()[0]
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals NumPy arrays need and refuses all others.

    Plain data (dict, list, tuple, str, bytes, int, float, bool, None) needs no globals. A
    pickle's only way to call code is through a global it first looks up here, so refusing the
    lookup stops ``os.system``, ``builtins.eval``, ``subprocess.Popen`` ... before any call.
    """

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle global {module}.{name}: CIFAR-10 batches hold only "
                f"dicts, lists, bytes and NumPy arrays"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError("refusing to unpickle a persistent id")


def restricted_loads(data):
    """Unpickles ``data`` (bytes) with RestrictedUnpickler; Python 2 ``str`` comes back as bytes."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _to_nhwc(rows):
    """``(N, 3072)`` channel-major rows -> contiguous ``(N, 32, 32, 3)``."""
    return np.ascontiguousarray(rows.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1))


def _check_labels(labels, origin):
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"{origin}: labels must be 0-{NUM_CLASSES - 1}; found {labels.min()}..{labels.max()}")
    return labels.astype(np.uint8)


def parse_python_batch(data, origin="CIFAR-10 batch"):
    """Parses one batch of the python version without running any code from it.

    Args:
        data: the batch file's bytes (a Python 2 pickle, protocol 2).
        origin: names the batch in error messages.

    Returns:
        ``(x, y)``: x uint8 ``(N, 32, 32, 3)`` (NHWC), y uint8 ``(N,)``.

    Raises:
        UnsafePickleError: the pickle refers to anything but NumPy's array reconstructors.
        ValueError: not a CIFAR-10 batch.
    """
    try:
        obj = restricted_loads(data)
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{origin}: {err}") from None
    except Exception as err:  # a malformed pickle can raise almost anything; none of it is ours
        raise ValueError(f"{origin}: not a readable CIFAR-10 batch ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{origin}: expected a pickled dict; got {type(obj).__name__}")
    batch = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{origin}: expected keys 'data' and 'labels'; got {sorted(map(str, batch))}")
    rows = batch["data"]
    if not isinstance(rows, np.ndarray) or rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != PIXELS:
        desc = f"{rows.dtype} {rows.shape}" if isinstance(rows, np.ndarray) else type(rows).__name__
        raise ValueError(f"{origin}: 'data' must be a uint8 array of shape (N, {PIXELS}); got {desc}")
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{origin}: 'labels' must be a list of integers ({err})") from None
    if labels.shape != (rows.shape[0],):
        raise ValueError(f"{origin}: {rows.shape[0]} images but labels of shape {labels.shape}")
    return _to_nhwc(rows), _check_labels(labels, origin)


def parse_binary_batch(data, origin="CIFAR-10 binary batch"):
    """Parses one ``*.bin`` batch of the binary version: records of 1 label + 3072 pixel bytes.

    Returns:
        ``(x, y)``: x uint8 ``(N, 32, 32, 3)`` (NHWC), y uint8 ``(N,)``.

    Shape:
        ``N = len(data) / 3073``, which must be a whole number.
    """
    if len(data) % RECORD:
        raise ValueError(
            f"{origin}: {len(data)} bytes is not a whole number of {RECORD}-byte "
            f"records (1 label byte + {PIXELS} pixel bytes)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    return _to_nhwc(records[:, 1:]), _check_labels(records[:, 0], origin)


def _member_name(name):
    while name.startswith("./"):
        name = name[2:]
    return name


def read_tar_members(tar_path, folder, names):
    """Reads ``folder/name`` for each name from a .tar.gz in a single pass, without extracting.

    Returns:
        ``{name: bytes}``.

    Raises:
        ValueError: the archive is unreadable or lacks some of the files.
    """
    wanted = {f"{folder}/{n}": n for n in names}
    found = {}
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            for member in tar:
                key = wanted.get(_member_name(member.name))
                if key is not None and member.isfile():
                    found[key] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ValueError(f"{tar_path}: not a readable tar archive ({err})") from err
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"{tar_path}: archive lacks {', '.join(f'{folder}/{n}' for n in missing)}")
    return found


def read_folder_files(folder, names):
    """Reads each named file of an extracted batches folder; ValueError names any missing."""
    folder = Path(folder)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ValueError(
            f"{folder}: missing {', '.join(missing)} (an extracted CIFAR-10 folder holds {', '.join(names)})"
        )
    return {n: (folder / n).read_bytes() for n in names}


def assemble(batches, train_names, test_name, parse):
    """Parses and concatenates the batches into Keras's CIFAR-10 tuples.

    Returns:
        ``(x_train, y_train), (x_test, y_test)`` with labels shaped ``(N, 1)`` as in Keras.
    """
    train = [parse(batches[n], origin=n) for n in train_names]
    x_test, y_test = parse(batches[test_name], origin=test_name)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train.reshape(-1, 1)), (x_test, y_test.reshape(-1, 1))


FORMATS = {
    # name: (folder inside the tarball, train batches, test batch, parser)
    "python": (PY_FOLDER, PY_TRAIN, PY_TEST, parse_python_batch),
    "binary": (BIN_FOLDER, BIN_TRAIN, BIN_TEST, parse_binary_batch),
}


def load_tar(tar_path, fmt):
    """Loads CIFAR-10 from ``cifar-10-python.tar.gz`` (fmt ``"python"``) or
    ``cifar-10-binary.tar.gz`` (fmt ``"binary"``)."""
    folder, train, test, parse = FORMATS[fmt]
    batches = read_tar_members(tar_path, folder, train + (test,))
    return assemble(batches, train, test, parse)


def load_folder(folder, fmt):
    """Loads CIFAR-10 from an extracted ``cifar-10-batches-py`` / ``cifar-10-batches-bin`` folder."""
    _, train, test, parse = FORMATS[fmt]
    batches = read_folder_files(folder, train + (test,))
    return assemble(batches, train, test, parse)


def find_extracted(folder):
    """Looks for an extracted distribution in or at ``folder``.

    Returns:
        ``(path, fmt)`` for the first of ``folder/cifar-10-batches-py``,
        ``folder/cifar-10-batches-bin``, or ``folder`` itself when it holds the batch files;
        ``(None, None)`` when there is none.
    """
    folder = Path(folder)
    for fmt, (sub, _, _, _) in FORMATS.items():
        if (folder / sub).is_dir():
            return folder / sub, fmt
    for fmt, (_, train, _, _) in FORMATS.items():
        if (folder / train[0]).is_file():
            return folder, fmt
    return None, None
