"""Sequential: a stack of layers with Keras's ``summary``/``compile``/``fit``/``evaluate``/``predict``."""

from __future__ import annotations

import threading

from .. import backend
from ..autodiff.tape import is_recording
from ..autodiff.tensor import Tensor
from ..layers.base import Layer, shape_str, unique_name
from ..layers.input_layer import Input, InputLayer
from ..layers.keras_tensor import KerasTensor
from . import data_checks as checks
from . import functional, model_config, placement
from . import runner as runner_mod
from .model import Model
from .summary import summary_text

#: held while a model builds from its first data, so two threads' first predicts build one set of weights
_build_lock = threading.RLock()


class Sequential(Model):
    """A linear stack of layers.

    Args:
        layers: list of layers; an optional leading ``keras.Input(shape=...)`` /
            ``InputLayer`` sets the input shape, as does ``input_shape=`` on the first layer.
        name: model name (default ``sequential``, ``sequential_1``...).

    Once the input shape is known the stack is also a functional graph, as Keras 3's Sequential
    builds a Functional: each layer is called once on the symbolic output of the one before, so
    ``model.inputs``/``model.outputs`` and every layer's ``.input``/``.output`` exist and
    ``keras.Model(inputs=model.inputs, outputs=model.layers[i].output)`` extracts features with
    the very same layers. The graph is built once per input shape (and again after ``add``/``pop``).

    It runs as every model does: compiled into a plan (``plan.py``) run by a runner
    (``runner.py``). A stack of built-in layers is a chain the stack engine runs (each layer's
    hand-written backward in turn, the final softmax fused with the cross-entropy, batches split
    across threads when that pays); a stack holding a user's layer or another model trains on
    the tape and predicts through the graph, like every other model.
    """

    #: its layers are one chain, in order (plan.py reads this instead of importing the class)
    _stack_model = True

    def __init__(self, layers=None, name=None, trainable=True):
        self._layers: list[Layer] = []
        self._input_shape = None
        self._graph = None  # the functional Model over the same layers, once the input shape is known
        self._input_tensor = None  # the user's keras.Input, kept as the graph's input
        super().__init__(name=name or unique_name("sequential"), trainable=trainable)
        self._first_trainable = 0
        for layer in layers or []:
            self.add(layer, rebuild=False)
        if self._input_shape is not None and self.layers:
            self.build(self._input_shape)  # once for the whole list, as Keras's rebuild=False

    def describe(self):
        return f"Sequential model '{self.name}'"

    # -- construction -------------------------------------------------------
    def add(self, layer, rebuild=True):
        """Append a layer (a ``keras.Input`` tensor or an ``InputLayer`` sets the input shape).

        With the input shape known, the model and its graph are built again (``rebuild=False``
        leaves that to a later ``build``).
        """
        tensor = None
        if isinstance(layer, KerasTensor) and layer.node is not None and not layer.node.inputs:
            tensor, layer = layer, layer.node.layer  # keras.Input(...): its InputLayer
        if isinstance(layer, InputLayer):
            if self.layers:
                raise ValueError(f"{self.describe()}: an Input can only come first")
            if tensor is None and len(layer._inbound_nodes) == 1:
                tensor = layer._inbound_nodes[0].outputs[0]
            self._input_shape = (None,) + tuple(layer.shape)
            self._input_tensor = tensor
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.describe()}: add() expects a convolab layer; got {type(layer).__name__}")
        if any(layer is other for other in self.layers):
            raise ValueError(f"{self.describe()}: layer '{layer.name}' is already in the model")
        if not self.layers:
            # Data is cast to what the first layer computes in (Keras autocasts a layer's inputs
            # to its dtype): a float64 model must not see its inputs rounded to float32.
            self.dtype = layer.dtype
        if not self.layers and self._input_shape is None:
            self._input_shape = _declared_input_shape(layer)
        self._layers.append(layer)
        self.built = False
        if rebuild and self._input_shape is not None:
            self.build(self._input_shape)

    def pop(self, rebuild=True):
        """Remove the last layer and return it; the graph is built again without it."""
        if not self.layers:
            raise TypeError(f"{self.describe()}: there are no layers to pop")
        layer = self._layers.pop()
        self.built = False
        self._drop_graph()
        if rebuild and self._input_shape is not None and self.layers:
            self.build(self._input_shape)
        return layer

    def build(self, input_shape=None):
        """Build every layer in turn for ``input_shape`` (batch axis first, may be ``None``)."""
        if input_shape is None:
            input_shape = self._input_shape
        if input_shape is None:
            raise ValueError(
                f"{self.describe()} has no input shape yet: pass input_shape=(...) to the first layer, "
                "start with keras.Input(shape=(...)), or call fit/predict with data"
            )
        shape = (None,) + tuple(input_shape[1:])
        self._input_shape = shape
        self._build_graph(shape)
        first_trainable = next((i for i, l in enumerate(self.layers) if l.params), len(self.layers))
        for i, layer in enumerate(self.layers):
            layer.need_input_grad = i > first_trainable
        self._first_trainable = first_trainable
        self.built = True

    def _build_graph(self, shape):
        """Call each layer once on the symbolic output of the one before (building it), as Keras 3's
        Sequential builds its Functional; the graph of an earlier build is dropped first."""
        self._drop_graph()
        inputs = self._input_tensor
        if inputs is None or tuple(inputs.shape[1:]) != tuple(shape[1:]):
            first = self.layers[0]
            if first.has_backward() and not first.built:
                first.check_input_shape(shape)  # the first layer names the problem, not the Input
            # named as the model's config names it, so a build never takes a name from the counters
            inputs = Input(shape=shape[1:], dtype=self.dtype, name=f"{self.name}_input")
        x, made = inputs, []
        try:
            for layer in self.layers:
                built_for = layer.input_shape if layer.built else None
                if isinstance(built_for, tuple) and (
                    len(x.shape) != len(built_for)
                    or any(a is not None and b is not None and a != b for a, b in zip(x.shape[1:], built_for[1:]))
                ):
                    raise ValueError(
                        f"{layer.describe()} was built for input shape {shape_str(built_for)}; "
                        f"in this model it gets {shape_str(x.shape)}"
                    )
                x = layer(x)
                if not isinstance(x, KerasTensor):
                    made.append(x[0].node)
                    raise ValueError(
                        f"{self.describe()}: each layer of a Sequential model must return one tensor; "
                        f"{layer.describe()} returns {len(x)}"
                    )
                made.append(x.node)
        except Exception:
            _forget(made)  # a failed build leaves no half graph on the layers
            raise
        self._graph = Model(inputs, x, name=self.name)

    def _drop_graph(self):
        """Forget the graph: each layer's node in it leaves the layer's ``_inbound_nodes``, so that
        ``layer.output`` is the current graph's tensor (a model built from the old tensors keeps
        its own nodes and still runs)."""
        if self._graph is not None:
            _forget(self._graph.graph()[0])
            self._graph = None

    @property
    def layers(self):
        return self._layers

    def _unique_layers(self):
        return self._layers

    def _sublayers(self):
        return list(self._layers)

    @property
    def input_shape(self):
        return self._input_shape

    @input_shape.setter
    def input_shape(self, value):  # Layer.__init__ sets None; the stack keeps its own
        if value is not None:
            self._input_shape = (None,) + tuple(value[1:])

    @property
    def output_shape(self):
        return self._graph.output_shape if self.built and self._graph is not None else None

    @output_shape.setter
    def output_shape(self, value):  # always the last layer's
        pass

    def compute_output_shape(self, input_shape):
        if not self.built:
            self.build(input_shape)
        return self.output_shape

    @property
    def inputs(self):
        """The graph's input tensor in a list (``None`` until the input shape is known)."""
        return self._graph.inputs if self._graph is not None else None

    @property
    def outputs(self):
        """The last layer's output tensor in a list (``None`` until the input shape is known)."""
        return self._graph.outputs if self._graph is not None else None

    @property
    def input(self):
        """The graph's input tensor (Keras's ``model.input``)."""
        return self._graph.input if self._graph is not None else super().input

    @property
    def output(self):
        """The last layer's output tensor (Keras's ``model.output``)."""
        return self._graph.output if self._graph is not None else super().output

    def _savable(self) -> bool:
        return True

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self.describe()} has no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    def summary(self, line_length=None, print_fn=None):
        """Print Keras's summary table; the model must know its input shape."""
        if not self.built:
            self.build()
        (print_fn or print)(summary_text(self, line_length=line_length))

    # -- forward ------------------------------------------------------------
    def _forward(self, x, training, logits=False):
        """The stack on one batch of arrays, by this thread's runner (runner.py)."""
        return runner_mod.current(self).forward(x, training=training, logits=logits)

    def _tape_forward(self, x, training):
        """A user's layer or a nested model: the graph, each layer through ``__call__``."""
        return self._graph.call(x, training=training)

    # -- data preparation ---------------------------------------------------
    def _ensure_built_for(self, x):
        if not self.layers:
            raise ValueError(f"{self.describe()} has no layers; add some before training or predicting")
        first = self.layers[0]
        if self._input_shape is None:
            with _build_lock:
                if self._input_shape is None:
                    self._build_for(x, first)
        expected = self._input_shape
        if len(x.shape) != len(expected) or any(e is not None and g != e for g, e in zip(x.shape[1:], expected[1:])):
            hint = ""
            if tuple(x.shape) == tuple(expected[1:]):
                hint = "; this looks like one sample without the batch axis: use x[None] or np.expand_dims(x, 0)"
            elif (
                len(x.shape) == len(expected) - 1 and expected[-1] == 1 and tuple(x.shape[1:]) == tuple(expected[1:-1])
            ):
                hint = "; add the channel axis with x[..., None] or np.expand_dims(x, -1)"
            raise ValueError(
                f"{first.describe()} expects input shape {shape_str(expected)}; got data of shape "
                f"{shape_str(x.shape)}{hint}"
            )

    def _build_for(self, x, first):
        """Build for the shape of the first data ``x``, which ``first`` (the first layer) must accept."""
        ndim = first.input_ndim
        if ndim is not None and x.ndim != ndim:
            hint = (
                "; add the channel axis with np.expand_dims(x, -1) (grey images need shape (N, H, W, 1))"
                if x.ndim == ndim - 1
                else ""
            )
            raise ValueError(
                f"{first.describe()} expects {ndim}-D input {first.expected_layout()}; got data of shape "
                f"{shape_str(x.shape)}{hint}"
            )
        self.build((None,) + tuple(x.shape[1:]))
        if self.compiled:
            self._resolve_metrics()

    def __call__(self, *args, **kwargs):
        """The stack on a batch (NumPy in, NumPy out), or a node of a graph / the tape."""
        x = args[0] if args else kwargs.get("inputs")
        if functional.is_symbolic(x) or is_recording() or isinstance(x, Tensor):
            return super().__call__(*args, **kwargs)
        if len(args) > 1 or set(kwargs) - {"training"}:
            raise TypeError(f"{self.describe()}: call it as model(x, training=False)")
        x = checks.as_input_array(x, self)
        self._ensure_built_for(x)
        if backend.on_gpu():  # computes on the GPU; the result is a GPU array, as Keras's is a tensor
            placement.place_weights(self)
            x = backend.to_device(x)
        return self._forward(x, training=bool(kwargs.get("training", False)))

    def call(self, inputs, training=False):
        """Each layer in turn; on the tape, each call is recorded (a nested model, a user's layer)."""
        x = inputs
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def get_config(self):
        """Keras 3's config: name, trainable, dtype, the layers (an InputLayer first when the
        input shape is known) and ``build_input_shape`` (:mod:`.model_config`)."""
        return model_config.sequential_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A new Sequential (new weights) from :meth:`get_config`'s dict."""
        return model_config.sequential_from_config(cls, config, custom_objects)

    def _stack_config(self):
        """The architecture as a convolab ``.convolab`` file writes it (``saving/model_io.py``)."""
        return {
            "name": self.name,
            "dtype": self.dtype,
            "input_shape": None if self._input_shape is None else list(self._input_shape[1:]),
            "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers],
        }


def _forget(nodes):
    """Take each layer call among ``nodes`` off its layer's ``_inbound_nodes`` (an Input's own node stays)."""
    for node in nodes:
        if node.inputs and any(n is node for n in node.layer._inbound_nodes):
            node.layer._inbound_nodes.remove(node)


def _declared_input_shape(layer):
    """The input shape (batch axis first) a first layer declares: ``input_shape=``, or a model's own
    input shape (a nested Sequential or functional model that knows it, as Keras 3 takes it)."""
    if layer._input_shape_arg is not None:
        return (None,) + layer._input_shape_arg
    if isinstance(layer, Model) and isinstance(layer.input_shape, tuple):
        return (None,) + tuple(layer.input_shape[1:])
    return None


model_config.MODEL_CLASSES["Sequential"] = Sequential
