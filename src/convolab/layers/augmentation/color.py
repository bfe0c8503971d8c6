"""RandomContrast and RandomBrightness: random per-image changes of the pixel values."""

from __future__ import annotations

from ...nn.color import brightness_backward, brightness_forward, contrast_backward, contrast_forward
from ...utils.layer_schema import factor, layer_schema, seed, value_range
from .base import AugmentationLayer, _is_number, factor_config, parse_factor


def _value_range(value, owner):
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(_is_number(v) for v in value)
        or not value[0] < value[1]
    ):
        raise ValueError(
            f"{owner}: `value_range` must be 2 numbers (low, high) with low < high; got value_range={value!r}"
        )
    return float(value[0]), float(value[1])


class RandomContrast(AugmentationLayer):
    """Randomly change each image's contrast during training (identity at inference).

    Each channel of each image becomes ``(x - mean) * c + mean`` (the mean over H and W), with
    ``c`` drawn per image, then is clipped to ``value_range``.

    Args:
        factor: ``f`` draws ``c`` from ``[1 - f, 1 + f]``; ``(lower, upper)`` from
            ``[1 - lower, 1 + upper]``; each in [0, 1].
        value_range: ``(low, high)`` of the pixel values, default ``(0, 255)``.
        seed: optional int (see :class:`AugmentationLayer`).

    Shape: output = input. No weights.
    """

    config_schema = layer_schema({"factor": factor, "value_range": value_range, "seed": seed})

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if _is_number(factor):
            lower = upper = float(factor)
        elif isinstance(factor, (tuple, list)) and len(factor) == 2 and all(_is_number(v) for v in factor):
            lower, upper = float(factor[0]), float(factor[1])
        else:
            raise ValueError(
                f"{self.describe()}: `factor` must be a number or a tuple of 2 numbers (lower, upper); "
                f"got factor={factor!r}"
            )
        if not (0.0 <= lower <= 1.0 and 0.0 <= upper <= 1.0):
            raise ValueError(
                f"{self.describe()}: `factor` must be in [0, 1] (the contrast is drawn from "
                f"[1 - lower, 1 + upper]); got factor={factor!r}"
            )
        self._range = (1.0 - lower, 1.0 + upper)
        self.factor = factor_config(factor)
        self.value_range = _value_range(value_range, self.describe())

    def augment(self, x, rng):
        c = rng.uniform(self._range[0], self._range[1], x.shape[0])
        return contrast_forward(x, c, self.value_range)

    def augment_backward(self, dy, cache):
        return contrast_backward(dy, cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(factor=self.factor, value_range=list(self.value_range))
        return cfg


class RandomBrightness(AugmentationLayer):
    """Randomly brighten or darken each image during training (identity at inference).

    ``x + d * (high - low)`` with ``d`` drawn per image, then clipped to ``value_range``.

    Args:
        factor: ``f`` draws ``d`` from ``[-f, f]``, ``(lower, upper)`` from that range; in [-1, 1].
        value_range: ``(low, high)`` of the pixel values, default ``(0, 255)``.
        seed: optional int (see :class:`AugmentationLayer`).

    Shape: output = input. No weights.
    """

    config_schema = layer_schema({"factor": factor, "value_range": value_range, "seed": seed})

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self._factor = parse_factor(factor, self.describe(), "factor", -1.0, 1.0)
        self.factor = factor_config(factor)
        self.value_range = _value_range(value_range, self.describe())

    def augment(self, x, rng):
        d = rng.uniform(self._factor[0], self._factor[1], x.shape[0]) * (self.value_range[1] - self.value_range[0])
        return brightness_forward(x, d, self.value_range)

    def augment_backward(self, dy, cache):
        return brightness_backward(dy, cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(factor=self.factor, value_range=list(self.value_range))
        return cfg
