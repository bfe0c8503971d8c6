"""RandomFlip: flip each image left-right and/or upside down with probability 1/2."""

from __future__ import annotations

from ...nn.flip import flip_backward, flip_forward
from ...utils.config_schema import string
from ...utils.layer_schema import layer_schema, seed
from .base import AugmentationLayer

MODES = ("horizontal", "vertical", "horizontal_and_vertical")


class RandomFlip(AugmentationLayer):
    """Randomly flip images during training (identity at inference).

    Args:
        mode: ``'horizontal'`` (left-right), ``'vertical'`` (upside down) or
            ``'horizontal_and_vertical'`` (each, independently), the default.
        seed: optional int (see :class:`AugmentationLayer`).

    Shape: output = input. No weights.
    """

    config_schema = layer_schema(
        {"mode": string(32, {"horizontal", "vertical", "horizontal_and_vertical"}), "seed": seed}
    )

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in MODES:
            raise ValueError(
                f"{self.describe()}: `mode` must be one of {', '.join(map(repr, MODES))}; got mode={mode!r}"
            )
        self.mode = mode

    def augment(self, x, rng):
        u = rng.random((x.shape[0], 2))
        flip_w = (u[:, 0] < 0.5) & (self.mode != "vertical")
        flip_h = (u[:, 1] < 0.5) & (self.mode != "horizontal")
        return flip_forward(x, flip_h, flip_w)

    def augment_backward(self, dy, cache):
        return flip_backward(dy, cache)

    def get_config(self):
        cfg = super().get_config()
        cfg["mode"] = self.mode
        return cfg
