"""RandomTranslation: shift each image by a random fraction of its height and width."""

from __future__ import annotations

from ...nn.affine import translation_transforms
from ...utils.layer_schema import FILL, factor, layer_schema
from .base import factor_config, parse_factor
from .geometric import AffineAugmentation


class RandomTranslation(AffineAugmentation):
    """Randomly translate images during training (identity at inference).

    Args:
        height_factor: fraction of the height: ``f`` shifts by up to ``f * H`` up or down,
            ``(lower, upper)`` by a fraction drawn from that range (positive = down); in [-1, 1].
        width_factor: the same for the width (positive = right).
        fill_mode, interpolation, seed, fill_value: see :class:`AffineAugmentation`.

    Shape: output = input. No weights.
    """

    config_schema = layer_schema({"height_factor": factor, "width_factor": factor, **FILL})

    def __init__(
        self,
        height_factor,
        width_factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self._h = parse_factor(height_factor, self.describe(), "height_factor", -1.0, 1.0)
        self._w = parse_factor(width_factor, self.describe(), "width_factor", -1.0, 1.0)
        self.height_factor, self.width_factor = factor_config(height_factor), factor_config(width_factor)

    def transforms(self, n, height, width, rng):
        dy = rng.uniform(self._h[0], self._h[1], n) * height
        dx = rng.uniform(self._w[0], self._w[1], n) * width
        return translation_transforms(dy, dx)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(height_factor=self.height_factor, width_factor=self.width_factor)
        return cfg
