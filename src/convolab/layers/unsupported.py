"""One place that refuses Keras arguments convolab accepts by name but does not implement."""

from __future__ import annotations

_DEFAULTS = {
    "data_format": (None, "channels_last"),
    "noise_shape": (None,),
}


def reject_unsupported(owner: str, **kwargs) -> None:
    """Raise ``ValueError`` for any argument not at the only value convolab supports."""
    for key, value in kwargs.items():
        allowed = _DEFAULTS.get(key, (None,))
        if not any(value == a for a in allowed):
            raise ValueError(f"{owner}: convolab supports only {key}={allowed[0]!r}; got {key}={value!r}")
