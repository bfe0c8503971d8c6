"""MNIST handwritten digits (Y. LeCun, C. Cortes, C. Burges), Keras's ``mnist.load_data()``.

    (x_train, y_train), (x_test, y_test) = convolab.datasets.mnist.load_data()

Reads the four original IDX files (``train-images-idx3-ubyte.gz`` ...): from ``data_dir`` if given,
else from the cache (``cache_dir``, ``$CONVOLAB_DATA_DIR``, ``~/.convolab/datasets``; folder
``mnist``), downloading missing files from the mirrors below. Every file is checked against the
published md5 and sha256.
"""

from __future__ import annotations

from . import download as _dl
from . import idx as _idx

NAME = "MNIST"
SUBDIR = "mnist"
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# md5 as published with the dataset; sha256 of the same bytes.
SPECS = [
    _dl.FileSpec(
        "train-images-idx3-ubyte.gz",
        {
            "md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "sha256": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        },
        9912422,
    ),
    _dl.FileSpec(
        "train-labels-idx1-ubyte.gz",
        {
            "md5": "d53e105ee54ea40749a09fcbcd1e9432",
            "sha256": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        },
        28881,
    ),
    _dl.FileSpec(
        "t10k-images-idx3-ubyte.gz",
        {
            "md5": "9fb629c4189551a2d022fa330f9573f3",
            "sha256": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        },
        1648877,
    ),
    _dl.FileSpec(
        "t10k-labels-idx1-ubyte.gz",
        {
            "md5": "ec29112dd5afa0611ce80d1b7f02629c",
            "sha256": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        4542,
    ),
]
# yann.lecun.com itself no longer serves the files reliably; these mirror them byte for byte.
MIRRORS = [
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
]


def load_data(path=None, *, data_dir=None, cache_dir=None, download=True):
    """Loads MNIST as uint8 NumPy arrays.

    Args:
        path: the dataset's folder inside the cache (default ``"mnist"``; absolute: used as is).
            Keras's ``"mnist.npz"`` (any ``*.npz``) is accepted and means the default folder:
            convolab caches the original IDX files, not Keras's repackaged archive.
        data_dir: a folder holding the four original ``.gz`` files; read only, never downloaded into.
        cache_dir: the cache root (overrides ``$CONVOLAB_DATA_DIR`` and ``~/.convolab/datasets``).
        download: whether missing files may be downloaded.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``.

    Shape:
        x_train ``(60000, 28, 28)``, y_train ``(60000,)``, x_test ``(10000, 28, 28)``,
        y_test ``(10000,)``; all uint8, labels 0-9.

    Raises:
        DatasetUnavailableError: files missing and not downloadable (the message says where to
            put them).
        TypeError, ValueError: bad arguments.
    """
    path, data_dir, cache_dir = _dl.check_load_args("mnist.load_data", path, data_dir, cache_dir, download)
    if path is not None and path.suffix == ".npz":
        path = None
    paths = _dl.fetch(
        NAME, SPECS, MIRRORS, subdir=path or SUBDIR, data_dir=data_dir, cache_dir=cache_dir, download=download
    )
    return _idx.load_train_test(paths, FILES)
