"""Layers with Keras's names, arguments and defaults (NHWC, channels last)."""

from .activation import Activation, ReLU, Softmax
from .advanced_activations import ELU, LeakyReLU, PReLU
from .augmentation import (
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from .base import Layer
from .conv import Conv2D
from .conv1d import Conv1D, Convolution1D
from .conv_transpose import Conv2DTranspose, Convolution2DTranspose
from .dense import Dense
from .depthwise_conv import DepthwiseConv2D
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten
from .global_pooling import GlobalAveragePooling2D, GlobalAvgPool2D, GlobalMaxPool2D, GlobalMaxPooling2D
from .input_layer import Input, InputLayer
from .keras_tensor import KerasTensor
from .lambda_layer import Lambda
from .merge_functions import Dot, average, dot, maximum, minimum, subtract
from .normalization import BatchNormalization
from .merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add, concatenate, multiply
from .padding import Cropping2D, ZeroPadding2D
from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D
from .pooling1d import (
    AveragePooling1D,
    AvgPool1D,
    GlobalAveragePooling1D,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    GlobalMaxPooling1D,
    MaxPool1D,
    MaxPooling1D,
)
from .reshaping import Rescaling, Reshape
from .resizing import Resizing
from .separable_conv import SeparableConv2D
from .upsampling import UpSampling2D

Convolution2D = Conv2D
SeparableConvolution2D = SeparableConv2D

__all__ = [
    "Activation",
    "Add",
    "Average",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Convolution2D",
    "Cropping2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Embedding",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalAvgPool2D",
    "GlobalMaxPool2D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Layer",
    "MaxPool2D",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "Multiply",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "ReLU",
    "Rescaling",
    "Reshape",
    "SeparableConv2D",
    "SeparableConvolution2D",
    "Softmax",
    "Subtract",
    "UpSampling2D",
    "ZeroPadding2D",
    "add",
    "concatenate",
    "multiply",
    # issue 19: the Keras surface programs reach for
    "AveragePooling1D",
    "AvgPool1D",
    "Conv1D",
    "Conv2DTranspose",
    "Convolution1D",
    "Convolution2DTranspose",
    "Dot",
    "ELU",
    "GlobalAveragePooling1D",
    "GlobalAvgPool1D",
    "GlobalMaxPool1D",
    "GlobalMaxPooling1D",
    "Lambda",
    "LeakyReLU",
    "MaxPool1D",
    "MaxPooling1D",
    "PReLU",
    "Resizing",
    "average",
    "dot",
    "maximum",
    "minimum",
    "subtract",
]
