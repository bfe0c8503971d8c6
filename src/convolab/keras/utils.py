"""``keras.utils``: ``to_categorical``, ``set_random_seed``, ``PyDataset`` (``Sequence``)."""
from ..random import set_random_seed  # noqa: F401
from ..utils.numpy_utils import to_categorical  # noqa: F401
from ..utils.py_dataset import PyDataset, Sequence  # noqa: F401
