"""``keras.callbacks``."""

from ..callbacks import *  # noqa: F401,F403
