"""The one error a model file can cause: :class:`ModelFileError`.

It is defined in :mod:`convolab.utils.config_schema`, below the layers, so that layers can
declare their file schemas without importing the saving package.
"""

from __future__ import annotations

from ..utils.config_schema import ModelFileError

__all__ = ["ModelFileError"]
