"""``keras.utils``: ``to_categorical``, ``set_random_seed``, ``PyDataset`` (``Sequence``),
``image_dataset_from_directory`` and the single-image helpers ``load_img``, ``img_to_array``,
``array_to_img``, ``save_img``."""

from ..random import set_random_seed  # noqa: F401
from ..utils.image_dataset import image_dataset_from_directory  # noqa: F401
from ..utils.image_utils import array_to_img, img_to_array, load_img, save_img  # noqa: F401
from ..utils.numpy_utils import to_categorical  # noqa: F401
from ..utils.py_dataset import PyDataset, Sequence  # noqa: F401
