"""What RandomTranslation, RandomRotation and RandomZoom share: an affine resampling per image."""

from __future__ import annotations

from ...nn.affine import FILL_MODES, INTERPOLATIONS, affine_transform_backward, affine_transform_forward
from .base import AugmentationLayer, _is_number


class AffineAugmentation(AugmentationLayer):
    """Base of the geometric augmentations; subclasses implement ``transforms(n, h, w, rng)``.

    Args:
        fill_mode: 'reflect' (default), 'wrap', 'constant' or 'nearest': how points outside
            the image are filled (see :mod:`convolab.nn.affine`).
        interpolation: 'bilinear' (default) or 'nearest'.
        fill_value: the value outside the image with ``fill_mode='constant'``.
    """

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        me = self.describe()
        if fill_mode not in FILL_MODES:
            raise ValueError(
                f"{me}: `fill_mode` must be one of {', '.join(map(repr, FILL_MODES))}; got fill_mode={fill_mode!r}"
            )
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"{me}: `interpolation` must be one of {', '.join(map(repr, INTERPOLATIONS))}; "
                f"got interpolation={interpolation!r}"
            )
        if not _is_number(fill_value):
            raise ValueError(f"{me}: `fill_value` must be a finite number; got fill_value={fill_value!r}")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, float(fill_value)

    def transforms(self, n, height, width, rng):
        raise NotImplementedError

    def augment(self, x, rng):
        n, h, w, _ = x.shape
        return affine_transform_forward(
            x, self.transforms(n, h, w, rng), self.interpolation, self.fill_mode, self.fill_value
        )

    def augment_backward(self, dy, cache):
        return affine_transform_backward(dy, cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(fill_mode=self.fill_mode, interpolation=self.interpolation, fill_value=self.fill_value)
        return cfg
