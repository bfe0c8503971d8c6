"""``keras.models.clone_model``: the same architecture with new layers and new weights.

As Keras 3 (``keras/src/models/cloning.py``): each layer is rebuilt by ``clone_function``
(default ``layer.__class__.from_config(layer.get_config())``, so its weights are drawn anew), a
functional model's graph is replayed on new ``keras.Input`` tensors (or ``input_tensors``) with
each layer cloned once, so a shared layer stays shared; a subclassed model is rebuilt from its
``get_config``. The clone is not compiled.
"""

from __future__ import annotations

from ..layers.base import Layer
from ..layers.input_layer import Input, InputLayer
from ..layers.keras_tensor import KerasTensor


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False, **kwargs):
    """A new model of ``model``'s architecture, with new weights.

    Args:
        model: a ``keras.Model`` (Sequential, functional or subclassed).
        input_tensors: ``keras.Input`` tensors to build the clone on (Sequential and functional).
        clone_function: ``layer -> new layer``, called once per layer (an ``InputLayer`` is
            made anew, never passed to it); return the layer itself to share it with ``model``.
        call_function: ``(layer, *args, **kwargs) -> outputs``, called in place of each layer
            call of a functional model (to wrap or change a call).
        recursive: apply ``clone_function`` inside nested Sequential/functional models too
            (otherwise a nested model is cloned as one layer, by the default rule).

    Returns:
        the new, uncompiled model.
    """
    from .model import Model
    from .sequential import Sequential
    from .model_config import model_kind

    if kwargs:
        raise TypeError(f"clone_model: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
    if not isinstance(model, Model):
        raise TypeError(
            f"clone_model expects a keras.Model (Sequential, functional or subclassed); got {type(model).__name__}"
        )
    if clone_function is not None and not callable(clone_function):
        raise TypeError(f"clone_model: clone_function must be a callable layer -> layer; got {clone_function!r}")
    if call_function is not None and not callable(call_function):
        raise TypeError(f"clone_model: call_function must be a callable; got {call_function!r}")
    kind = model_kind(model)
    if kind is None:
        if input_tensors is not None or clone_function is not None or call_function is not None:
            raise ValueError(
                f"clone_model: {model.describe()} is a subclassed model ({type(model).__name__}); "
                "input_tensors, clone_function and call_function need a Sequential or functional model"
            )
        try:
            return type(model).from_config(model.get_config())
        except (TypeError, ValueError, NotImplementedError) as e:
            raise ValueError(
                f"clone_model: {model.describe()} is rebuilt as type(model).from_config(model.get_config()); "
                f"that failed ({type(e).__name__}: {e}): define get_config() to return __init__'s "
                "arguments"
            ) from None
    clone = _layer_cloner(clone_function, call_function, recursive)
    if kind == "Sequential":
        return _clone_sequential(model, input_tensors, clone, Sequential)
    return _clone_functional(model, input_tensors, clone, call_function)


def _layer_cloner(clone_function, call_function, recursive):
    def clone(layer):
        from .model_config import model_kind

        if recursive and model_kind(layer) is not None:
            return clone_model(layer, clone_function=clone_function, call_function=call_function, recursive=True)
        new = (clone_function or _default_clone)(layer)
        if not isinstance(new, Layer):
            raise TypeError(
                f"clone_model: clone_function must return a layer; for {layer.describe()} it "
                f"returned {type(new).__name__}"
            )
        return new

    return clone


def _default_clone(layer):
    """Keras's rule: ``layer.__class__.from_config(layer.get_config())``; a nested model is cloned."""
    from .model_config import model_kind

    if model_kind(layer) is not None:
        return clone_model(layer)
    if type(layer).__name__ == "Lambda" and type(layer).__module__.startswith("convolab."):
        # its config names the function; the clone calls the same function object
        return type(layer)(
            layer.function, output_shape=layer.output_shape_arg, arguments=dict(layer.arguments), name=layer.name
        )
    return type(layer).from_config(layer.get_config())


def _clone_sequential(model, input_tensors, clone, Sequential):
    layers = [clone(layer) for layer in model.layers]
    if input_tensors is not None:
        tensors = input_tensors if isinstance(input_tensors, (list, tuple)) else [input_tensors]
        if len(tensors) != 1 or not isinstance(tensors[0], KerasTensor):
            raise ValueError(
                f"clone_model: a Sequential model takes one keras.Input tensor as input_tensors; got {input_tensors!r}"
            )
        return Sequential([tensors[0], *layers], name=model.name)
    if model.input_shape is not None:
        layers.insert(0, Input(shape=tuple(model.input_shape[1:]), dtype=model.dtype))
    new = Sequential(layers, name=model.name)
    if not model.trainable:
        new.trainable = False
    return new


def _clone_functional(model, input_tensors, clone, call_function):
    from .model import Model

    nodes, inputs, outputs, multi_in, multi_out = model.graph()
    if input_tensors is None:
        new_inputs = [Input(batch_shape=t.shape, dtype=t.dtype, name=t.node.layer.name) for t in inputs]
    else:
        new_inputs = list(input_tensors) if isinstance(input_tensors, (list, tuple)) else [input_tensors]
        if len(new_inputs) != len(inputs) or not all(isinstance(t, KerasTensor) for t in new_inputs):
            raise ValueError(
                f"clone_model: {model.describe()} has {len(inputs)} input(s); input_tensors must be as "
                f"many keras.Input tensors; got {input_tensors!r}"
            )
    values = {id(old): new for old, new in zip(inputs, new_inputs)}
    clones = {}
    for node in nodes:
        if isinstance(node.layer, InputLayer) or not node.inputs:
            continue
        layer = clones.get(id(node.layer))
        if layer is None:
            layer = clones[id(node.layer)] = clone(node.layer)
        args = [values[id(t)] for t in node.inputs]
        first = args if node.multi else args[0]
        out = (
            call_function(layer, first, *node.args, **node.kwargs)
            if call_function is not None
            else layer(first, *node.args, **node.kwargs)
        )
        outs = list(out) if len(node.outputs) > 1 else [out]
        for t, v in zip(node.outputs, outs):
            values[id(t)] = v
    new_outputs = [values[id(t)] for t in outputs]
    new_in = new_inputs if multi_in else new_inputs[0]
    new_out = new_outputs if multi_out else new_outputs[0]
    if isinstance(model.input, dict):  # the dicts as given, keys in their order
        new_in = {k: values[id(t)] for k, t in model.input.items()}
    if isinstance(model.output, dict):
        new_out = {k: values[id(t)] for k, t in model.output.items()}
    new = Model(new_in, new_out, name=model.name)
    if not model.trainable:
        new.trainable = False
    return new
