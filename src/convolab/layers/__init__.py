"""Layers with Keras's names, arguments and defaults (NHWC, channels last)."""
from .activation import Activation, ReLU, Softmax
from .base import Layer
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .input_layer import Input, InputLayer
from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D

Convolution2D = Conv2D

__all__ = [
    "Activation", "AveragePooling2D", "AvgPool2D", "Conv2D", "Convolution2D", "Dense", "Dropout",
    "Flatten", "Input", "InputLayer", "Layer", "MaxPool2D", "MaxPooling2D", "ReLU", "Softmax",
]
