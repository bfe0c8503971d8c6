"""Where a model's weights live: moved to the current device before it computes.

Weights are born on the host (initialisers draw from convolab's NumPy generator, so a seed
gives the same weights on CPU and GPU). ``fit``, ``evaluate`` and ``predict`` first call
:func:`place_weights`, which moves every weight that is not on the current device (after a
``backend.set_device`` switch, or after a load) together with its optimizer state; the
optimizer keys its state by the array, so the state moves with the new array. Saving and
exporting run inside :func:`weights_on_host`, so every writer sees NumPy arrays.

On the CPU, with CuPy never loaded, nothing can be elsewhere: :func:`place_weights` returns
at once.
"""

from __future__ import annotations

import contextlib

from .. import _gpu, backend


def _layers(model):
    """Every layer under ``model`` (itself included), each once."""
    seen, stack, out = set(), [model], []
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        out.append(layer)
        subs = layer.layers if hasattr(layer, "layers") and isinstance(getattr(layer, "layers", None), list) else []
        stack.extend(subs)
        stack.extend(layer._sublayers())
    return out


def _mover(device):
    return backend.to_host if device == "cpu" else backend.to_device


def _move_layer(layer, move, optimizer):
    for key, w in list(layer.params.items()):
        new = move(w)
        if new is w:
            continue
        state = optimizer.get_state(w) if optimizer is not None else None
        handle = layer.variable(key)  # user code may hold it: self.w = self.add_weight(...)
        layer.params[key] = new
        handle.rebind(new)
        if state is not None:
            optimizer.set_state(new, {k: move(v) for k, v in state.items()})


def place_weights(model, device=None):
    """Move ``model``'s weights (and their optimizer state) to ``device`` (default: the current one)."""
    device = device or backend.get_device()
    if device == "cpu" and _gpu.cupy is None:
        return  # CuPy never loaded: every array is already a NumPy one
    move = _mover(device)
    optimizer = getattr(model, "optimizer", None)
    for layer in _layers(model):
        _move_layer(layer, move, optimizer)


def place_layer_weights(layer):
    """Move a layer's (or a model's) weights to the current device: a direct call on the GPU."""
    place_weights(layer)


@contextlib.contextmanager
def weights_on_host(model):
    """Run the block with ``model``'s weights and optimizer state on the host, then put them back."""
    device = backend.get_device()
    place_weights(model, "cpu")
    try:
        yield
    finally:
        place_weights(model, device)
