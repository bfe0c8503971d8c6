"""``keras.models``: ``Model``, ``Sequential``, ``load_model``, ``clone_model`` and ``model_from_json``."""

from ..models import Model, Sequential, load_model  # noqa: F401
from ..models.cloning import clone_model  # noqa: F401
from ..models.model_config import model_from_json  # noqa: F401
