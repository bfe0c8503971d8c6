"""RandomRotation: rotate each image about its centre by a random fraction of a full turn."""

from __future__ import annotations

import math

from ...nn.affine import rotation_transforms
from ...utils.layer_schema import FILL, factor, layer_schema
from .base import factor_config, parse_factor
from .geometric import AffineAugmentation


class RandomRotation(AffineAugmentation):
    """Randomly rotate images during training (identity at inference).

    Args:
        factor: fraction of ``2 * pi``: ``f`` rotates by an angle drawn from
            ``[-f * 2pi, f * 2pi]``, ``(lower, upper)`` from ``[lower * 2pi, upper * 2pi]``;
            positive angles turn counter-clockwise.
        fill_mode, interpolation, seed, fill_value: see :class:`AffineAugmentation`.

    Shape: output = input. No weights.
    """

    config_schema = layer_schema({"factor": factor, **FILL})

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self._factor = parse_factor(factor, self.describe(), "factor")
        self.factor = factor_config(factor)

    def transforms(self, n, height, width, rng):
        angles = rng.uniform(self._factor[0], self._factor[1], n) * (2.0 * math.pi)
        return rotation_transforms(angles, height, width)

    def get_config(self):
        cfg = super().get_config()
        cfg["factor"] = self.factor
        return cfg
