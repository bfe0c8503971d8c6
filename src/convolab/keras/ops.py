"""``keras.ops``: NumPy-like functions, recorded on the tape inside a training step."""
from ..autodiff.functions import *  # noqa: F401,F403
from ..autodiff.functions import __all__  # noqa: F401
