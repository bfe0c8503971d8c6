"""``keras.Model``: a functional graph (``Model(inputs, outputs)``) or a subclass with ``call``.

Both are layers (a model can be called inside another model) whose forward pass is the
graph's layer calls or the user's ``call``; inside a ``GradientTape`` block every layer call
is recorded, so training differentiates any graph (see :mod:`convolab.models.tape_step`).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from .. import backend

from ..autodiff import tape
from ..autodiff.tensor import Tensor, unwrap
from ..layers.base import Layer
from ..utils.naming import shape_str, snake_case, unique_name
from . import data_checks as checks
from . import folding, functional, model_config
from .trainer import Trainer, _take


class Model(Trainer, Layer):
    """A model. ``Model(inputs, outputs, name=None)`` from symbolic tensors, or subclass it.

    Args:
        inputs: a ``keras.Input`` tensor, a list of them, or a dict of them keyed by input name.
        outputs: a symbolic tensor computed from ``inputs``, a list of them, or a dict keyed by
            output name.
        name: the model's name (default ``functional``, ``functional_1``...).

    Dicts, as Keras 3 takes them: a dict's tensors are ordered by key (``model.inputs``,
    ``model.outputs``, and the order a list of arrays is read in: a list is refused, as Keras
    refuses it, when the dict's keys were not given in sorted order). Data for dict inputs is a
    dict keyed by input name (or that list); a model with dict outputs returns a dict from
    ``model(x)`` and ``predict``, and ``compile``'s losses, loss weights and metrics, the targets
    ``y`` and the logs (``<key>_loss``) are keyed by the output dict's keys.

    Subclassing: define layers in ``__init__`` (they are tracked as attributes) and the
    forward pass in ``call(self, inputs, training=None)``.
    """

    #: read by saving.object_registry, which models use and so cannot import
    _keras_model = True

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if (inputs is None) != (outputs is None):
            raise ValueError("keras.Model: pass both `inputs` and `outputs` (or neither, when subclassing)")
        self._functional = inputs is not None
        default = "functional" if self._functional else snake_case(type(self).__name__)
        super().__init__(name=name or unique_name(default), trainable=trainable, **kwargs)
        self._init_trainer()
        if self._functional:
            self._init_graph(inputs, outputs)

    @property
    def trainable(self):
        return self.__dict__.get("_trainable", True)

    @trainable.setter
    def trainable(self, value):
        """Freezing a model freezes every layer in it, as in Keras (transfer learning's habit)."""
        self._trainable = bool(value)
        if "_functional" in self.__dict__ and ("_layers" in self.__dict__ or not self._functional):
            for layer in self._unique_layers():
                layer.trainable = value

    def _savable(self) -> bool:
        return bool(self._functional)  # a subclass's architecture is its Python code

    def graph(self):
        """The functional graph as saving and export read it, or ``None`` for a subclassed model.

        Returns:
            ``(nodes, inputs, outputs, multi_input, multi_output)``: the GraphNodes in run order,
            the input and output KerasTensors, and whether each side was given as a list.
        """
        if not self._functional:
            return None
        return list(self._nodes), list(self._inputs), list(self._outputs), self._multi_input, self._multi_output

    # -- Trainer hooks ------------------------------------------------------------------------
    def _as_inputs(self, x, what="x"):
        if self._functional and self._multi_input:
            if not isinstance(x, (list, tuple)) or len(x) != len(self._inputs):
                raise ValueError(
                    f"{self.describe()} has {len(self._inputs)} inputs: pass `{what}` as a list of "
                    f"{len(self._inputs)} arrays; got {type(x).__name__}"
                )
            return [checks.as_input_array(a, self, f"{what}[{i}]") for i, a in enumerate(x)]
        if isinstance(x, (list, tuple)) and len(x) == 1 and isinstance(x[0], np.ndarray):
            x = x[0]
        return checks.as_input_array(x, self, what)

    def _ensure_built_for(self, x):
        if self._functional or self.output_shape is not None:
            return
        # A subclass learns its output shape from one sample, as Keras builds it on first call.
        y = unwrap(self(_take(x, slice(0, 1)), training=False))
        self.output_shape = (None,) + tuple(np.shape(y))[1:]
        self.built = True
        if self.compiled:
            self._resolve_metrics()

    # -- the graph -------------------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        self._inputs_struct = _checked_dict(inputs, "inputs")
        self._outputs_struct = _checked_dict(outputs, "outputs")
        #: the dicts' keys, sorted: the order of model.inputs/outputs (Keras's tree.flatten)
        self._input_keys = sorted(inputs) if self._inputs_struct is not None else None
        self._output_keys = sorted(outputs) if self._outputs_struct is not None else None
        if self._input_keys is not None:
            for key, t in inputs.items():
                if key != t.name:
                    warnings.warn(
                        f"keras.Model: the dict of inputs maps the key {key!r} to the input named "
                        f"{t.name!r}; data is matched by key: name the input {key!r} "
                        f"(keras.Input(..., name={key!r})) to keep them one",
                        UserWarning,
                        stacklevel=3,
                    )
            inputs = [inputs[k] for k in self._input_keys]
        if self._output_keys is not None:
            outputs = [outputs[k] for k in self._output_keys]
        # a list of one input takes a bare array too, as in Keras
        self._multi_input = not isinstance(inputs, functional.KerasTensor) and len(functional._flatten(inputs)) > 1
        self._multi_output = not isinstance(outputs, functional.KerasTensor)
        self._inputs = functional._flatten(inputs)
        self._outputs = functional._flatten(outputs)
        for t in self._inputs:
            if t.node is None or t.node.inputs:
                raise ValueError(f"keras.Model: every input must come from keras.Input; got {t}")
        self._nodes = functional._nodes_between(self._inputs, self._outputs)
        layers = []
        for node in self._nodes:
            if all(node.layer is not l for l in layers):
                layers.append(node.layer)
        self._layers = layers
        shapes = [t.shape for t in self._inputs]
        self.input_shape = shapes if self._multi_input else shapes[0]
        out = [t.shape for t in self._outputs]
        self.output_shape = out if self._multi_output else out[0]
        self.dtype = self._inputs[0].dtype
        self.built = True

    def _dict_io(self) -> bool:
        """True when the inputs or the outputs were given as a dict."""
        return self.__dict__.get("_input_keys") is not None or self.__dict__.get("_output_keys") is not None

    def _inputs_in_order(self, x, what="inputs"):
        """What a user passes for the inputs (an array, a list, or a dict keyed by input name) as
        the values in ``model.inputs`` order (one value alone for a model with one input)."""
        if isinstance(x, dict):
            return checks.inputs_by_name(self, x, what)
        keys = self.__dict__.get("_input_keys")
        if (
            keys is not None
            and self._multi_input
            and isinstance(x, (list, tuple))
            and list(self._inputs_struct) != keys
        ):
            raise ValueError(
                f"{self.describe()}: its inputs are a dict whose keys were not given in sorted order "
                f"({list(self._inputs_struct)}), so a list of arrays is ambiguous (Keras refuses it too); "
                f"pass `{what}` as a dict keyed by {keys}"
            )
        return x

    @property
    def inputs(self):
        return list(self._inputs) if self._functional else None

    @property
    def outputs(self):
        return list(self._outputs) if self._functional else None

    @property
    def input(self):
        """The input tensor (a list when there are several, the dict when given as one), as Keras's
        ``model.input``; a subclassed model's is the input of its call in a functional graph, as any layer's."""
        if self.__dict__.get("_functional"):
            if self._inputs_struct is not None:
                return dict(self._inputs_struct)
            return list(self._inputs) if self._multi_input else self._inputs[0]
        return super().input

    @property
    def output(self):
        """The output tensor (a list or a dict when the outputs were given as one), as Keras's ``model.output``."""
        if self.__dict__.get("_functional"):
            if self._outputs_struct is not None:
                return dict(self._outputs_struct)
            return list(self._outputs) if self._multi_output else self._outputs[0]
        return super().output

    @property
    def output_names(self):
        """The names of the outputs: the keys of a dict of outputs (sorted), else the names of the
        layers that make them (Keras's ``model.output_names``). Losses, targets and logs use them."""
        if not self._functional:
            return ["output"]
        if self._output_keys is not None:
            return list(self._output_keys)
        names, seen = [], {}
        for t in self._outputs:
            n = t.node.layer.name
            seen[n] = seen.get(n, 0) + 1
            names.append(n if seen[n] == 1 else f"{n}_{seen[n] - 1}")
        return names

    @property
    def layers(self):
        """The model's layers: in graph order (inputs first), or the tracked attributes of a subclass."""
        return list(self._layers) if self._functional else self._sublayers()

    def _sublayers(self):
        return list(self._layers) if self.__dict__.get("_functional") else super()._sublayers()

    def get_layer(self, name=None, index=None):
        layers = self.layers
        if index is not None:
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self.describe()} has no layer named {name!r}; layers: {[l.name for l in layers]}")

    def describe(self):
        return f"{'Functional' if self.__dict__.get('_functional') else type(self).__name__} model '{self.name}'"

    # -- weights (gathered from the layers, each once) ---------------------------------------
    def _unique_layers(self):
        return self._layers if self._functional else self._sublayers()

    @property
    def weights(self):
        """The layers' :class:`Variable` handles, each weight once (a shared layer's too)."""
        return _unique_variables(w for l in self._unique_layers() for w in l.weights)

    def named_weights(self, prefix=""):
        """``(path, array)`` for each of :attr:`weights`, in that order (``inner_model/dense/kernel``)."""
        seen, out = set(), []
        for layer in self._unique_layers():
            for path, w in layer.named_weights(f"{prefix}{layer.name}/"):
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append((path, w))
        return out

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return _unique_variables(w for l in self._unique_layers() for w in l.trainable_weights)

    @property
    def non_trainable_weights(self):
        trainable = {id(w.value) for w in self.trainable_weights}
        return [w for w in self.weights if id(w.value) not in trainable]

    @property
    def variables(self):
        return _unique_variables(v for l in self._unique_layers() for v in l.variables)

    @property
    def trainable_variables(self):
        return [v for v in self.variables if self.trainable and v.trainable]

    def get_weights(self):
        """Copies of the weights as NumPy arrays (from the GPU too), Keras's order."""
        return [backend.host_copy(v.value) for v in self.weights]

    def set_weights(self, weights):
        """Replace the weights (:attr:`weights` order) in place; every shape is checked first."""
        weights = [w if backend.is_device_array(w) else np.asarray(unwrap(w)) for w in weights]
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"{self.describe()} expects {len(mine)} weight arrays; got {len(weights)}")
        for i, (cur, new) in enumerate(zip(mine, weights)):
            if new.shape != cur.shape:
                raise ValueError(
                    f"{self.describe()}: weight {i} ('{cur.path}') has shape {cur.shape}; got an array "
                    f"of shape {new.shape}"
                )
        for cur, new in zip(mine, weights):
            backend.assign(cur.value, new)

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    @property
    def losses(self):
        return [l for layer in self._unique_layers() for l in layer.losses] + list(self._losses)

    # -- running ---------------------------------------------------------------------------
    def build(self, input_shape):
        if self._functional:
            return
        self.input_shape = input_shape
        self.built = True  # a subclass creates its weights as its layers are first called

    def call(self, inputs, training=False):
        if not self._functional:
            raise NotImplementedError(f"{type(self).__name__}: a Model subclass must define call(self, inputs)")
        return self._run_graph(inputs, training)

    def __call__(self, *args, **kwargs):
        if args and self._dict_io() and _any_symbolic(args[0]):
            raise ValueError(
                f"{self.describe()} has inputs or outputs given as a dict: calling it on symbolic "
                "tensors (nesting it in another model) is not supported by convolab yet; build the "
                "outer model from its layers, or give this one lists"
            )
        return super().__call__(*args, **kwargs)

    def _conform(self, t, x):
        """An input value for input tensor ``t``: cast to its dtype, a trailing axis of 1 added or
        removed where Keras adjusts it (``(N, 28, 28)`` for ``Input((28, 28, 1))``), shape checked."""
        if not isinstance(x, Tensor):
            x = backend.to_device(x)
            if x.dtype != t.dtype:
                x = x.astype(t.dtype)
            x = checks.adjust_input_rank(x, t.shape)
        shape = np.shape(unwrap(x))
        if len(shape) != len(t.shape) or any(e is not None and g != e for g, e in zip(shape, t.shape)):
            raise ValueError(
                f"{self.describe()}: input '{t.name}' expects shape {shape_str(t.shape)}; "
                f"got data of shape {shape_str(shape)}"
            )
        return x

    def _run_graph(self, inputs, training):
        inputs = self._inputs_in_order(inputs)
        if not self._multi_input and isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        xs = list(inputs) if self._multi_input else [inputs]
        if self._multi_input and not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{self.describe()} has {len(self._inputs)} inputs; pass a list of arrays")
        if len(xs) != len(self._inputs):
            raise ValueError(f"{self.describe()} expects {len(self._inputs)} inputs; got {len(xs)}")
        values = {id(t): self._conform(t, x) for t, x in zip(self._inputs, xs)}
        # inference: a BatchNormalization folds into the Conv2D/Dense before it (models/folding.py)
        folds = self._folds() if not training and folding.enabled and not tape.is_recording() else {}
        folded = set()
        for node in self._nodes:
            if not node.inputs or id(node) in folded:
                continue  # an Input, or a BatchNormalization folded into the layer before it
            args = [values[id(t)] for t in node.inputs]
            bn = folds.get(id(node))
            if bn is not None and not isinstance(args[0], Tensor) and node.layer.built and bn.layer.built:
                values[id(bn.outputs[0])] = folding.folded_call(node.layer, bn.layer, args[0])
                folded.add(id(bn))
                continue
            out = node.layer(args if node.multi else args[0], *node.args, training=training, **node.kwargs)
            outs = list(out) if len(node.outputs) > 1 else [out]
            for t, v in zip(node.outputs, outs):
                values[id(t)] = v
        res = [values[id(t)] for t in self._outputs]
        if self._output_keys is not None and not self.__dict__.get("_engine_depth"):
            return dict(zip(self._output_keys, res))
        return res if len(res) > 1 else res[0]  # a list of one output gives its array, as Keras

    # -- the training engine's view of dict outputs ------------------------------------------
    @contextlib.contextmanager
    def _engine_outputs(self):
        """Inside: a model with dict outputs returns them as a list in ``output_names`` order, as
        the training engine (losses, metrics, predict) works on them."""
        self.__dict__["_engine_depth"] = self.__dict__.get("_engine_depth", 0) + 1
        try:
            yield
        finally:
            self.__dict__["_engine_depth"] -= 1

    def _standardize_inputs(self, x, what="x"):
        if not (self.__dict__.get("_functional") and self._input_keys is not None and self._multi_input):
            return super()._standardize_inputs(x, what)
        # a dict (keyed by input name) travels through the batches and reaches _run_graph as one
        arrays = self._inputs_in_order(x, what)
        if not isinstance(arrays, (list, tuple)) or len(arrays) != len(self._inputs):
            raise ValueError(
                f"{self.describe()} has {len(self._inputs)} inputs {self._input_keys}: pass `{what}` as "
                f"a dict keyed by them (or a list in that order); got {type(x).__name__}"
            )
        return {
            k: checks.adjust_input_rank(checks.as_input_array(a, self, f"{what}[{k!r}]"), t.shape)
            for k, a, t in zip(self._input_keys, arrays, self._inputs)
        }

    def _forward_any(self, x, logits=False):
        if not self.__dict__.get("_output_keys"):
            return super()._forward_any(x, logits)
        with self._engine_outputs():
            return super()._forward_any(x, logits)

    def _builtin_train_step(self, x, y, sample_weight=None):
        # the built-in step (fit's, or the default train_step a user's may call) works on a list;
        # a train_step of the user's own calling model(x) sees the dict, as in Keras
        if not self.__dict__.get("_output_keys"):
            return super()._builtin_train_step(x, y, sample_weight)
        with self._engine_outputs():
            return super()._builtin_train_step(x, y, sample_weight)

    def _test_batch(self, xb, yb, swb, plan):
        if not self.__dict__.get("_output_keys"):
            return super()._test_batch(xb, yb, swb, plan)
        with self._engine_outputs():
            return super()._test_batch(xb, yb, swb, plan)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """As :meth:`Trainer.predict`; a model with dict outputs returns a dict of arrays."""
        out = super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)
        keys = self.__dict__.get("_output_keys")
        if keys is None:
            return out
        return dict(zip(keys, out if len(keys) > 1 else [out]))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        keys = self.__dict__.get("_output_keys")
        if keys is not None:
            y_pred = _by_keys(y_pred, keys)
            y = _by_keys(y, keys)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None, **kwargs):
        """As :meth:`Trainer.compile`; for a model with one output, ``loss`` and ``metrics`` may
        also be dicts keyed by its name, as Keras takes them."""
        if self.__dict__.get("_functional") and len(self._outputs) == 1:
            name = self.output_names[0]
            loss, metrics, weighted_metrics = (
                v[name] if isinstance(v, dict) and list(v) == [name] else v for v in (loss, metrics, weighted_metrics)
            )
        return super().compile(optimizer, loss, metrics, loss_weights, weighted_metrics, **kwargs)

    def _folds(self):
        """The graph's foldable (layer, BatchNormalization) pairs, found once: the graph is fixed."""
        if getattr(self, "_fold_plan", None) is None:
            self._fold_plan = folding.plan(self._nodes, self._outputs)
        return self._fold_plan

    def compute_output_shape(self, input_shape):
        if self._functional:
            return self.output_shape
        raise NotImplementedError  # a subclass: measured by a dry run (layers.keras_tensor.infer_output_shape)

    # -- summary -----------------------------------------------------------------------------
    def summary(self, line_length=None, print_fn=None):
        """Print Keras's summary table: three columns for a model that is one chain (Keras's
        "sequential-like"), with "Connected to" for a graph that branches (``summary.py``)."""
        from .summary import summary_text

        (print_fn or print)(summary_text(self, line_length=line_length))

    def get_config(self):
        """Keras 3's config: a functional model's layers and graph (:mod:`.model_config`); a
        subclass's ``name`` and ``trainable`` (override it to add ``__init__``'s arguments)."""
        if self._functional:
            return model_config.functional_config(self)
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A new model (new weights) from :meth:`get_config`'s dict; ``custom_objects`` maps the
        names of the user's classes in it to the classes."""
        if isinstance(config, dict) and "layers" in config and "input_layers" in config:
            return model_config.functional_from_config(
                cls if cls._is_functional_class() else Model, config, custom_objects
            )
        from ..saving.object_registry import CustomObjectScope

        with CustomObjectScope(custom_objects or {}):
            return cls(**config)

    @classmethod
    def _is_functional_class(cls):
        # a user's subclass that defines call() is built by its own __init__, never from a graph
        return "call" not in {k for c in cls.__mro__ if c is not Model and issubclass(c, Model) for k in vars(c)}

    def to_json(self, **kwargs):
        """The model's architecture as Keras 3's JSON (``keras.models.model_from_json`` reads it);
        ``kwargs`` go to ``json.dumps`` (``indent=2``)."""
        return model_config.to_json(self, **kwargs)


def _checked_dict(struct, what):
    """``struct`` when it is a dict of symbolic tensors keyed by strings (Keras's dict inputs or
    outputs), ``None`` when it is not a dict; nested structures inside a dict are refused."""
    if not isinstance(struct, dict):
        return None
    if not struct:
        raise ValueError(f"keras.Model: `{what}` is an empty dict")
    for key, t in struct.items():
        if not isinstance(key, str):
            raise TypeError(f"keras.Model: the keys of the `{what}` dict must be strings; got {key!r}")
        if not isinstance(t, functional.KerasTensor):
            raise ValueError(
                f"keras.Model: each value of the `{what}` dict must be one symbolic tensor (nested "
                f"lists or dicts inside it are not supported by convolab); got {type(t).__name__} "
                f"for key {key!r}"
            )
    return dict(struct)


def _any_symbolic(x):
    values = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else [x]
    return any(isinstance(v, functional.KerasTensor) for v in values)


def _by_keys(value, keys):
    """A dict keyed by output name as a list in ``keys`` order (other values as they are)."""
    return [value[k] for k in keys] if isinstance(value, dict) else value


def _unique_variables(variables):
    """Each weight once: a layer shared by two branches (or two models) gives its Variables twice."""
    seen, out = set(), []
    for v in variables:
        if id(v.value) not in seen:
            seen.add(id(v.value))
            out.append(v)
    return out


model_config.MODEL_CLASSES["Functional"] = Model
