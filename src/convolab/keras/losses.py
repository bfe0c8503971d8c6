"""``keras.losses``."""
from ..losses import CategoricalCrossentropy, Loss, MeanSquaredError, SparseCategoricalCrossentropy, get  # noqa: F401
from ..losses import categorical_crossentropy_fn as categorical_crossentropy  # noqa: F401
from ..losses import sparse_categorical_crossentropy_fn as sparse_categorical_crossentropy  # noqa: F401
