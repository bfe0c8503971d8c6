"""Pure forward/backward functions: the math of convolab, with no layer state.

Every function takes and returns arrays (NHWC for images) and, for a forward
function, a ``cache`` holding only what its backward needs.

Named ``nn`` as ``jax.nn`` and ``torch.nn.functional`` are: plain functions on arrays. This is
not ``keras.ops`` (``convolab.keras.ops``, the NumPy-like functions a ``GradientTape`` records);
until 0.2 this package was ``convolab.ops``, a name that read as if it were.
"""

from .activations import activation_backward, activation_forward, relu_backward, relu_forward, softmax
from .batchnorm import (
    batch_moments,
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_inference_backward,
    batchnorm_inference_forward,
    batchnorm_scale_shift,
)
from .conv import conv2d_backward, conv2d_forward
from .dense import dense_backward, dense_forward
from .depthwise_conv import depthwise_conv2d_backward, depthwise_conv2d_forward
from .dropout import dropout_backward, dropout_forward
from .global_pool import (
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
)
from .im2col import col2im, im2col
from .losses import (
    binary_crossentropy,
    categorical_crossentropy,
    mean_absolute_error,
    mean_squared_error,
    sigmoid_binary_crossentropy_with_logits,
    softmax_crossentropy_with_logits,
    sparse_categorical_crossentropy,
)
from .separable_conv import separable_conv2d_backward, separable_conv2d_forward
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from .reshape import rescale_backward, rescale_forward, reshape_backward, reshape_forward, resolve_target_shape

__all__ = [
    "activation_backward",
    "activation_forward",
    "avg_pool_backward",
    "avg_pool_forward",
    "batch_moments",
    "batchnorm_backward",
    "batchnorm_forward",
    "batchnorm_inference_backward",
    "batchnorm_inference_forward",
    "batchnorm_scale_shift",
    "binary_crossentropy",
    "categorical_crossentropy",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "dense_backward",
    "dense_forward",
    "depthwise_conv2d_backward",
    "depthwise_conv2d_forward",
    "dropout_backward",
    "dropout_forward",
    "global_avg_pool_backward",
    "global_avg_pool_forward",
    "global_max_pool_backward",
    "global_max_pool_forward",
    "im2col",
    "max_pool_backward",
    "max_pool_forward",
    "mean_absolute_error",
    "mean_squared_error",
    "relu_backward",
    "relu_forward",
    "rescale_backward",
    "rescale_forward",
    "reshape_backward",
    "reshape_forward",
    "resolve_target_shape",
    "separable_conv2d_backward",
    "separable_conv2d_forward",
    "sigmoid_binary_crossentropy_with_logits",
    "softmax",
    "softmax_crossentropy_with_logits",
    "sparse_categorical_crossentropy",
]
