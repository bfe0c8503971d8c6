"""Which schema checks a whole convolab document: the version, then the model or weights layout.

A Sequential model's document has its schema in :mod:`.schema`; a functional model's architecture,
and the weights of any model other than a plain stack, have theirs in :mod:`.graph_schema`, which
builds on the first. This module sits above both, so neither has to know the other.
"""

from __future__ import annotations

from .container import short_repr
from .errors import ModelFileError
from .graph_schema import graph_document, variables_document
from .schema import FORMAT_VERSION, _fail, _is_int, model_document, weights_document


def check_document(doc, source):
    """Validate a parsed document (a model or weights file); returns it with checked values."""
    if not isinstance(doc, dict):
        raise ModelFileError(f"{source}: the convolab metadata must be a JSON object")
    version = doc.get("format_version")
    if not _is_int(version) or version < 1:
        raise ModelFileError(f"{source}: format_version must be a positive int; got {short_repr(version)}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source} has format version {version}; this convolab reads up to version {FORMAT_VERSION}: "
            "upgrade convolab"
        )
    kind = doc.get("kind")
    schema = model_document if kind == "model" else weights_document if kind == "weights" else None
    model = doc.get("model")
    if kind == "model" and isinstance(model, dict) and model.get("class_name") == "Functional":
        schema = graph_document
    elif kind == "weights" and "variables" in doc:
        schema = variables_document
    if schema is None:
        _fail(f"{source}: kind", "'model' or 'weights'", kind)
    return schema(doc, source)
