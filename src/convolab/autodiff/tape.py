"""GradientTape: record the ops of a forward pass, then replay their backwards in reverse.

    with GradientTape() as tape:
        loss = model(x, training=True) ...      # ops record Nodes on the tensors they make
    grads = tape.gradient(loss, model.trainable_weights)

Each op keeps its hand-written backward (the lesson's im2col convolution, the pooling and
loss functions of :mod:`convolab.nn`); the tape only decides the order. Recording happens
only inside a ``GradientTape`` block and only for ops with an input that needs a gradient
(a :class:`~convolab.autodiff.tensor.Variable`, a watched tensor, or a recorded one); outside
one, the same functions return plain NumPy arrays.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .tensor import Node, Tensor, as_source, unwrap

_recording: list = []  # the GradientTapes now recording, innermost last


def is_recording() -> bool:
    """True inside a ``GradientTape`` block (ops on tensors are recorded)."""
    return bool(_recording) and _recording[-1]._active


def record(value, parents, backward, name="op"):
    """Return ``value`` as a recorded :class:`Tensor` made from ``parents``, or as is.

    ``backward(g)`` returns one gradient (or ``None``) per parent. Nothing is recorded when
    no tape is recording or no parent needs a gradient: then ``value`` comes back unchanged.
    """
    if not is_recording() or not any(isinstance(p, Tensor) and p.requires_grad for p in parents):
        return value
    return Tensor(value, Node(tuple(parents), backward, name))


def _topological(target):
    """Every recorded tensor ``target`` depends on, inputs before outputs (iterative DFS)."""
    order, seen = [], set()
    stack = [(target, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t.node is not None:
            for p in t.node.parents:
                if isinstance(p, Tensor) and id(p) not in seen:
                    stack.append((p, False))
    return order


def backpropagate(target, seed=None):
    """Gradients of ``sum(target * seed)`` for every tensor it depends on: ``{id(tensor): array}``."""
    if not isinstance(target, Tensor):
        raise TypeError(
            f"GradientTape.gradient: the target must be a tensor computed under the tape; "
            f"got {type(target).__name__} (was it computed outside the `with GradientTape()` block?)"
        )
    xp = get_array_module(target.value)
    grads = {id(target): xp.ones_like(target.value) if seed is None else xp.asarray(unwrap(seed))}
    for t in reversed(_topological(target)):
        g = grads.get(id(t))
        if g is None or t.node is None:
            continue
        pgrads = t.node.backward(g)
        if len(pgrads) != len(t.node.parents):
            raise RuntimeError(
                f"backward of '{t.node.name}' returned {len(pgrads)} gradients for {len(t.node.parents)} inputs"
            )
        for p, pg in zip(t.node.parents, pgrads):
            if pg is None or not isinstance(p, Tensor):
                continue
            if pg.shape != p.shape:
                raise RuntimeError(
                    f"backward of '{t.node.name}' returned a gradient of shape {pg.shape} "
                    f"for an input of shape {p.shape}"
                )
            old = grads.get(id(p))
            # never add in place: a backward may hand back an array it also keeps
            grads[id(p)] = pg if old is None else old + pg
    return grads


class GradientTape:
    """Records differentiable ops while its ``with`` block runs (TensorFlow's and Keras's name).

    Args:
        persistent: allow more than one ``gradient`` call.
        watch_accessed_variables: accepted for compatibility; variables are always watched.
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = bool(persistent)
        self._active = False
        self._used = False

    def __enter__(self):
        self._active = True
        _recording.append(self)
        return self

    def __exit__(self, *exc):
        self._active = False
        _recording.remove(self)
        return False

    def watch(self, tensor):
        """Make a plain tensor a source whose gradient can be asked for."""
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"GradientTape.watch expects a convolab Tensor; got {type(tensor).__name__}; "
                "wrap an array with keras.ops.convert_to_tensor first"
            )
        tensor._watched = True

    def gradient(self, target, sources, output_gradients=None):
        """``d target / d source`` for each source (a list, or one array for one source).

        ``None`` for a source the target does not depend on, as TensorFlow returns.
        """
        if self._used and not self.persistent:
            raise RuntimeError("GradientTape.gradient can only be called once on a non-persistent tape")
        self._used = True
        single = isinstance(sources, (Tensor, np.ndarray))
        sources = [as_source(s) for s in ([sources] if single else sources)]
        grads = backpropagate(target, output_gradients)
        out = [grads.get(id(s)) for s in sources]
        return out[0] if single else out
