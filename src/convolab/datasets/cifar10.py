"""CIFAR-10 (A. Krizhevsky, 2009), Keras's ``cifar10.load_data()``.

    (x_train, y_train), (x_test, y_test) = convolab.datasets.cifar10.load_data()

Reads, in this order of preference, from ``data_dir`` if given, else from the cache (folder
``cifar-10``): an extracted ``cifar-10-batches-py`` or ``cifar-10-batches-bin`` folder (or a
folder holding the batch files themselves), ``cifar-10-python.tar.gz``, ``cifar-10-binary.tar.gz``.
Tarballs are checked against the published md5 and read without extracting; if none is found,
``cifar-10-python.tar.gz`` is downloaded. The python batches are unpickled with an allow-list that
admits only NumPy arrays (see ``cifar_format``).

Labels: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog, 7 horse, 8 ship, 9 truck.
"""

from __future__ import annotations

from . import cifar_format as _fmt
from . import download as _dl

NAME = "CIFAR-10"
SUBDIR = "cifar-10"
# md5 as published on https://www.cs.toronto.edu/~kriz/cifar.html; the python tarball's sha256
# is the one Keras pins for the same file.
PYTHON_SPEC = _dl.FileSpec(
    "cifar-10-python.tar.gz",
    {
        "md5": "c58f30108f718f92721af3b95e74349a",
        "sha256": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    },
)
BINARY_SPEC = _dl.FileSpec("cifar-10-binary.tar.gz", {"md5": "c32a1d4ab5d03f1284b67883e8d87530"})
MIRRORS = [
    "https://www.cs.toronto.edu/~kriz/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
]
LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_data(path=None, *, data_dir=None, cache_dir=None, download=True):
    """Loads CIFAR-10 as uint8 NumPy arrays, images channels-last (NHWC).

    Args:
        path: the dataset's folder inside the cache (default ``"cifar-10"``; absolute: as is).
        data_dir: a folder holding a tarball or an extracted batches folder; read only.
        cache_dir: the cache root (overrides ``$CONVOLAB_DATA_DIR`` and ``~/.convolab/datasets``).
        download: whether ``cifar-10-python.tar.gz`` may be downloaded when nothing is found.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``.

    Shape:
        x_train ``(50000, 32, 32, 3)``, y_train ``(50000, 1)``, x_test ``(10000, 32, 32, 3)``,
        y_test ``(10000, 1)``; all uint8, labels 0-9 (see ``LABELS``). Labels are 2-D, as Keras
        returns them.

    Raises:
        DatasetUnavailableError: nothing found and not downloadable (the message says where to
            put the files).
        ChecksumError: a tarball that is not the published file.
        UnsafePickleError: a python batch that refers to anything but NumPy arrays.
        TypeError, ValueError: bad arguments or malformed files.
    """
    path, data_dir, cache_dir = _dl.check_load_args("cifar10.load_data", path, data_dir, cache_dir, download)
    subdir = path or SUBDIR
    folders = [data_dir] if data_dir is not None else _dl.dataset_dirs(subdir, cache_dir)

    for folder in folders:
        found, fmt = _fmt.find_extracted(folder)
        if found is not None:
            return _fmt.load_folder(found, fmt)

    binary, bad_binary = _dl.find_verified(BINARY_SPEC, folders)
    python, _ = _dl.find_verified(PYTHON_SPEC, folders)
    if python is not None:
        return _fmt.load_tar(python, "python")
    if binary is not None:
        return _fmt.load_tar(binary, "binary")

    hint = f"Also accepted there: {BINARY_SPEC.name}, or the extracted {_fmt.PY_FOLDER}/ or {_fmt.BIN_FOLDER}/ folder."
    for bad_path, err in bad_binary:
        hint += f"\n{bad_path} was found but failed verification: {err}"
    paths = _dl.fetch(
        NAME,
        [PYTHON_SPEC],
        MIRRORS,
        subdir=subdir,
        data_dir=data_dir,
        cache_dir=cache_dir,
        download=download,
        hint=hint,
    )
    return _fmt.load_tar(paths[PYTHON_SPEC.name], "python")
