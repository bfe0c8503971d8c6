"""Layers with Keras's names, arguments and defaults (NHWC, channels last)."""
from .activation import Activation, ReLU, Softmax
from .base import Layer
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .input_layer import InputLayer
from .keras_tensor import Input, KerasTensor
from .merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add, concatenate, multiply
from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D

Convolution2D = Conv2D

__all__ = [
    "Activation", "Add", "Average", "AveragePooling2D", "AvgPool2D", "Concatenate", "Conv2D", "Convolution2D",
    "Dense", "Dropout", "Flatten", "Input", "InputLayer", "KerasTensor", "Layer", "MaxPool2D", "MaxPooling2D",
    "Maximum", "Minimum", "Multiply", "ReLU", "Softmax", "Subtract", "add", "concatenate", "multiply",
]
