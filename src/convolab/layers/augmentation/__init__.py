"""Image augmentation layers: random transforms in training, the identity at inference
(RandomCrop resizes at inference, as in Keras)."""

from .base import AugmentationLayer
from .color import RandomBrightness, RandomContrast
from .crop import RandomCrop
from .flip import RandomFlip
from .rotation import RandomRotation
from .translation import RandomTranslation
from .zoom import RandomZoom

__all__ = [
    "AugmentationLayer",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
]
