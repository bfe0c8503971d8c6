"""Forward, backward and loss over a list of layers: the math of one training step.

Functions, not methods, so the serial path (Sequential) and the threaded shards
(parallel.ShardRunner, each with its own layer replicas) run the very same code.
"""
from __future__ import annotations

from ..ops.activations import softmax


def fused_softmax(model) -> bool:
    """True when the last layer's softmax and the cross-entropy loss are computed as one op.

    The fused form takes the gradient ``softmax(z) - onehot`` straight from the logits ``z``:
    stable where ``log(softmax(z))`` would underflow, and what Keras's TensorFlow backend does.
    """
    last = model.layers[-1]
    return (model.loss is not None and model.loss.fuses_softmax
            and getattr(last, "activation", None) == "softmax" and hasattr(last, "call_logits"))


def forward(layers, x, training, logits=False):
    """Run ``x`` through ``layers``; with ``logits`` the last layer skips its softmax."""
    for layer in layers[:-1]:
        x = layer.call(x, training=training)
    last = layers[-1]
    return last.call_logits(x, training=training) if logits else last.call(x, training=training)


def backward(layers, dout, stop, logits=False):
    """Backpropagate ``dout`` from the last layer down to layer ``stop`` (the first with weights)."""
    last = len(layers) - 1
    d = dout
    for i in range(last, stop - 1, -1):
        layer = layers[i]
        d = layer.backward_logits(d) if (i == last and logits) else layer.backward(d)


def metric_output(out, fused):
    """What metrics see: probabilities, also when training ran on fused logits."""
    return softmax(out) if fused else out


def loss_and_grad(layers, loss, x, y, training, fused):
    """``(output, mean loss, d loss / d output)``; output and gradient are logits when ``fused``."""
    out = forward(layers, x, training=training, logits=fused)
    if fused:
        value, dout = loss.compute_from_logits(out, y)
    else:
        value, dout = loss.compute(out, y)
    return out, value, dout
