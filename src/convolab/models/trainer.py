"""``compile``/``fit``/``evaluate``/``predict`` for every model (Keras 3 calls this the Trainer).

The loop is the same for a Sequential stack, a functional graph and a subclassed model. Each
pass runs inside ``runner.running``: the model is compiled once into a plan (``plan.py``: the
stack engine for a chain of built-in layers, the tape for anything else, and the rewrites) and
one :class:`~convolab.models.runner.Runner` per thread runs it and owns the caches. A model
supplies ``_as_inputs`` and ``_ensure_built_for`` (data checks and building from the first batch).

A user's model customises training as in Keras 3: ``compile()`` without a loss when it adds its
own (``self.add_loss`` in ``call``), or overrides ``compute_loss(x, y, y_pred, sample_weight)``,
``train_step(data)`` or ``test_step(data)`` (see ``models/tape_step.py`` for the loss). Data comes
as Keras takes it: dicts keyed by input (and output) name, a trailing axis of 1 added or dropped.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from .. import _gpu, allocator, backend
from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from ..autodiff import GradientTape
from ..autodiff.tensor import unwrap
from ..callbacks import CallbackList, History, ProgbarLogger
from ..layers.augmentation.base import training_context
from ..random import get_generator
from . import data_checks as checks
from . import data_adapter, multi_output, placement, stack_step, tape_step
from . import runner as runner_mod
from .tape_step import loss_value


def _count(x):
    """Samples in ``x`` (one array, a list of arrays for a model with several inputs, or a dict)."""
    return data_adapter._count(x)


def _first_array(x):
    return next(iter(x.values())) if isinstance(x, dict) else _first(x)


def _take(x, index):
    return data_adapter._take(x, index)


def _first(x):
    return x[0] if isinstance(x, (list, tuple)) else x


class Trainer:
    """The training loop of every model; see the module docstring for the hooks it calls."""

    def _init_trainer(self):
        self.compiled = False
        self.stop_training = False
        self.stop_evaluating = False  # a callback sets these to end evaluate/predict early (Keras)
        self.stop_predicting = False
        self.optimizer = None
        self.loss = None
        self.metrics_list = []
        self.weighted_metrics_list = []
        self._metric_names = []
        self._weighted_metric_names = []
        self._compiled_metrics = None
        self.run_eagerly = False  # compile(run_eagerly=True): every layer call on the tape
        self.history = None
        self._last_logs = {}
        # thread id -> the Runner of the fit/evaluate/predict running on that thread (runner.py)
        self._runners = {}

    # -- hooks (the defaults serve any model that runs through __call__) ------------------------
    def _as_inputs(self, x, what="x"):
        """``x`` as the arrays the model takes: one array, or a list for several inputs."""
        return checks.as_input_array(x, self, what)

    def _ensure_built_for(self, x):
        """Build from the first data if needed; raise on data of the wrong shape."""

    def _standardize_inputs(self, x, what="x"):
        """``x`` as the model takes it: a dict keyed by input name becomes the inputs in order,
        each array gains or loses a trailing axis of 1 where Keras 3 adjusts it
        (``(N, 28, 28)`` for ``Input((28, 28, 1))``), then :meth:`_as_inputs` checks it."""
        x = checks.inputs_by_name(self, x, what)
        if isinstance(x, dict):  # a subclassed model takes the dict in call(), as Keras passes it
            return {k: checks.as_input_array(v, self, f"{what}[{k!r}]") for k, v in x.items()}
        x = self._as_inputs(x, what)
        expected = self._expected_input_shapes()
        if expected is None:
            return x
        if isinstance(x, list):
            return [checks.adjust_input_rank(a, e) for a, e in zip(x, expected)]
        return checks.adjust_input_rank(x, expected[0])

    def _expected_input_shapes(self):
        """The input shapes (batch axis first) when the model knows them, else ``None``."""
        inputs = getattr(self, "inputs", None)
        if inputs:
            return [t.shape for t in inputs]
        # a Sequential that knows its input (keras.Input first, input_shape=) is a functional
        # model in Keras 3 and adjusts as one; a subclassed model takes its data as it comes
        shape = self.__dict__.get("_input_shape")  # the stack's declared input (Sequential's own)
        return [shape] if isinstance(shape, tuple) else None

    def _tape_forward(self, x, training):
        """The model on one batch through ``__call__`` (each layer's call, or the user's ``call``)."""
        return self(x, training=training)

    def _forward_any(self, x, logits=False):
        """Inference on one batch, by this thread's runner (logits when its plan fuses the softmax)."""
        return runner_mod.current(self).forward(x, training=False, logits=logits)

    def _train_step(self, x, y, sample_weight=None, tape=False):
        """One optimizer step by this thread's runner; updates the loss tracker and metrics and
        returns their values. ``tape``: on the tape whatever the plan (the model's own loss)."""
        out, loss, per_output = runner_mod.current(self).train_step(x, y, sample_weight, tape=tape)
        self._update_metrics(loss, _count(x), y, out, sample_weight, per_output)
        return self._metric_logs()

    def _update_metrics(self, loss, n, y, out, sample_weight=None, per_output=None):
        """The loss tracker with the batch's loss; the compiled metrics too when there are targets."""
        if y is None:  # compile(loss=None) and fit(x): the loss is all there is to track
            self._compiled_metrics.loss_tracker.update_state(loss, sample_weight=n)
        elif per_output is not None:
            self._compiled_metrics.update_state(loss, n, y, out, sample_weight, per_output)
        else:
            self._compiled_metrics.update_state(loss, n, y, out, sample_weight)

    def _custom_loss(self) -> bool:
        """True when the loss is the model's own: compiled without one, or compute_loss overridden."""
        return self.loss is None or tape_step.overrides(self, "compute_loss")

    def _step(self, x, y, sample_weight=None):
        """One training step as fit runs it: the user's ``train_step`` when the class overrides it,
        else the built-in one. Returns the logs (floats)."""
        if tape_step.overrides(self, "train_step"):
            return _float_logs(self.train_step(_pack(x, y, sample_weight)), self, "train_step")
        return self._builtin_train_step(x, y, sample_weight)

    def _builtin_train_step(self, x, y, sample_weight=None):
        # the model's own loss (compute_loss, add_loss): the tape, whatever engine its plan has
        return self._train_step(x, y, sample_weight, tape=self._custom_loss())

    # -- Keras 3's training API: what a model overrides to customise fit ------------------------
    @tape_step.default_hook
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The loss of one batch, as Keras 3 computes it: the compiled loss on ``(y, y_pred)`` plus
        :attr:`losses` (``self.add_loss(...)`` in ``call``, weight penalties).

        Override it (``compute_loss(self, x, y, y_pred, sample_weight[, training])``) for a loss of
        your own; ``fit`` calls it on the tape, so write it with ``keras.ops``.
        """
        return tape_step.default_compute_loss(self, y, y_pred, sample_weight)[0]

    @tape_step.default_hook
    def train_step(self, data):
        """One training step on one batch; returns the logs ``{name: value}``.

        ``data`` is as Keras 3 packs it: ``x`` alone when there are no targets, else ``(x, y)``
        or ``(x, y, sample_weight)``. Override it for a step of your own, as Keras's guide does::

            def train_step(self, data):
                x, y = data
                with keras.GradientTape() as tape:
                    y_pred = self(x, training=True)
                    loss = self.compute_loss(y=y, y_pred=y_pred)
                grads = tape.gradient(loss, self.trainable_weights)
                self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
                for metric in self.metrics:
                    if metric.name == "loss":
                        metric.update_state(loss)
                    else:
                        metric.update_state(y, y_pred)
                return {m.name: m.result() for m in self.metrics}
        """
        x, y, sample_weight = _unpack(data)
        return self._builtin_train_step(x, y, sample_weight)

    @tape_step.default_hook
    def test_step(self, data):
        """Loss and metrics of one evaluation batch (``data`` packed as for :meth:`train_step`); returns the logs."""
        x, y, sample_weight = _unpack(data)
        self._test_batch(x, y, sample_weight, self._evaluation_plan(runner_mod.current(self)))
        return self._metric_logs()

    @property
    def metrics(self):
        """The metrics a step updates (Keras's ``model.metrics``): the loss tracker (named ``loss``),
        the compiled metrics, and any ``keras.metrics.Metric`` held in an attribute of the model."""

        out = list(self._compiled_metric_objects())
        seen = {id(m) for m in out}
        for value in self._attribute_metrics():
            if id(value) not in seen:
                seen.add(id(value))
                out.append(value)
        return out

    def _compiled_metric_objects(self):
        cm = self._compiled_metrics
        if cm is None:
            return []
        if isinstance(cm, multi_output.OutputMetrics):
            return (
                [cm.loss_tracker]
                + list(cm.output_trackers)
                + [m for per in cm.per_output for m in per.metrics + per.weighted_metrics]
            )
        return [cm.loss_tracker] + cm.metrics + cm.weighted_metrics

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics with one batch and return :meth:`get_metrics_result` (Keras 3)."""
        cm = self._compiled_metrics
        if cm is not None and y is not None:
            pairs = zip(cm.per_output, y, y_pred) if isinstance(cm, multi_output.OutputMetrics) else [(cm, y, y_pred)]
            for per, yt, yp in pairs:
                yp = unwrap(yp)
                for m in per.metrics:
                    m.update_state(yt, yp)
                for m in per.weighted_metrics:
                    m.update_state(yt, yp, sample_weight=sample_weight)
        return self.get_metrics_result()

    def get_metrics_result(self):
        """``{name: value}`` of every metric in :attr:`metrics` (the compiled ones by their log names)."""
        compiled = {id(m) for m in self._compiled_metric_objects()}
        logs = {}
        mine = self.metrics
        if self._compiled_metrics is not None and any(id(m) in compiled for m in mine):
            logs.update(self._compiled_metrics.result())
        for m in mine:
            if id(m) not in compiled:
                logs[m.name] = m.result()
        return _float_logs(logs, self, "get_metrics_result")

    def _metric_logs(self):
        """The logs of the built-in steps: :meth:`get_metrics_result` as Keras 3 returns it, over
        :attr:`metrics` (a model's own ``metrics`` property, or trackers it holds in attributes,
        report as theirs); the compiled trackers' values straight away when that is all there is."""
        if type(self).metrics is Trainer.metrics and not self._attribute_metrics():
            return self._compiled_metrics.result()
        return self.get_metrics_result()

    def _attribute_metrics(self):
        from ..metrics.base import Metric

        return [v for v in vars(self).values() if isinstance(v, Metric)]

    def _savable(self) -> bool:
        return True

    def _require_savable(self, what):
        # Only the architecture needs more than weights: save_weights/load_weights serve every model.
        if not self._savable():
            raise ValueError(
                f"{self.describe()}.{what}: a subclassed model ({type(self).__name__}) keeps its "
                "architecture in Python code, which a convolab file or an ONNX export cannot hold; "
                "save its weights with model.save_weights(path), then rebuild the model in code "
                "and call model.load_weights(path)"
            )

    def _weights_finite(self) -> bool:
        # Summed in float64 so large finite weights cannot overflow into a false alarm.
        return all(math.isfinite(w.value.sum(dtype=np.float64)) for w in self.weights)

    # -- compile ------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None, **kwargs):
        """Configure training. Defaults as Keras: ``optimizer='rmsprop'``.

        ``loss``: a name, a ``keras.losses`` class or instance, or one of Keras's loss functions
        (``keras.losses.categorical_crossentropy``...). ``metrics`` and ``weighted_metrics``: lists of
        names, ``keras.metrics.Metric`` objects or functions ``f(y_true, y_pred)``; as in Keras 3,
        only ``weighted_metrics`` see ``sample_weight``/``class_weight``.

        ``run_eagerly=True`` (Keras's debugging switch) runs every layer call one by one through
        ``__call__`` on the tape, never the stack engine's fused plan (``plan.py``); results agree
        up to float rounding. ``jit_compile``, ``steps_per_execution`` and ``auto_scale_loss`` are
        accepted and have no effect.
        """
        self.run_eagerly = bool(kwargs.pop("run_eagerly", False))
        for key in ("jit_compile", "steps_per_execution", "auto_scale_loss"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"{self.describe()}.compile: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if loss is None:
            # Keras 3: the model brings its own loss (add_loss in call, an overridden compute_loss
            # or train_step); fit raises at the first batch if there is none after all
            if loss_weights is not None:
                raise ValueError(
                    f"{self.describe()}.compile: `loss_weights` weigh the losses given as `loss`; "
                    f"got loss=None, loss_weights={loss_weights!r}"
                )
            self.optimizer = optimizers_mod.get(optimizer)
            self.loss = None
            self._metric_names = (
                metrics_mod.check_specs(metrics, "metrics") if not isinstance(metrics, dict) else metrics
            )
            self._weighted_metric_names = (
                metrics_mod.check_specs(weighted_metrics, "weighted_metrics")
                if not isinstance(weighted_metrics, dict)
                else weighted_metrics
            )
            self.compiled = True
            self._resolve_metrics()
            return
        if self._several_outputs():
            self.optimizer = optimizers_mod.get(optimizer)
            self.loss = multi_output.OutputLosses(self.output_names, loss, loss_weights, f"{self.describe()}.compile")
            self._metric_names, self._weighted_metric_names = metrics, weighted_metrics
            self.compiled = True
            self._resolve_metrics()
            return
        if loss_weights is not None or isinstance(loss, (list, dict)):
            raise ValueError(
                f"{self.describe()}.compile: a list or dict of losses and loss_weights are for "
                f"models with several outputs; this one has one; got loss={loss!r}, "
                f"loss_weights={loss_weights!r}"
            )
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        self._metric_names = metrics_mod.check_specs(metrics, "metrics")
        self._weighted_metric_names = metrics_mod.check_specs(weighted_metrics, "weighted_metrics")
        self.compiled = True
        self._resolve_metrics()

    def _several_outputs(self) -> bool:
        return isinstance(self.output_shape, list) and len(self.output_shape) > 1

    def _resolve_metrics(self):
        if self.loss is None and self._several_outputs():
            self.metrics_list, self.weighted_metrics_list = [], []
            self._compiled_metrics = multi_output.resolve_metrics(self, self._metric_names, self._weighted_metric_names)
            return
        if isinstance(self.loss, multi_output.OutputLosses):
            self.metrics_list, self.weighted_metrics_list = [], []
            self._compiled_metrics = multi_output.resolve_metrics(self, self._metric_names, self._weighted_metric_names)
            return
        width = self.output_shape[-1] if self.built else None
        self.metrics_list = [metrics_mod.get(m, self.loss, width) for m in self._metric_names]
        self.weighted_metrics_list = [metrics_mod.get(m, self.loss, width) for m in self._weighted_metric_names]
        self._compiled_metrics = metrics_mod.CompileMetrics(self.metrics_list, self.weighted_metrics_list)

    def get_compile_config(self):
        """What ``compile`` was given: ``{'optimizer', 'loss', 'metrics', 'weighted_metrics'}`` as objects."""
        if not self.compiled:
            return None
        return {
            "optimizer": self.optimizer,
            "loss": self.loss,
            "metrics": _spec_copy(self._metric_names),
            "weighted_metrics": _spec_copy(self._weighted_metric_names),
        }

    @property
    def metrics_names(self):
        names = self._compiled_metrics.names if self._compiled_metrics is not None else []
        return ["loss"] + list(names)

    def reset_metrics(self):
        """Reset the loss tracker, every compiled metric and every metric in :attr:`metrics`
        (Keras's ``reset_metrics``, run at the start of each epoch)."""
        if self._compiled_metrics is not None:
            self._compiled_metrics.reset_state()
        compiled = {id(m) for m in self._compiled_metric_objects()}
        for m in self.metrics:
            if id(m) not in compiled:
                m.reset_state()

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimiser step on one batch; returns the loss (and metrics if compiled with any).

        The metrics are reset first, so they describe this batch alone.
        """
        self._check_compiled("train_on_batch")
        x, y = self._prepare(x, y)
        sw = self._sample_weights(y, sample_weight, class_weight, "train_on_batch", _count(x))
        placement.place_weights(self)
        x, y, sw = data_adapter.put_batch((x, y, sw), backend.to_device if backend.on_gpu() else None)
        self.reset_metrics()
        with (
            runner_mod.running(self, "fit", n_threads=1),  # one step: whole, on this thread
            _gpu_memory_errors(f"{self.describe()}.train_on_batch on a batch of {_count(x)}"),
            training_context(True),
        ):
            logs = self._step(x, y, sw)
        if return_dict:
            return logs
        return _logs_as_list(logs, self)

    def _prepare(self, x, y):
        x = self._standardize_inputs(x)
        with training_context(False):  # building runs the model once, as inference
            self._ensure_built_for(x)
        if self.loss is None:
            return x, self._targets_as_given(x, y)
        if isinstance(self.loss, multi_output.OutputLosses):
            if y is None:
                raise ValueError(f"{self.describe()}: `y` is required for training and evaluation; got None")
            ys = self.loss.prepare_targets(y, self.output_shape, self.describe())
            for t in ys:
                if t is not None:
                    checks.check_same_length(_first_array(x), t, self)
            return x, ys
        if self.compiled and not self.metrics_list and self._metric_names:
            self._resolve_metrics()
        y = checks.as_target_array(self._single_target(y), self)
        checks.check_same_length(_first_array(x), y, self)
        if isinstance(self.output_shape, list) and len(self.output_shape) > 1:
            raise ValueError(
                f"{self.describe()} has {len(self.output_shape)} outputs: compile it again so that "
                "it knows them (one loss per output)"
            )
        y = self.loss.prepare_targets(
            y, self.output_shape[0] if isinstance(self.output_shape, list) else self.output_shape
        )
        return x, y

    def _single_target(self, y):
        """A dict ``{output name: targets}`` for a model with one output: its one array (Keras's)."""
        if not isinstance(y, dict):
            return y
        names = self.output_names
        if len(y) != 1 or next(iter(y)) not in names:
            raise ValueError(
                f"{self.describe()}: `y` is a dict, so its keys must name the model's outputs "
                f"{names}; got keys {sorted(map(str, y))}"
            )
        return next(iter(y.values()))

    def _targets_as_given(self, x, y):
        """The targets for a model compiled without a loss: ``None``, or arrays (in the structure
        given: one array, a list, a dict) for its ``compute_loss``/``train_step`` to use."""
        if y is None:
            return None
        if isinstance(y, dict):
            y = {k: checks.as_target_array(v, self) for k, v in y.items()}
            arrays = list(y.values())
        elif isinstance(y, (list, tuple)):
            y = arrays = [checks.as_target_array(v, self) for v in y]
        else:
            y = checks.as_target_array(y, self)
            arrays = [y]
        for a in arrays:
            checks.check_same_length(_first_array(x), a, self)
        return y

    def _sample_weights(self, y, sample_weight, class_weight, method, n=None):
        """Per-sample weights ``(N,)`` from ``sample_weight`` or ``class_weight`` (None: unweighted)."""
        if y is None or isinstance(y, dict):  # no compiled loss: weights are the model's own to use
            if class_weight is not None:
                raise ValueError(
                    f"{self.describe()}.{method}: `class_weight` weighs the compiled loss; this model "
                    "was compiled without one: pass `sample_weight` instead"
                )
            if sample_weight is None:
                return None
            return losses_mod.check_sample_weight(sample_weight, n, f"{self.describe()}.{method}")
        if isinstance(y, list):  # several outputs: one sample weight for all, as Keras applies it
            if class_weight is not None:
                raise ValueError(
                    f"{self.describe()}.{method}: `class_weight` is for models with one output; "
                    "pass `sample_weight` instead"
                )
            if sample_weight is None:
                return None
            n = next(len(t) for t in y if t is not None)
            return losses_mod.check_sample_weight(sample_weight, n, f"{self.describe()}.{method}")
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError(
                    f"{self.describe()}.{method}: you cannot pass both `class_weight` and `sample_weight`; got both"
                )
            return checks.class_weight_to_sample_weight(class_weight, y, self, method)
        if sample_weight is None:
            return None
        return losses_mod.check_sample_weight(sample_weight, len(y), f"{self.describe()}.{method}")

    def _check_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"{self.describe()}: call compile(optimizer=..., loss=..., metrics=...) before {what}()")

    # -- fit ----------------------------------------------------------------
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ):
        """Train for ``epochs`` epochs; returns a :class:`~convolab.callbacks.History`.

        Keras's arguments and defaults (batch_size 32, shuffle each epoch). ``history.history``
        holds ``loss`` and each metric under the name given to ``compile`` (``acc`` or
        ``accuracy``), plus ``val_`` versions when there is validation data.

        ``x`` may be arrays (with ``y``), a ``keras.utils.PyDataset``/``Sequence`` or a generator
        of ``(x, y)`` / ``(x, y, sample_weight)`` batches (then ``y`` is None; ``steps_per_epoch``
        bounds a generator's epoch, otherwise an epoch runs until it is exhausted).

        ``class_weight`` (``{class index: weight}``, missing classes weigh 1) or ``sample_weight``
        (``(N,)``) weight each sample's loss: ``sum(w_i * loss_i) / N`` per batch, Keras 3's
        ``'sum_over_batch_size'``. ``validation_data`` may be ``(x, y)``, ``(x, y, sample_weight)``
        or a batch source as ``x``.
        """
        self._check_compiled("fit")
        allocator.tune()  # once per process: large temporaries stay in the heap between steps
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"{self.describe()}.fit: `epochs` must be an int >= 0; got {epochs!r}")
        for name, value in (("steps_per_epoch", steps_per_epoch), ("validation_steps", validation_steps)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"{self.describe()}.fit: `{name}` must be None or an int >= 1; got {value!r}")
        split = checks.check_validation_split(validation_split, self)
        rng = get_generator()
        val_prepared = False
        if data_adapter.is_batch_source(x):
            if y is not None or sample_weight is not None:
                raise ValueError(
                    f"{self.describe()}.fit: when `x` is a {type(x).__name__}, its batches carry the "
                    "targets (and weights); `y` and `sample_weight` must be None"
                )
            if split > 0:
                raise ValueError(
                    f"{self.describe()}.fit: `validation_split` needs arrays; with a "
                    f"{type(x).__name__} pass `validation_data`"
                )
            train = data_adapter.SourceBatches(x, self._batch_preparer("fit", class_weight), steps_per_epoch, "fit")
            batch_size = batch_size or 32
        else:
            if steps_per_epoch is not None:
                raise ValueError(
                    f"{self.describe()}.fit: `steps_per_epoch` is for generators and PyDatasets; with "
                    "arrays an epoch is every batch (use batch_size)"
                )
            batch_size = checks.check_batch_size(batch_size, self)
            x, y = self._prepare(x, y)
            sw = self._sample_weights(y, sample_weight, class_weight, "fit", _count(x))
            swv = None
            if validation_data is None and split > 0:
                # Keras takes the *last* fraction, before any shuffling: split_at = floor(N * (1 - split)).
                split_at = int(math.floor(_count(x) * (1.0 - split)))
                if split_at == 0 or split_at == _count(x):
                    raise ValueError(
                        f"{self.describe()}.fit: validation_split={split} of {_count(x)} samples leaves an empty set"
                    )
                xv, x = _take(x, slice(split_at, None)), _take(x, slice(None, split_at))
                yv, y = _take(y, slice(split_at, None)), _take(y, slice(None, split_at))
                if sw is not None:
                    swv, sw = sw[split_at:], sw[:split_at]
                validation_data = (xv, yv, swv)
                val_prepared = True  # cut from prepared data: not prepared twice
            x, y, sw, put = data_adapter.to_device_once(x, y, sw)
            train = data_adapter.ArrayBatches(x, y, sw, batch_size, shuffle, rng, put)
        placement.place_weights(self)
        val = self._validation_batches(
            validation_data, validation_batch_size or batch_size, validation_steps, val_prepared
        )
        verbose = 1 if verbose == "auto" else int(verbose)
        cbs = list(callbacks or [])
        # As Keras: History and the progress bar come after the user's callbacks, so they see
        # what those add to the epoch logs (LearningRateScheduler's 'learning_rate').
        history = next((cb for cb in cbs if isinstance(cb, History)), None)
        if history is None:
            history = History()
            cbs.append(history)
        if verbose and not any(isinstance(cb, ProgbarLogger) for cb in cbs):
            cbs.append(ProgbarLogger(verbose))
        params = {"epochs": epochs, "steps": train.steps, "verbose": verbose, "batch_size": batch_size}
        cblist = CallbackList(cbs, self, params)
        self.history = history
        self.stop_training = False
        cblist.on_train_begin({})
        with (
            runner_mod.running(self, "fit", batch_size),
            _gpu_memory_errors(f"{self.describe()}.fit with batch_size={batch_size}"),
            training_context(True),
        ):
            self._fit_epochs(train, val, epochs, initial_epoch, validation_freq, cblist)
        cblist.on_train_end(dict(self._last_logs))
        return history

    def _batch_preparer(self, what, class_weight=None, need_y=True):
        """Checks and converts each batch a PyDataset or generator gives, as arrays are checked."""

        def prepare(batch):
            # a model compiled without a loss may train on x alone (its compute_loss or add_loss)
            xb, yb, swb = data_adapter.unpack(batch, self, what, need_y and self.loss is not None)
            if not need_y:
                xb = self._standardize_inputs(xb)
                with training_context(False):  # building runs the model once, as inference
                    self._ensure_built_for(xb)
                return xb, None, None
            xb, yb = self._prepare(xb, yb)
            return xb, yb, self._sample_weights(yb, swb, class_weight, what, _count(xb))

        return prepare

    def _validation_batches(self, validation_data, batch_size, steps, prepared=False):
        """Batches of ``validation_data``; ``prepared``: it is ``(x, y, sample_weight)`` already
        checked and converted (a ``validation_split`` cut from the training arrays)."""
        if validation_data is None:
            return None
        if data_adapter.is_batch_source(validation_data):
            return data_adapter.SourceBatches(validation_data, self._batch_preparer("fit (validation_data)"), steps)
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                f"{self.describe()}.fit: `validation_data` must be a tuple (x_val, y_val) or "
                f"(x_val, y_val, val_sample_weight); got {type(validation_data).__name__}"
                + (f" of length {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else "")
            )
        if prepared:
            xv, yv, swv = validation_data
        else:
            xv, yv = self._prepare(*validation_data[:2])
            swv = None
            if len(validation_data) == 3 and validation_data[2] is not None:
                swv = self._sample_weights(yv, validation_data[2], None, "fit (validation_data)", _count(xv))
        xv, yv, swv, put = data_adapter.to_device_once(xv, yv, swv)
        return data_adapter.ArrayBatches(xv, yv, swv, batch_size, put=put)

    def _fit_epochs(self, train, val, epochs, initial_epoch, validation_freq, cblist):
        nan_warned = False
        for epoch in range(initial_epoch, epochs):
            cblist.on_epoch_begin(epoch, {})
            epoch_start_weights = self.get_weights()
            self.reset_metrics()  # Keras: the metrics describe this epoch alone
            steps = train.steps
            ran = 0
            running = {}
            for step, (xb, yb, swb) in enumerate(train.epoch()):
                ran += 1
                cblist.on_train_batch_begin(step)
                # running values over the epoch so far, as Keras's batch logs
                running = self._step(xb, yb, swb)
                loss = running.get("loss")
                if loss is not None and not math.isfinite(loss):
                    if not self._weights_finite():  # an earlier update diverged: nothing left to train
                        self.set_weights(epoch_start_weights)
                        warnings.warn(
                            f"{self.describe()}: the loss became {loss} at epoch {epoch + 1}, batch {step + 1} "
                            "and the weights had become inf/NaN; training stopped and the weights were restored "
                            "to the start of this epoch. Lower the learning rate, check the inputs for NaN/inf, "
                            "or scale them to [0, 1].",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                        self.stop_training = True
                    elif not nan_warned:
                        # As Keras, fit goes on (the batch's update is not applied); TerminateOnNaN stops it.
                        nan_warned = True
                        warnings.warn(
                            f"{self.describe()}: the loss became {loss} at epoch {epoch + 1}, batch {step + 1}; "
                            "that batch's update was not applied and training goes on, as in Keras (pass "
                            "callbacks=[keras.callbacks.TerminateOnNaN()] to stop at the first such batch). "
                            "Lower the learning rate, check the inputs for NaN/inf, or scale them to [0, 1].",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                # A diverging update is caught within 16 steps: cheap, and the epoch's starting
                # weights are restored anyway.
                elif (step % 16 == 15 or step == (steps or 0) - 1) and not self._weights_finite():
                    self.set_weights(epoch_start_weights)
                    warnings.warn(
                        f"{self.describe()}: an update at epoch {epoch + 1}, batch {step + 1} made the weights "
                        "non-finite (inf/NaN); training stopped and the weights were restored to those at the "
                        "start of this epoch. Lower the learning rate.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    self.stop_training = True
                cblist.on_train_batch_end(step, running)
                if self.stop_training:
                    break
            if ran == 0:
                warnings.warn(
                    f"{self.describe()}: your input ran out of data at epoch {epoch + 1}; training "
                    "stopped (give a generator steps_per_epoch, or make it loop)",
                    UserWarning,
                    stacklevel=2,
                )
                self.stop_training = True
                break
            train.on_epoch_end()
            # a train_step of the user's own: its last logs are the epoch's, as in Keras
            logs = dict(running) if tape_step.overrides(self, "train_step") else self._metric_logs()
            if val is not None and (epoch + 1) % validation_freq == 0:
                vlogs = self._evaluate_batches(val, cblist)
                logs.update({"val_" + k: v for k, v in vlogs.items()})
            self._last_logs = logs
            cblist.on_epoch_end(epoch, logs)
            if self.stop_training:
                break

    # -- evaluate / predict --------------------------------------------------
    def _evaluate_arrays(self, x, y, batch_size, callbacks=None, sample_weight=None):
        """Loss and metrics over arrays ``(x, y)`` in batches (see :meth:`_evaluate_batches`)."""
        return self._evaluate_batches(data_adapter.ArrayBatches(x, y, sample_weight, batch_size), callbacks)

    def _evaluation_plan(self, runner):
        """What every evaluation batch shares: ``(fused, on_tape, penalty)``, worked out once per
        pass from the runner's compiled plan."""
        if self._custom_loss():
            return False, False, 0.0
        compiled = runner.compiled()
        fused = compiled.fused_softmax
        losses = self.loss.losses if isinstance(self.loss, multi_output.OutputLosses) else [self.loss]
        on_tape = not fused and any(l is not None and l.fuses_softmax for l in losses) and not compiled.stack
        # the weight penalties join the loss here too, as in Keras's compute_loss (fixed during evaluation)
        return fused, on_tape, self.weight_penalty()

    def _test_batch(self, xb, yb, swb, plan):
        """Loss and metrics of one evaluation batch into the trackers."""
        fused, on_tape, penalty = plan
        if self._custom_loss():  # the model's own loss: its compute_loss (add_loss, ...) on the forward pass
            out = self(xb, training=False)
            total, per_output = tape_step.model_loss(self, xb, yb, out, swb, training=False)
            out = [unwrap(o) for o in out] if isinstance(out, (list, tuple)) else unwrap(out)
            self._update_metrics(_total(total), _count(xb), yb, out, swb, per_output)
            return
        if on_tape:
            # a softmax output keeps its logits only on the tape: the cross-entropy is then
            # computed from them, as in training (and in Keras)
            with GradientTape():
                out = self(xb, training=False)
        else:
            out = self._forward_any(xb, logits=fused)
        if isinstance(self.loss, multi_output.OutputLosses):
            per_output = [None if l is None else loss_value(l, t, o, swb) for l, t, o in zip(self.loss.losses, yb, out)]
            loss = sum(w * v for w, v in zip(self.loss.weights, per_output) if v is not None) + penalty
            out = [unwrap(o) for o in out]
            self._compiled_metrics.update_state(loss, _count(xb), yb, out, swb, per_output)
            return
        if on_tape or not self.loss.has_gradient():
            loss = loss_value(self.loss, yb, out, swb)
            out = unwrap(out)
        else:
            loss = stack_step.loss_value_and_grad(self.loss, out, yb, fused, swb)[0]
        loss = loss + penalty
        out = stack_step.metric_output(out, fused)
        self._compiled_metrics.update_state(loss, _count(xb), yb, out, swb)

    def _evaluate_batches(self, batches, callbacks=None):
        """Loss and metrics over prepared batches, calling ``callbacks``' test hooks (Keras's order)."""
        custom = tape_step.overrides(self, "test_step")
        plan = None
        self.reset_metrics()
        running_wanted = callbacks is not None and callbacks.wants("on_test_batch_end")
        self.stop_evaluating = False
        if callbacks is not None:
            callbacks.on_test_begin()
        logs = {}
        with (
            runner_mod.running(self, "evaluate", getattr(batches, "batch_size", 32)) as runner,
            training_context(False),
        ):
            for step, (xb, yb, swb) in enumerate(batches.epoch()):
                if callbacks is not None:
                    callbacks.on_test_batch_begin(step)
                if custom:
                    logs = _float_logs(self.test_step(_pack(xb, yb, swb)), self, "test_step")
                else:
                    if plan is None:  # at the first batch: the model is built from the data by now
                        plan = self._evaluation_plan(runner)
                    self._test_batch(xb, yb, swb, plan)
                if running_wanted:
                    callbacks.on_test_batch_end(step, logs if custom else self._metric_logs())
                if self.stop_evaluating:
                    break
        if not custom:
            logs = self._metric_logs()
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
    ):
        """Loss and metrics on ``(x, y)``: a float, a list in ``metrics_names`` order, or a dict.

        Keras's arguments; ``x`` may also be a PyDataset or a generator of ``(x, y)`` batches
        (``steps`` bounds a generator). ``callbacks`` get ``on_test_begin``,
        ``on_test_batch_begin``/``_end`` (running means) and ``on_test_end`` (the result).
        ``sample_weight`` ``(N,)`` weights the loss (``sum(w_i * loss_i) / N``) and the
        ``weighted_metrics``, as in Keras 3.
        """
        self._check_compiled("evaluate")
        if data_adapter.is_batch_source(x):
            if y is not None or sample_weight is not None:
                raise ValueError(
                    f"{self.describe()}.evaluate: when `x` is a {type(x).__name__}, its batches carry "
                    "the targets; `y` and `sample_weight` must be None"
                )
            batches = data_adapter.SourceBatches(x, self._batch_preparer("evaluate"), steps, "evaluate")
            n_steps = batches.steps
        else:
            _refuse_unsupported(self, "evaluate", steps=steps)
            batch_size = checks.check_batch_size(batch_size, self)
            x, y = self._prepare(x, y)
            sw = self._sample_weights(y, sample_weight, None, "evaluate", _count(x))
            x, y, sw, put = data_adapter.to_device_once(x, y, sw)
            batches = data_adapter.ArrayBatches(x, y, sw, batch_size, put=put)
            n_steps = batches.steps
        placement.place_weights(self)
        cblist = self._callback_list(callbacks, verbose, n_steps, batch_size)
        with _gpu_memory_errors(f"{self.describe()}.evaluate with batch_size={batch_size}"):
            logs = self._evaluate_batches(batches, cblist)
        if verbose not in (0, False):
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return _logs_as_list(logs, self)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for ``x``, computed in batches (default 32); shape ``(N, *output_shape[1:])``.

        ``x`` may also be a PyDataset or a generator of batches (``x`` or ``(x, ...)``; ``steps``
        bounds a generator). ``callbacks`` get ``on_predict_begin``, ``on_predict_batch_begin``,
        ``on_predict_batch_end`` with ``logs={'outputs': batch_output}`` and ``on_predict_end``.
        """
        if data_adapter.is_batch_source(x):
            batches = data_adapter.SourceBatches(x, self._batch_preparer("predict", need_y=False), steps, "predict")
        else:
            _refuse_unsupported(self, "predict", steps=steps)
            batch_size = checks.check_batch_size(batch_size, self)
            x = self._standardize_inputs(x)
            with training_context(False):  # building runs the model once, as inference
                self._ensure_built_for(x)
            x, _, _, put = data_adapter.to_device_once(x)
            batches = data_adapter.ArrayBatches(x, None, None, batch_size, put=put)
        placement.place_weights(self)
        cblist = self._callback_list(callbacks, verbose, batches.steps, batch_size)
        self.stop_predicting = False
        cblist.on_predict_begin()
        outs = []
        with (
            runner_mod.running(self, "predict", batch_size or 32),
            _gpu_memory_errors(f"{self.describe()}.predict with batch_size={batch_size or 32}"),
            training_context(False),
        ):
            for step, (xb, _, _) in enumerate(batches.epoch()):
                cblist.on_predict_batch_begin(step)
                outs.append(_to_host(self._forward_any(xb)))  # predict returns NumPy, as Keras does
                cblist.on_predict_batch_end(step, {"outputs": outs[-1]})
                if self.stop_predicting:
                    break
        cblist.on_predict_end()
        if not outs:
            raise ValueError(f"{self.describe()}.predict: the input gave no batches")
        if isinstance(outs[0], (list, tuple)):  # several outputs: one array each
            return [np.concatenate([o[i] for o in outs], axis=0) for i in range(len(outs[0]))]
        return np.concatenate(outs, axis=0)

    def _callback_list(self, callbacks, verbose, steps, batch_size):
        """The CallbackList for one evaluate/predict pass (Keras's params: one epoch of ``steps``)."""
        verbose = 1 if verbose == "auto" else verbose
        params = {"epochs": 1, "steps": steps, "verbose": verbose, "batch_size": batch_size}
        return CallbackList(list(callbacks or []), self, params)

    def predict_on_batch(self, x):
        x = self._standardize_inputs(x)
        return self.predict(x, batch_size=_count(x))

    # -- persistence (implemented in convolab.saving) -----------------------
    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture, weights, compile settings (and optimiser state) to one file, atomically.

        ``overwrite=False`` refuses to replace an existing file (Keras's argument).
        """
        self._require_savable("save")
        from .persistence import save_model

        _check_overwrite(filepath, overwrite, self)
        with placement.weights_on_host(self):  # files hold NumPy arrays, from the GPU too
            save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights alone, atomically: safetensors, or Keras 3's HDF5 layout for ``*.weights.h5``."""
        from .persistence import save_weights

        _check_overwrite(filepath, overwrite, self)
        with placement.weights_on_host(self):
            save_weights(self, filepath)

    def load_weights(self, filepath):
        """Load weights saved by :meth:`save_weights` (or :meth:`save`), or by Keras 3 (``.weights.h5``,
        ``.keras``), into this built model."""
        from .persistence import load_weights

        with placement.weights_on_host(self):  # read into host arrays, then back to the device
            load_weights(self, filepath)

    def export(self, filepath, format="onnx"):
        """Export for inference; ``format='onnx'`` needs the ``onnx`` extra."""
        self._require_savable("export")
        from .persistence import export_model

        with placement.weights_on_host(self):
            export_model(self, filepath, format=format)


def _pack(x, y=None, sample_weight=None):
    """A batch as Keras 3 hands it to ``train_step``: ``x`` alone (a list of inputs as ``(x,)``)
    when there are no targets, else ``(x, y)`` or ``(x, y, sample_weight)``."""
    if y is None and sample_weight is None:
        return (x,) if isinstance(x, list) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def _unpack(data):
    """``(x, y, sample_weight)`` from a batch packed as :func:`_pack` packs it (Keras's
    ``unpack_x_y_sample_weight``)."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(f"a batch must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of {len(data)}")


def _total(loss):
    """A loss (a tape tensor, an array of any rank on any device, or a float) summed to one float."""
    loss = unwrap(loss)
    return float(backend.get_array_module(loss).sum(loss)) if hasattr(loss, "shape") else float(loss)


def _float_logs(logs, model, what):
    """A step's logs as ``{name: float}``: tensors and arrays become floats, and a value that is
    itself a dict (Keras's ``compile_metrics``) is merged in, as Keras flattens it."""
    if not isinstance(logs, dict):
        raise TypeError(f"{model.describe()}.{what} must return a dict {{name: value}}; got {type(logs).__name__}")
    out = {}
    for key, value in logs.items():
        if isinstance(value, dict):
            out.update(_float_logs(value, model, what))
            continue
        value = backend.to_host(unwrap(value))
        try:
            out[key] = float(np.asarray(value))
        except (TypeError, ValueError):
            raise TypeError(f"{model.describe()}.{what}: the log '{key}' must be a number; got {value!r}") from None
    return out


def _logs_as_list(logs, model):
    """evaluate/train_on_batch's return value: the loss alone, or the values in ``metrics_names`` order
    (a custom step's logs in their own order)."""
    if len(logs) == 1:
        return next(iter(logs.values()))
    names = model.metrics_names
    if set(names) == set(logs):
        return [logs[k] for k in names]
    return list(logs.values())


def _to_host(out):
    """A batch's output (or a list of them, for several outputs) as NumPy arrays."""
    if isinstance(out, (list, tuple)):
        return [backend.to_host(o) for o in out]
    return backend.to_host(out)


@contextlib.contextmanager
def _gpu_memory_errors(what):
    """Turn CuPy's out-of-memory error into a :class:`~convolab.backend.GPUOutOfMemoryError` saying
    what ran and what to try (nothing is caught on the CPU: the tuple of classes is empty)."""
    try:
        yield
    except backend.out_of_memory_errors() as e:
        raise _gpu.out_of_memory(e, f"running {what}") from e


def _refuse_unsupported(model, method, **args):
    """Keras arguments convolab cannot honour yet: an error, never silently ignored."""
    given = sorted(name for name, value in args.items() if value is not None)
    if given:
        raise ValueError(
            f"{model.describe()}.{method}: {', '.join(f'`{name}`' for name in given)} "
            f"{'is' if len(given) == 1 else 'are'} not supported by convolab yet (expected None); got "
            + ", ".join(f"{name}={args[name]!r}" for name in given)
        )


def _check_overwrite(filepath, overwrite, model):
    import os

    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{model.describe()}: {filepath} exists and overwrite=False")


def _spec_copy(spec):
    """A copy of a metrics structure as compile was given it (a dict per output stays a dict)."""
    if spec is None:
        return []
    return dict(spec) if isinstance(spec, dict) else list(spec)
