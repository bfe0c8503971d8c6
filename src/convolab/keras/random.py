"""``keras.random``: ``SeedGenerator``, ``normal``, ``uniform``, ``truncated_normal``, ``randint``,
``shuffle``, ``dropout``; ``seed`` is ``None`` (convolab's global generator, see
``keras.utils.set_random_seed``), an int, or a ``SeedGenerator``."""

from ..random import SeedGenerator, dropout, normal, randint, shuffle, truncated_normal, uniform  # noqa: F401

__all__ = ["SeedGenerator", "dropout", "normal", "randint", "shuffle", "truncated_normal", "uniform"]
