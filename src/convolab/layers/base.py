"""The Keras layer life cycle: ``__init__`` (arguments) -> ``build`` (weights) -> ``call`` (math).

A layer keeps hyper-parameters and weights and calls pure functions in ``convolab.nn``.
It never updates its own weights: it exposes ``params`` and, after ``backward``,
``grads`` (same keys), and the optimiser does the update.

Calling a layer does one of three things (``__call__``):

- on symbolic tensors (``keras.Input``): records a node of a functional graph, no math;
- inside a ``GradientTape`` block: runs on a per-call copy of the layer and records a tape
  node whose backward is the layer's own ``backward`` on that copy, so the cache belongs to
  the tape and the same layer can be called twice (shared weights). A layer without a
  hand-written ``backward`` (a user's ``call`` written with ``keras.ops``) records its ops;
- otherwise: plain NumPy in, NumPy out (Sequential's fast path and ``predict``).
"""

from __future__ import annotations

import copy
import functools

import numpy as np

from .. import backend
from ..backend import get_array_module
from ..autodiff.tape import is_recording, record
from ..autodiff.tensor import Tensor, Variable, unwrap
from ..utils.naming import reset_name_counters, shape_str, snake_case, unique_name  # noqa: F401 (imported from here too)
from . import registry
from .keras_tensor import call_symbolic, is_symbolic


class Layer:
    """Base class of every layer.

    Subclasses set ``input_ndim`` (rank including the batch axis, or ``None`` for any
    rank >= 2), implement ``compute_output_shape`` and ``call``/``backward``, and create
    weights in ``build`` with :meth:`add_weight`.
    """

    input_ndim: int | None = None
    #: A class that sets this in its own body (a checker from
    #: :func:`convolab.utils.layer_schema.layer_schema`) may be named by a convolab file: its
    #: config must pass it (:mod:`convolab.layers.registry`). ``None``: code only, never from a file.
    config_schema = None
    #: whether instances may hold other layers in attributes (Keras's auto-tracking). A user's
    #: layer may; convolab's own layers never do, so the walk that looks for them (run on every
    #: training step for variables, losses and constraints) is skipped for them
    _may_hold_layers = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_may_hold_layers" not in cls.__dict__:
            cls._may_hold_layers = not cls.__module__.startswith("convolab.layers.")
        if "build" in cls.__dict__ and not cls.__module__.startswith("convolab."):
            cls.build = _marks_built(cls.__dict__["build"])  # a user's layer is built once its build returns
        if cls.__dict__.get("config_schema") is not None:
            registry.register(cls)  # a file may name it: the allow-list is the classes that declare a schema

    #: Weight-free element-wise layers (Activation, ReLU, Softmax, Rescaling) set this: called
    #: directly, they take an array of any rank, with or without a batch axis, as Keras's do
    #: (``keras.layers.Softmax()(np.array([1., 2., 3.]))``). In a model, ``build`` still checks.
    any_rank: bool = False
    #: Keras's ``activity_regularizer`` (layers that take one set it in ``__init__``); a class
    #: attribute so that the engine's per-step question costs a lookup, not an AttributeError
    activity_regularizer = None
    #: True for a layer that normalises with statistics of the whole batch in training
    #: (BatchNormalization): its batches are never cut into shards (models/runner.py)
    batch_statistics: bool = False
    #: the least rank such a layer can compute on (softmax needs an axis to normalise)
    min_call_ndim: int = 0
    #: a direct call casts integer and boolean arrays to the layer's dtype, as Keras converts its
    #: inputs; a layer that reads integers (Embedding's indices) sets this False, as Keras's does
    autocast: bool = True

    def __init__(self, name=None, input_shape=None, trainable=True, dtype=None, batch_input_shape=None, **kwargs):
        cls = type(self).__name__
        if kwargs:
            raise TypeError(f"{cls}: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{cls}: `name` must be a string; got {name!r}")
        self.name = name or unique_name(snake_case(cls))
        self.trainable = bool(trainable)
        self.dtype = np.dtype(dtype or backend.floatx()).name
        self._input_shape_arg = None
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_shape is not None:
            try:
                self._input_shape_arg = tuple(None if d is None else int(d) for d in input_shape)
            except (TypeError, ValueError):
                raise TypeError(
                    f"{self.describe()}: `input_shape` must be a tuple of ints; got {input_shape!r}"
                ) from None
        self.params: dict = {}
        self.grads: dict = {}
        self._variables: dict = {}  # key -> Variable, a handle on params[key]
        self._non_trainable_keys: set = set()
        self._regularizers: dict = {}  # weight key -> Regularizer (its penalty joins the training loss)
        self._constraints: dict = {}  # weight key -> Constraint (applied after each optimizer step)
        self._losses: list = []
        self._inbound_nodes: list = []
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.need_input_grad = True

    # -- description --------------------------------------------------------
    def describe(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def __repr__(self) -> str:
        return f"<{self.describe()}>"

    # -- life cycle ---------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create weights for ``input_shape`` (batch axis included, possibly ``None``)."""
        if isinstance(input_shape, list):  # several inputs (a merge layer, a user's layer)
            self.input_shape = input_shape
            self.built = True
            return
        self.check_input_shape(input_shape)
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def check_input_shape(self, shape) -> None:
        """Raise ``ValueError`` naming this layer if ``shape`` has the wrong rank."""
        if self.input_ndim is not None and len(shape) != self.input_ndim:
            raise ValueError(
                f"{self.describe()} expects {self.input_ndim}-D input {self.expected_layout()}; "
                f"got shape {shape_str(shape)}"
            )
        if self.input_ndim is None and len(shape) < 2:
            raise ValueError(
                f"{self.describe()} expects input with a batch axis and at least one more; got shape {shape_str(shape)}"
            )

    def expected_layout(self) -> str:
        return "(batch, height, width, channels)" if self.input_ndim == 4 else ""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """Run the layer on a batch (building it on first use), or add it to a functional graph.

        Integer and boolean arrays are cast to the layer's dtype first, as Keras converts
        its inputs (unless the class sets ``autocast = False``); floating arrays are used as they are.
        """
        if not args:
            raise TypeError(f"{self.describe()}: call the layer on its inputs, e.g. layer(x)")
        inputs, rest = args[0], args[1:]
        if is_symbolic(inputs):
            return call_symbolic(self, inputs, rest, kwargs)
        training = kwargs.pop("training", None)
        training = bool(training) if training is not None else False
        if not self.has_backward():
            return self._call_custom(inputs, rest, kwargs, training)
        if rest or kwargs:
            raise TypeError(f"{self.describe()}: unexpected arguments {', '.join(map(str, list(kwargs) or rest))}")
        if isinstance(inputs, (list, tuple)):
            raise TypeError(f"{self.describe()} takes one input; got a list of {len(inputs)}")
        x = inputs if isinstance(inputs, Tensor) else backend.to_device(inputs)
        if self.autocast and not isinstance(x, Tensor) and x.dtype.kind in "biu":
            x = x.astype(self.dtype)
        if self.any_rank:
            self.check_any_rank(x.shape)
        else:
            if not self.built:
                self.check_input_shape(x.shape)  # report the data's own shape, not the batch-less one
                self.build((None,) + tuple(x.shape[1:]))
            self.check_call_shape(x.shape)
        # on the GPU a direct call brings its input to the device, and the weights (born on the
        # host by the build just above, or left behind by a device switch): the result is an
        # array of the current device, as Keras's result is a tensor of its device
        if backend.on_gpu():
            from ..models.placement import place_layer_weights

            place_layer_weights(self)
        if is_recording():
            return self._call_on_tape(x, training)
        return self.call(x, training=training)

    @classmethod
    def has_shape_rule(cls) -> bool:
        """True when the class states its output shape (overrides ``compute_output_shape``)."""
        return cls.compute_output_shape is not Layer.compute_output_shape

    @classmethod
    def has_backward(cls) -> bool:
        """True when the class's ``call`` comes with a hand-written ``backward``.

        A subclass that overrides ``call`` below the class defining ``backward`` (a user's
        layer) does not: its ``call`` is differentiated through the ops it records.
        """
        call_owner = next(c for c in cls.__mro__ if "call" in c.__dict__)
        back_owner = next(c for c in cls.__mro__ if "backward" in c.__dict__)
        return back_owner is not Layer and issubclass(back_owner, call_owner)

    def _call_on_tape(self, x, training):
        """Forward on a copy of this layer that keeps the cache; record its backward on the tape."""
        replica = copy.copy(self)  # shares params; its cache and grads are its own
        replica.grads = {}
        replica.need_input_grad = isinstance(x, Tensor) and x.requires_grad
        keys = self.trainable_keys()
        variables = [self.variable(k) for k in keys]
        if getattr(self, "activation", None) == "softmax" and hasattr(self, "call_logits"):
            # A final softmax, as Keras does it: the logits are a tensor of their own, so that a
            # cross-entropy loss can be computed from them (the same fusion Sequential makes).
            from ..autodiff import functions

            z = replica.call_logits(unwrap(x), training=training)

            def backward_logits(g):
                dx = replica.backward_logits(g)
                return (dx if replica.need_input_grad else None,) + tuple(replica.grads.get(k) for k in keys)

            logits = record(z, (x, *variables), backward_logits, self.name + "/logits")
            probs = functions.softmax(logits)
            if isinstance(probs, Tensor):
                probs._keras_logits = logits
            return self._with_activity_loss(probs)

        y = replica.call(unwrap(x), training=training)

        def backward(g):
            dx = replica.backward(g)
            return (dx if replica.need_input_grad else None,) + tuple(replica.grads.get(k) for k in keys)

        return self._with_activity_loss(record(y, (x, *variables), backward, self.name))

    def _with_activity_loss(self, out):
        """Record ``activity_regularizer(out) / batch`` as this call's loss (Keras's activity penalty)."""
        reg = getattr(self, "activity_regularizer", None)
        if reg is not None:
            y = unwrap(out)
            n = y.dtype.type(max(len(y), 1))
            self._losses = [
                record(
                    get_array_module(y).asarray(reg(y) / n, dtype=y.dtype),
                    (out,),
                    lambda g: (g * (reg.gradient(y) / n),),
                    self.name + "/activity_regularizer",
                )
            ]
        return out

    def _call_custom(self, inputs, rest, kwargs, training):
        """A user's layer: build from the input shapes, then ``call`` (its ops are recorded)."""
        if not self.built:
            self._build_from(_shapes_of(inputs))
        self._losses = []
        if _accepts(self.call, "training"):
            kwargs["training"] = training
        return self.call(inputs, *rest, **kwargs)

    def _build_from(self, shapes):
        """Run ``build`` once for these input shapes (batch axis kept as given)."""
        self.build(shapes)
        if self.input_shape is None:
            self.input_shape = shapes
        self.built = True

    def check_any_rank(self, shape) -> None:
        """Raise ``ValueError`` if a direct call's array has fewer than ``min_call_ndim`` axes."""
        if len(shape) < self.min_call_ndim:
            raise ValueError(
                f"{self.describe()} expects input with at least {self.min_call_ndim} axis "
                f"(it works along the last one); got shape {shape_str(shape)}"
            )

    def check_call_shape(self, shape) -> None:
        """Raise if a batch of ``shape`` does not fit the built layer (rank or sizes)."""
        self.check_input_shape(shape)
        expected = self.input_shape
        for got, want in zip(shape[1:], expected[1:]):
            if want is not None and got != want:
                raise ValueError(
                    f"{self.describe()} was built for input shape {shape_str(expected)}; got shape {shape_str(shape)}"
                )

    # -- weights ------------------------------------------------------------
    def _add_param(self, key, shape, initializer, regularizer=None, constraint=None):
        """Create weight ``key`` (the built-in layers' spelling); returns the array.

        ``regularizer`` and ``constraint`` are resolved objects (``regularizers.get``/``constraints.get``).
        """
        value = np.asarray(initializer(tuple(shape), self.dtype), dtype=self.dtype)
        self.params[key] = np.ascontiguousarray(value)
        self._set_weight_rules(key, regularizer, constraint)
        return self.params[key]

    def _set_weight_rules(self, key, regularizer, constraint):
        if regularizer is not None:
            self._regularizers[key] = regularizer
        if constraint is not None:
            self._constraints[key] = constraint

    def weight_regularizers(self):
        """``(key, regularizer)`` for each trainable weight with a penalty (Keras counts trainable ones)."""
        return [(k, r) for k, r in self._regularizers.items() if k in self.params and self.weight_is_trainable(k)]

    def weight_penalty(self) -> float:
        """The value of the weight penalties of this layer and its sublayers (a float, no tape)."""
        own = sum(reg(self.params[key]) for key, reg in self.weight_regularizers())
        return own + sum(sub.weight_penalty() for sub in self._sublayers())

    def apply_constraints(self) -> None:
        """Project the constrained trainable weights in place (after an optimizer step), sublayers too."""
        for key, constraint in self._constraints.items():
            if key in self.params and self.weight_is_trainable(key):
                w = self.params[key]
                w[...] = constraint(w)
        for sub in self._sublayers():
            sub.apply_constraints()

    def add_weight(
        self,
        shape=None,
        initializer="glorot_uniform",
        dtype=None,
        trainable=True,
        name=None,
        regularizer=None,
        constraint=None,
        **kwargs,
    ):
        """Keras's ``add_weight``: create a weight in ``build`` and get its :class:`Variable`.

        ``initializer`` is a name (``'zeros'``, ``'glorot_uniform'``...) or ``f(shape, dtype)``.
        """
        from .. import initializers

        for key in ("autocast", "aggregation", "synchronization", "use_resource"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"{self.describe()}.add_weight: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        from .. import constraints, regularizers

        regularizer = regularizers.get(regularizer, f"{self.describe()}.add_weight", "regularizer")
        constraint = constraints.get(constraint, f"{self.describe()}.add_weight", "constraint")
        shape = () if shape is None else tuple(int(d) for d in shape)
        if name is None:
            name = "variable" if "variable" not in self.params else f"variable_{len(self.params)}"
        if name in self.params:
            raise ValueError(f"{self.describe()} already has a weight named {name!r}")
        init = initializers.get(initializer, self.describe())
        # np.array, not np.ascontiguousarray, which makes a scalar weight (shape ()) 1-D
        self.params[name] = np.array(init(shape, dtype or self.dtype), dtype=dtype or self.dtype, order="C")
        if not trainable:
            self._non_trainable_keys.add(name)
        else:
            # Keras's order: the trainable weights first, then the non-trainable ones, each in the
            # order made (Keras 3 keeps two lists; `weights` and the .keras file read them in turn)
            for key in [k for k in self.params if k in self._non_trainable_keys]:
                self.params[key] = self.params.pop(key)
        self._set_weight_rules(name, regularizer, constraint)
        return self.variable(name)

    def weight_is_trainable(self, key) -> bool:
        """True when the optimizer updates weight ``key`` (a trainable layer, a trainable weight)."""
        return self.trainable and key not in self._non_trainable_keys

    def trainable_keys(self) -> list:
        """The keys of the weights the optimizer updates, in weight order."""
        return [k for k in self.params if self.weight_is_trainable(k)]

    def variable(self, key) -> Variable:
        """The :class:`Variable` handle on weight ``key`` (the same array, updated in place)."""
        v = self._variables.get(key)
        if v is None or v.value is not self.params[key]:
            v = Variable(
                self.params[key], name=key, path=f"{self.name}/{key}", trainable=lambda: self.weight_is_trainable(key)
            )
            self._variables[key] = v
        return v

    def __getattr__(self, name):
        # Keras code reads weights as attributes (layer.kernel is common); Variables for
        # weights added with add_weight(name=...) are found here too.
        params = self.__dict__.get("params")
        if params is not None and name in params and not name.startswith("_"):
            return self.variable(name)
        if name in ("input", "output") and "_inbound_nodes" in self.__dict__:
            return self._node_tensors(name)  # the property's AttributeError, with its message
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def variables(self):
        return [self.variable(k) for k in self.params] + [v for l in self._sublayers() for v in l.variables]

    @property
    def trainable_variables(self):
        return [v for v in self.variables if v.trainable]

    @property
    def non_trainable_variables(self):
        return [v for v in self.variables if not v.trainable]

    def _sublayers(self):
        """Layers held in attributes (a user's layer that contains others), Keras's auto-tracking."""
        if not self._may_hold_layers:
            return []
        found = []
        for value in self.__dict__.values():
            items = value if isinstance(value, (list, tuple)) else [value]
            found.extend(v for v in items if isinstance(v, Layer) and v is not self)
        return found

    @property
    def output(self):
        """The symbolic output of this layer's call in a functional graph (Keras's ``layer.output``)."""
        return self._node_tensors("output")

    @property
    def input(self):
        """The symbolic input of this layer's call in a functional graph (Keras's ``layer.input``)."""
        return self._node_tensors("input")

    def _node_tensors(self, which):
        if not self._inbound_nodes:
            raise AttributeError(f"{self.describe()} has no {which} yet: it has not been called on keras.Input tensors")
        if len(self._inbound_nodes) > 1:
            raise AttributeError(
                f"{self.describe()} was called {len(self._inbound_nodes)} times, so its {which} is "
                f"ambiguous; use the tensors its calls returned"
            )
        node = self._inbound_nodes[0]
        tensors = node.outputs if which == "output" else node.inputs
        if which == "input" and not tensors:  # an Input layer's input is its own tensor
            tensors = node.outputs
        return tensors[0] if len(tensors) == 1 and not (which == "input" and node.multi) else list(tensors)

    def add_loss(self, loss):
        """Add a scalar (a tensor computed in ``call``) to the training loss, as Keras does."""
        self._losses.append(loss)

    @property
    def losses(self):
        """Losses added in ``call`` and the weight penalties (recorded ops when a tape is recording)."""
        return list(self._losses) + self._weight_penalties() + [l for sub in self._sublayers() for l in sub.losses]

    def _weight_penalties(self):
        out = []
        for key, reg in self.weight_regularizers():
            w = self.params[key]
            out.append(
                record(
                    get_array_module(w).asarray(reg(w), dtype=w.dtype),
                    (self.variable(key),),
                    lambda g, reg=reg, w=w: (g * reg.gradient(w),),
                    f"{self.name}/{key}_regularizer",
                )
            )
        return out

    @property
    def weights(self):
        """The weights as :class:`Variable` handles, Keras's order (kernel, bias; the weights made
        trainable before those made non-trainable, as Keras 3); the same objects on every call
        (``layer.weights[0] is layer.kernel``)."""
        return [self.variable(k) for k in self.params] + [w for l in self._sublayers() for w in l.weights]

    def named_weights(self, prefix=""):
        """``(path, array)`` for each of :attr:`weights`, in that order; a path is ``prefix`` +
        the names of the layers holding the weight, joined by ``/``, then its key (``dense/kernel``).
        The arrays themselves, for the file writers (users read :attr:`weights`)."""
        own = [(f"{prefix}{key}", p) for key, p in self.params.items()]
        return own + [nw for l in self._sublayers() for nw in l.named_weights(f"{prefix}{l.name}/")]

    @property
    def trainable_weights(self):
        own = [self.variable(k) for k in self.trainable_keys()]
        return own + [w for l in self._sublayers() if self.trainable for w in l.trainable_weights]

    @property
    def non_trainable_weights(self):
        own = [self.variable(k) for k in self.params if not self.weight_is_trainable(k)]
        return own + [
            w for l in self._sublayers() for w in (l.weights if not self.trainable else l.non_trainable_weights)
        ]

    def get_weights(self):
        """Copies of the weights as NumPy arrays (from the GPU too), :attr:`weights` order."""
        return [backend.host_copy(v.value) for v in self.weights]

    def set_weights(self, weights) -> None:
        """Replace the weights (:attr:`weights` order) in place; shapes must match exactly."""
        weights, mine = list(weights), self.weights
        if len(weights) != len(mine):
            raise ValueError(f"{self.describe()} expects a list of {len(mine)} weight arrays; got {len(weights)}")
        for v, new in zip(mine, weights):
            new = new if backend.is_device_array(new) else np.asarray(unwrap(new))
            if new.shape != v.shape:
                raise ValueError(
                    f"{self.describe()}: weight '{v.name}' has shape {v.shape}; got an array of shape {new.shape}"
                )
        for v, new in zip(mine, weights):  # checked all before writing any
            backend.assign(v.value, new if backend.is_device_array(new) else np.asarray(unwrap(new)))

    def count_params(self) -> int:
        return int(sum(v.size for v in self.weights))

    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._input_shape_arg is not None:
            cfg["input_shape"] = list(self._input_shape_arg)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _marks_built(build):
    """``build`` that leaves the layer built (and its input shape known): without it, a user's
    ``build`` that never sets ``self.built`` ran again in the next model build and failed with
    "already has a weight"."""

    @functools.wraps(build)
    def wrapper(self, *args, **kwargs):
        result = build(self, *args, **kwargs)
        self.built = True
        input_shape = args[0] if args else kwargs.get("input_shape")
        if self.input_shape is None and input_shape is not None:
            self.input_shape = input_shape if isinstance(input_shape, list) else tuple(input_shape)
        return result

    return wrapper


def _shapes_of(inputs):
    """``(None, ...)`` shapes of an input or a list of inputs (arrays, tensors or symbolic)."""
    if isinstance(inputs, (list, tuple)):
        return [_shapes_of(x) for x in inputs]
    return (None,) + tuple(np.shape(unwrap(inputs)) if not hasattr(inputs, "shape") else inputs.shape)[1:]


def _accepts(fn, name) -> bool:
    """Whether ``fn`` takes an argument ``name`` (or ``**kwargs``); asked on every call of a
    layer without a hand-written backward, so the answer is kept per function."""
    return _function_accepts(getattr(fn, "__func__", fn), name)


@functools.lru_cache(maxsize=4096)
def _function_accepts(fn, name) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
