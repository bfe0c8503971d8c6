"""Saving, loading and export that can be trusted.

* :func:`save_model` / :func:`load_model`: one safetensors file holding the architecture and
  compile settings (JSON metadata), the weights and, optionally, the training state
  (optimizer state, ``iterations``, random-generator state) for a bitwise-exact resume.
* :func:`save_weights` / :func:`load_weights`: the weights alone.
* Keras 3's own files for the layers convolab has: ``*.weights.h5`` (:mod:`.keras_h5`) and the
  ``.keras`` zip (:mod:`.keras_zip`, :mod:`.keras_config`) and Keras's legacy ``.h5`` model file
  (:mod:`.legacy_h5`); h5py is a dependency. User layers registered in :mod:`.object_registry`
  (``keras.saving.register_keras_serializable``) may be named by those files.
* :func:`export_model`: ONNX for inference elsewhere (needs the ``onnx`` extra).

Loading runs no code from the file and checks everything before allocating; every failure
is a :class:`ModelFileError`. The format is described in :mod:`convolab.saving.model_io`, the
front door; the helpers the formats share are in :mod:`convolab.saving._common`.

Importing this package registers these functions with :mod:`convolab.models.persistence`, which
``Model.save`` and friends call: the models sit below the saving package and do not import it.
"""

from ..models import persistence
from .errors import ModelFileError
from .model_io import DEFAULT_SUFFIX, MODEL_SUFFIXES, load_model, load_weights, save_model, save_weights
from .onnx_export import export_model

persistence.register(
    save_model=save_model, save_weights=save_weights, load_weights=load_weights, export_model=export_model
)

__all__ = [
    "DEFAULT_SUFFIX",
    "MODEL_SUFFIXES",
    "ModelFileError",
    "export_model",
    "load_model",
    "load_weights",
    "save_model",
    "save_weights",
]
