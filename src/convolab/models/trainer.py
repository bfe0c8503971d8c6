"""``compile``/``fit``/``evaluate``/``predict`` for every model (Keras 3 calls this the Trainer).

The loop is the same for a Sequential stack, a functional graph and a subclassed model; a
model supplies the hooks: ``_train_step`` (one optimizer step; by default on the tape, see
``tape_step.py``; Sequential's built-in stacks keep their fused fast path), ``_forward_any``
(inference on one batch), ``_threads`` (Sequential's shards), ``_fuses_softmax``,
``_as_inputs`` and ``_ensure_built_for`` (data checks and building from the first batch).
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
from ..nn import threads
from ..random import get_generator
from . import data_checks as checks
from . import data_adapter, multi_output, placement, stack_step
from .tape_step import loss_value, tape_train_step


def _count(x):
    """Samples in ``x`` (one array, or a list of arrays for a model with several inputs)."""
    return len(x[0]) if isinstance(x, (list, tuple)) else len(x)


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
        self.history = None
        self._last_logs = {}

    # -- hooks (the defaults serve any model that runs through __call__) ------------------------
    def _as_inputs(self, x, what="x"):
        """``x`` as the arrays the model takes: one array, or a list for several inputs."""
        return checks.as_input_array(x, self, what)

    def _ensure_built_for(self, x):
        """Build from the first data if needed; raise on data of the wrong shape."""

    def _fuses_softmax(self) -> bool:
        return False

    def _threads(self, batch_size):
        """The loops run inside this: each large op splits its batch over the cores (nn/threads.py);
        on the GPU one stream does the work."""
        from .. import backend
        from . import parallel

        return threads.batch_threads(1 if backend.on_gpu() else parallel.default_num_threads())

    def _forward_any(self, x, logits=False):
        """Inference on one batch."""
        return unwrap(self(x, training=False))

    def _train_step(self, x, y, sample_weight=None):
        """One optimizer step on the tape; updates the loss tracker and metrics, returns their values."""
        out, loss, per_output = tape_train_step(self, x, y, sample_weight)
        if per_output is not None:
            self._compiled_metrics.update_state(loss, _count(x), y, out, sample_weight, per_output)
        else:
            self._compiled_metrics.update_state(loss, _count(x), y, out, sample_weight)
        return self._compiled_metrics.result()

    def _savable(self) -> bool:
        return True

    def _fast_path(self) -> bool:
        """True for a model the stack engine trains (Sequential of built-in layers)."""
        return False

    def _require_savable(self, what):
        # Only the architecture needs more than weights: save_weights/load_weights serve every model.
        if not self._savable():
            raise ValueError(f"{self.describe()}.{what}: a subclassed model ({type(self).__name__}) keeps its "
                             "architecture in Python code, which a convolab file or an ONNX export cannot hold; "
                             "save its weights with model.save_weights(path), then rebuild the model in code "
                             "and call model.load_weights(path)")

    def _weights_finite(self) -> bool:
        # Summed in float64 so large finite weights cannot overflow into a false alarm.
        return all(math.isfinite(w.value.sum(dtype=np.float64)) for w in self.weights)

    # -- compile ------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                **kwargs):
        """Configure training. Defaults as Keras: ``optimizer='rmsprop'``.

        ``loss``: a name, a ``keras.losses`` class or instance, or one of Keras's loss functions
        (``keras.losses.categorical_crossentropy``...). ``metrics`` and ``weighted_metrics``: lists of
        names, ``keras.metrics.Metric`` objects or functions ``f(y_true, y_pred)``; as in Keras 3,
        only ``weighted_metrics`` see ``sample_weight``/``class_weight``.
        """
        for key in ("run_eagerly", "jit_compile", "steps_per_execution", "auto_scale_loss"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"{self.describe()}.compile: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if loss is None:
            raise ValueError(f"{self.describe()}.compile: a `loss` is required, e.g. loss='sparse_categorical_crossentropy'")
        if self._several_outputs():
            self.optimizer = optimizers_mod.get(optimizer)
            self.loss = multi_output.OutputLosses(self.output_names, loss, loss_weights, f"{self.describe()}.compile")
            self._metric_names, self._weighted_metric_names = metrics, weighted_metrics
            self.compiled = True
            self._resolve_metrics()
            return
        if loss_weights is not None or isinstance(loss, (list, dict)):
            raise ValueError(f"{self.describe()}.compile: a list or dict of losses and loss_weights are for "
                             f"models with several outputs; this one has one; got loss={loss!r}, "
                             f"loss_weights={loss_weights!r}")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        self._metric_names = metrics_mod.check_specs(metrics, "metrics")
        self._weighted_metric_names = metrics_mod.check_specs(weighted_metrics, "weighted_metrics")
        self.compiled = True
        self._resolve_metrics()

    def _several_outputs(self) -> bool:
        return isinstance(self.output_shape, list) and len(self.output_shape) > 1

    def _resolve_metrics(self):
        if isinstance(self.loss, multi_output.OutputLosses):
            self.metrics_list, self.weighted_metrics_list = [], []
            self._compiled_metrics = multi_output.resolve_metrics(self, self._metric_names,
                                                                  self._weighted_metric_names)
            return
        width = self.output_shape[-1] if self.built else None
        self.metrics_list = [metrics_mod.get(m, self.loss, width) for m in self._metric_names]
        self.weighted_metrics_list = [metrics_mod.get(m, self.loss, width) for m in self._weighted_metric_names]
        self._compiled_metrics = metrics_mod.CompileMetrics(self.metrics_list, self.weighted_metrics_list)

    def get_compile_config(self):
        """What ``compile`` was given: ``{'optimizer', 'loss', 'metrics', 'weighted_metrics'}`` as objects."""
        if not self.compiled:
            return None
        return {"optimizer": self.optimizer, "loss": self.loss, "metrics": _spec_copy(self._metric_names),
                "weighted_metrics": _spec_copy(self._weighted_metric_names)}

    @property
    def metrics_names(self):
        names = self._compiled_metrics.names if self._compiled_metrics is not None else []
        return ["loss"] + list(names)

    def reset_metrics(self):
        """Reset the loss tracker and every compiled metric (Keras's ``reset_metrics``)."""
        if self._compiled_metrics is not None:
            self._compiled_metrics.reset_state()


    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimiser step on one batch; returns the loss (and metrics if compiled with any).

        The metrics are reset first, so they describe this batch alone.
        """
        self._check_compiled("train_on_batch")
        x, y = self._prepare(x, y)
        sw = self._sample_weights(y, sample_weight, class_weight, "train_on_batch")
        placement.place_weights(self)
        x, y, sw = data_adapter.put_batch((x, y, sw), backend.to_device if backend.on_gpu() else None)
        self.reset_metrics()
        with _gpu_memory_errors(f"{self.describe()}.train_on_batch on a batch of {_count(x)}"):
            logs = self._train_step(x, y, sw)
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else [logs[k] for k in self.metrics_names]


    def _prepare(self, x, y):
        x = self._as_inputs(x)
        self._ensure_built_for(x)
        if isinstance(self.loss, multi_output.OutputLosses):
            if y is None:
                raise ValueError(f"{self.describe()}: `y` is required for training and evaluation; got None")
            ys = self.loss.prepare_targets(y, self.output_shape, self.describe())
            for t in ys:
                if t is not None:
                    checks.check_same_length(_first(x), t, self)
            return x, ys
        if self.compiled and not self.metrics_list and self._metric_names:
            self._resolve_metrics()
        y = checks.as_target_array(y, self)
        checks.check_same_length(_first(x), y, self)
        if isinstance(self.output_shape, list) and len(self.output_shape) > 1:
            raise ValueError(f"{self.describe()} has {len(self.output_shape)} outputs: compile it again so that "
                             "it knows them (one loss per output)")
        y = self.loss.prepare_targets(y, self.output_shape[0] if isinstance(self.output_shape, list)
                                      else self.output_shape)
        return x, y

    def _sample_weights(self, y, sample_weight, class_weight, method):
        """Per-sample weights ``(N,)`` from ``sample_weight`` or ``class_weight`` (None: unweighted)."""
        if isinstance(y, list):  # several outputs: one sample weight for all, as Keras applies it
            if class_weight is not None:
                raise ValueError(f"{self.describe()}.{method}: `class_weight` is for models with one output; "
                                 "pass `sample_weight` instead")
            if sample_weight is None:
                return None
            n = next(len(t) for t in y if t is not None)
            return losses_mod.check_sample_weight(sample_weight, n, f"{self.describe()}.{method}")
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError(f"{self.describe()}.{method}: you cannot pass both `class_weight` and "
                                 "`sample_weight`; got both")
            return checks.class_weight_to_sample_weight(class_weight, y, self, method)
        if sample_weight is None:
            return None
        return losses_mod.check_sample_weight(sample_weight, len(y), f"{self.describe()}.{method}")

    def _check_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(
                f"{self.describe()}: call compile(optimizer=..., loss=..., metrics=...) before {what}()"
            )


    # -- fit ----------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
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
                raise ValueError(f"{self.describe()}.fit: when `x` is a {type(x).__name__}, its batches carry the "
                                 "targets (and weights); `y` and `sample_weight` must be None")
            if split > 0:
                raise ValueError(f"{self.describe()}.fit: `validation_split` needs arrays; with a "
                                 f"{type(x).__name__} pass `validation_data`")
            train = data_adapter.SourceBatches(x, self._batch_preparer("fit", class_weight), steps_per_epoch, "fit")
            batch_size = batch_size or 32
        else:
            if steps_per_epoch is not None:
                raise ValueError(f"{self.describe()}.fit: `steps_per_epoch` is for generators and PyDatasets; with "
                                 "arrays an epoch is every batch (use batch_size)")
            batch_size = checks.check_batch_size(batch_size, self)
            x, y = self._prepare(x, y)
            sw = self._sample_weights(y, sample_weight, class_weight, "fit")
            swv = None
            if validation_data is None and split > 0:
                # Keras takes the *last* fraction, before any shuffling: split_at = floor(N * (1 - split)).
                split_at = int(math.floor(_count(x) * (1.0 - split)))
                if split_at == 0 or split_at == _count(x):
                    raise ValueError(f"{self.describe()}.fit: validation_split={split} of {_count(x)} samples "
                                     "leaves an empty set")
                xv, x = _take(x, slice(split_at, None)), _take(x, slice(None, split_at))
                yv, y = _take(y, slice(split_at, None)), _take(y, slice(None, split_at))
                if sw is not None:
                    swv, sw = sw[split_at:], sw[:split_at]
                validation_data = (xv, yv, swv)
                val_prepared = True  # cut from prepared data: not prepared twice
            x, y, sw, put = data_adapter.to_device_once(x, y, sw)
            train = data_adapter.ArrayBatches(x, y, sw, batch_size, shuffle, rng, put)
        placement.place_weights(self)
        val = self._validation_batches(validation_data, validation_batch_size or batch_size, validation_steps,
                                       val_prepared)
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
        with self._threads(batch_size), _gpu_memory_errors(f"{self.describe()}.fit with batch_size={batch_size}"):
            self._fit_epochs(train, val, epochs, initial_epoch, validation_freq, cblist)
        cblist.on_train_end(dict(self._last_logs))
        return history

    def _batch_preparer(self, what, class_weight=None, need_y=True):
        """Checks and converts each batch a PyDataset or generator gives, as arrays are checked."""
        def prepare(batch):
            xb, yb, swb = data_adapter.unpack(batch, self, what, need_y)
            if not need_y:
                xb = self._as_inputs(xb)
                self._ensure_built_for(xb)
                return xb, None, None
            xb, yb = self._prepare(xb, yb)
            return xb, yb, self._sample_weights(yb, swb, class_weight, what)
        return prepare

    def _validation_batches(self, validation_data, batch_size, steps, prepared=False):
        """Batches of ``validation_data``; ``prepared``: it is ``(x, y, sample_weight)`` already
        checked and converted (a ``validation_split`` cut from the training arrays)."""
        if validation_data is None:
            return None
        if data_adapter.is_batch_source(validation_data):
            return data_adapter.SourceBatches(validation_data, self._batch_preparer("fit (validation_data)"), steps)
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(f"{self.describe()}.fit: `validation_data` must be a tuple (x_val, y_val) or "
                             f"(x_val, y_val, val_sample_weight); got {type(validation_data).__name__}"
                             + (f" of length {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else ""))
        if prepared:
            xv, yv, swv = validation_data
        else:
            xv, yv = self._prepare(*validation_data[:2])
            swv = None
            if len(validation_data) == 3 and validation_data[2] is not None:
                swv = self._sample_weights(yv, validation_data[2], None, "fit (validation_data)")
        xv, yv, swv, put = data_adapter.to_device_once(xv, yv, swv)
        return data_adapter.ArrayBatches(xv, yv, swv, batch_size, put=put)

    def _fit_epochs(self, train, val, epochs, initial_epoch, validation_freq, cblist):
        for epoch in range(initial_epoch, epochs):
            cblist.on_epoch_begin(epoch, {})
            epoch_start_weights = self.get_weights()
            self.reset_metrics()  # Keras: the metrics describe this epoch alone
            steps = train.steps
            ran = 0
            for step, (xb, yb, swb) in enumerate(train.epoch()):
                ran += 1
                cblist.on_train_batch_begin(step)
                # running values over the epoch so far, as Keras's batch logs
                batch_logs = running = self._train_step(xb, yb, swb)
                if not math.isfinite(batch_logs["loss"]):
                    restored = not self._weights_finite()  # an earlier update diverged
                    if restored:
                        self.set_weights(epoch_start_weights)
                    warnings.warn(
                        f"{self.describe()}: the loss became {batch_logs['loss']} at epoch {epoch + 1}, "
                        f"batch {step + 1}; training stopped and that batch's update was not applied"
                        + ("; the weights had become inf/NaN and were restored to the start of this epoch"
                           if restored else "")
                        + ". Lower the learning rate, check the inputs for NaN/inf, or scale them to [0, 1].",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    self.stop_training = True
                    cblist.on_train_batch_end(step, running)
                    break
                # A diverging update is caught within 16 steps: cheap, and the epoch's starting
                # weights are restored anyway.
                if (step % 16 == 15 or step == (steps or 0) - 1) and not self._weights_finite():
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
                warnings.warn(f"{self.describe()}: your input ran out of data at epoch {epoch + 1}; training "
                              "stopped (give a generator steps_per_epoch, or make it loop)", UserWarning,
                              stacklevel=2)
                self.stop_training = True
                break
            train.on_epoch_end()
            logs = self._compiled_metrics.result()
            if val is not None and math.isfinite(logs["loss"]) and (epoch + 1) % validation_freq == 0:
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

    def _evaluate_batches(self, batches, callbacks=None):
        """Loss and metrics over prepared batches, calling ``callbacks``' test hooks (Keras's order)."""
        fused = self._fuses_softmax()
        losses = self.loss.losses if isinstance(self.loss, multi_output.OutputLosses) else [self.loss]
        on_tape = not fused and any(l is not None and l.fuses_softmax for l in losses) and not self._fast_path()
        self.reset_metrics()
        running_wanted = callbacks is not None and callbacks.wants("on_test_batch_end")
        self.stop_evaluating = False
        if callbacks is not None:
            callbacks.on_test_begin()
        # the weight penalties join the loss here too, as in Keras's compute_loss (fixed during evaluation)
        penalty = self.weight_penalty()
        with self._threads(getattr(batches, "batch_size", 32)):
            for step, (xb, yb, swb) in enumerate(batches.epoch()):
                if callbacks is not None:
                    callbacks.on_test_batch_begin(step)
                if on_tape:
                    # a softmax output keeps its logits only on the tape: the cross-entropy is then
                    # computed from them, as in training (and in Keras)
                    with GradientTape():
                        out = self(xb, training=False)
                else:
                    out = self._forward_any(xb, logits=fused)
                if isinstance(self.loss, multi_output.OutputLosses):
                    per_output = [None if l is None else loss_value(l, t, o, swb)
                                  for l, t, o in zip(self.loss.losses, yb, out)]
                    loss = sum(w * v for w, v in zip(self.loss.weights, per_output) if v is not None) + penalty
                    out = [unwrap(o) for o in out]
                    self._compiled_metrics.update_state(loss, _count(xb), yb, out, swb, per_output)
                else:
                    if on_tape or not self.loss.has_gradient():
                        loss = loss_value(self.loss, yb, out, swb)
                        out = unwrap(out)
                    else:
                        loss = stack_step.loss_value_and_grad(self.loss, out, yb, fused, swb)[0]
                    loss = loss + penalty
                    out = stack_step.metric_output(out, fused)
                    self._compiled_metrics.update_state(loss, _count(xb), yb, out, swb)
                if running_wanted:
                    callbacks.on_test_batch_end(step, self._compiled_metrics.result())
                if self.stop_evaluating:
                    break
        logs = self._compiled_metrics.result()
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
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
                raise ValueError(f"{self.describe()}.evaluate: when `x` is a {type(x).__name__}, its batches carry "
                                 "the targets; `y` and `sample_weight` must be None")
            batches = data_adapter.SourceBatches(x, self._batch_preparer("evaluate"), steps, "evaluate")
            n_steps = batches.steps
        else:
            _refuse_unsupported(self, "evaluate", steps=steps)
            batch_size = checks.check_batch_size(batch_size, self)
            x, y = self._prepare(x, y)
            sw = self._sample_weights(y, sample_weight, None, "evaluate")
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
        return logs["loss"] if len(logs) == 1 else [logs[k] for k in self.metrics_names]

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
            x = self._as_inputs(x)
            self._ensure_built_for(x)
            x, _, _, put = data_adapter.to_device_once(x)
            batches = data_adapter.ArrayBatches(x, None, None, batch_size, put=put)
        placement.place_weights(self)
        cblist = self._callback_list(callbacks, verbose, batches.steps, batch_size)
        self.stop_predicting = False
        cblist.on_predict_begin()
        outs = []
        with self._threads(batch_size or 32), _gpu_memory_errors(f"{self.describe()}.predict with "
                                                                 f"batch_size={batch_size or 32}"):
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
        x = self._as_inputs(x)
        return self.predict(x, batch_size=_count(x))


    # -- persistence (implemented in convolab.saving) -----------------------
    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture, weights, compile settings (and optimiser state) to one file, atomically.

        ``overwrite=False`` refuses to replace an existing file (Keras's argument).
        """
        self._require_savable('save')
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
        self._require_savable('export')
        from .persistence import export_model

        with placement.weights_on_host(self):
            export_model(self, filepath, format=format)


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
