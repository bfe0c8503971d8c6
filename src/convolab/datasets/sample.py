"""The MNIST test set shipped inside the package, for use without any download.

The two files in ``convolab/data/mnist/`` are the original ``t10k-images-idx3-ubyte.gz`` and
``t10k-labels-idx1-ubyte.gz`` (Y. LeCun, C. Cortes, C. Burges; see ``convolab/data/README.md``).
"""

from __future__ import annotations

import gzip
from importlib import resources

from . import download as _dl
from . import idx as _idx
from . import mnist as _mnist

_IMAGES = "t10k-images-idx3-ubyte.gz"
_LABELS = "t10k-labels-idx1-ubyte.gz"


def _read_packaged(name):
    """Bytes of ``convolab/data/mnist/<name>``, checked against MNIST's published checksums."""
    # One joinpath per level: Traversable.joinpath takes a single argument before Python 3.11.
    resource = resources.files("convolab").joinpath("data").joinpath("mnist").joinpath(name)
    try:
        data = resource.read_bytes()
    except FileNotFoundError:
        raise _dl.DatasetUnavailableError(
            f"the bundled MNIST sample file convolab/data/mnist/{name} is missing from this "
            f"installation (was the package built without its data files?); reinstall convolab "
            f"or use convolab.datasets.mnist.load_data()",
            dataset="MNIST sample",
            missing=[name],
        ) from None
    spec = next(s for s in _mnist.SPECS if s.name == name)
    _dl.verify_bytes(data, spec, origin=f"bundled convolab/data/mnist/{name}")
    return gzip.decompress(data)


def load_sample():
    """Loads the bundled MNIST test set (10,000 digits): no network, no cache, no ``../shared``.

    Returns:
        ``(x, y)``: x uint8 images, y uint8 labels 0-9.

    Shape:
        x ``(10000, 28, 28)``, y ``(10000,)``.
    """
    x = _idx.parse_idx(bytearray(_read_packaged(_IMAGES)), origin=f"bundled {_IMAGES}")
    y = _idx.parse_idx(bytearray(_read_packaged(_LABELS)), origin=f"bundled {_LABELS}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"bundled MNIST sample: {x.shape[0]} images but {y.shape[0]} labels")
    return x, y
