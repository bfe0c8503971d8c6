"""RandomZoom: zoom each image in or out about its centre by a random amount."""

from __future__ import annotations

from ...nn.affine import zoom_transforms
from ...utils.config_schema import nullable
from ...utils.layer_schema import FILL, factor, layer_schema
from .base import factor_config, parse_factor
from .geometric import AffineAugmentation


class RandomZoom(AffineAugmentation):
    """Randomly zoom images during training (identity at inference).

    Args:
        height_factor: ``f`` zooms the height by ``1 + u`` with ``u`` drawn from ``[-f, f]``,
            ``(lower, upper)`` from that range; positive = zoom out (more of the image shows),
            negative = zoom in. Bounds in [-1, inf).
        width_factor: the same for the width; ``None`` (default) keeps the aspect ratio
            (the width uses the height's draw).
        fill_mode, interpolation, seed, fill_value: see :class:`AffineAugmentation`.

    Shape: output = input. No weights.
    """

    config_schema = layer_schema({"height_factor": factor, "width_factor": nullable(factor), **FILL})

    def __init__(
        self,
        height_factor,
        width_factor=None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self._h = parse_factor(height_factor, self.describe(), "height_factor", -1.0)
        self._w = None if width_factor is None else parse_factor(width_factor, self.describe(), "width_factor", -1.0)
        self.height_factor = factor_config(height_factor)
        self.width_factor = None if width_factor is None else factor_config(width_factor)

    def transforms(self, n, height, width, rng):
        zh = 1.0 + rng.uniform(self._h[0], self._h[1], n)
        zw = zh if self._w is None else 1.0 + rng.uniform(self._w[0], self._w[1], n)
        return zoom_transforms(zh, zw, height, width)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(height_factor=self.height_factor, width_factor=self.width_factor)
        return cfg
