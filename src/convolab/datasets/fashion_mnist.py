"""Fashion-MNIST (H. Xiao, K. Rasul, R. Vollgraf; Zalando Research, MIT licence),
Keras's ``fashion_mnist.load_data()``.

    (x_train, y_train), (x_test, y_test) = convolab.datasets.fashion_mnist.load_data()

Same IDX files and layout as MNIST. Read from ``data_dir`` if given, else from the cache (folder
``fashion-mnist``), downloading missing files from the mirrors below; every file is checked against
the md5 published in the dataset's README (github.com/zalandoresearch/fashion-mnist).

Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker,
8 Bag, 9 Ankle boot.
"""

from __future__ import annotations

from . import download as _dl
from . import idx as _idx

NAME = "Fashion-MNIST"
SUBDIR = "fashion-mnist"
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# md5 from the "Get the Data" table of zalandoresearch/fashion-mnist's README.
SPECS = [
    _dl.FileSpec("train-images-idx3-ubyte.gz", {"md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d"}),
    _dl.FileSpec("train-labels-idx1-ubyte.gz", {"md5": "25c81989df183df01b3e8a0aad5dffbe"}),
    _dl.FileSpec("t10k-images-idx3-ubyte.gz", {"md5": "bef4ecab320f06d8554ea6380940ec79"}),
    _dl.FileSpec("t10k-labels-idx1-ubyte.gz", {"md5": "bb300cfdad3c16e7a12a480ee83cd310"}),
]
MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # the authors' own
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",  # Keras's copy
]
LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def load_data(path=None, *, data_dir=None, cache_dir=None, download=True):
    """Loads Fashion-MNIST as uint8 NumPy arrays.

    Args:
        path: the dataset's folder inside the cache (default ``"fashion-mnist"``; absolute: as is).
        data_dir: a folder holding the four original ``.gz`` files; read only, never downloaded into.
        cache_dir: the cache root (overrides ``$CONVOLAB_DATA_DIR`` and ``~/.convolab/datasets``).
        download: whether missing files may be downloaded.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``.

    Shape:
        x_train ``(60000, 28, 28)``, y_train ``(60000,)``, x_test ``(10000, 28, 28)``,
        y_test ``(10000,)``; all uint8, labels 0-9 (see ``LABELS``).

    Raises:
        DatasetUnavailableError: files missing and not downloadable (the message says where to
            put them).
        TypeError, ValueError: bad arguments.
    """
    path, data_dir, cache_dir = _dl.check_load_args("fashion_mnist.load_data", path, data_dir, cache_dir, download)
    paths = _dl.fetch(
        NAME, SPECS, MIRRORS, subdir=path or SUBDIR, data_dir=data_dir, cache_dir=cache_dir, download=download
    )
    return _idx.load_train_test(paths, FILES)
